package servicelb

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
	"github.com/flotilla-edge/flotilla/netpolicy/policy"
)

// PolicySource is the agent's NetworkPolicy snapshot
// (edgeagent/policyview.View).
type PolicySource interface {
	// Synced reports whether the initial lists are in.
	Synced() bool
	// Engine is the engine of the current snapshot.
	Engine() *policy.Engine
	// Changed is closed at the next change.
	Changed() <-chan struct{}
}

// policyResync is how often local pods' cgroups are listed again (a
// container starting or stopping is not signalled by the view).
const policyResync = 2 * time.Second

// policyLoop programs the eBPF LB's per-cgroup NetworkPolicy maps
// (ebpflb.SetPolicy) for the local pods PodCgroups lists: each pod's
// ClientRules under its cgroup's id. Until the view is synced nothing is
// changed (what pinned maps hold stays).
func (c *Controller) policyLoop(ctx context.Context, eb *ebpflb.LB) {
	programmed := map[uint64]ebpflb.ClientPolicy{}
	first := true
	t := time.NewTicker(policyResync)
	defer t.Stop()
	for {
		changed := c.cfg.Policy.Changed()
		if c.cfg.Policy.Synced() {
			c.programPolicy(eb, programmed, first)
			first = false
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

// programPolicy applies the difference; on the first pass it also removes
// entries an earlier agent pinned for cgroups that are gone.
func (c *Controller) programPolicy(eb *ebpflb.LB, programmed map[uint64]ebpflb.ClientPolicy, first bool) {
	eng := c.cfg.Policy.Engine()
	want := map[uint64]ebpflb.ClientPolicy{}
	for path, pod := range c.cfg.PodCgroups() {
		id, err := ebpflb.CgroupID(path)
		if err != nil {
			c.log.Debug("pod cgroup", "pod", pod, "path", path, "err", err)
			continue
		}
		r := eng.ClientRules(pod)
		if r.Empty() {
			continue
		}
		p := ebpflb.ClientPolicy{EgressIsolated: r.EgressIsolated}
		for _, e := range r.Entries {
			p.Entries = append(p.Entries, ebpflb.PolicyEntry{Dst: e.Dst, Protocol: e.Protocol, Allow: e.Allow})
		}
		want[id] = p
	}
	if first {
		if ids, err := eb.PolicedCgroups(); err == nil {
			for _, id := range ids {
				if _, ok := programmed[id]; !ok {
					programmed[id] = ebpflb.ClientPolicy{}
				}
			}
		}
	}
	for id, p := range want {
		if old, ok := programmed[id]; ok && samePolicy(old, p) {
			continue
		}
		if err := eb.SetPolicy(id, p); err != nil {
			c.log.Warn("program pod policy", "cgroup", id, "err", err)
			continue
		}
		programmed[id] = p
	}
	for _, id := range slices.Collect(maps.Keys(programmed)) {
		if _, ok := want[id]; ok {
			continue
		}
		if err := eb.DeletePolicy(id); err != nil {
			c.log.Warn("remove pod policy", "cgroup", id, "err", err)
			continue
		}
		delete(programmed, id)
	}
}

func samePolicy(a, b ebpflb.ClientPolicy) bool {
	return a.EgressIsolated == b.EgressIsolated && slices.Equal(a.Entries, b.Entries)
}
