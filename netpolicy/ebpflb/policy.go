package ebpflb

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/flotilla-edge/flotilla/netpolicy/internal/bpfenc"
	"golang.org/x/sys/unix"
)

// Values shared with sock_lb.c (pol_cgroups flags, pol_rules verdicts).
const (
	polEgressIsolated = 1
	polAllow          = 1
	polDeny           = 2
)

// PolicyEntry is the verdict for one destination (after service
// translation: a backend address).
type PolicyEntry struct {
	Dst      netip.AddrPort
	Protocol string // TCP or UDP
	Allow    bool
}

// ClientPolicy is one client cgroup's connect-time NetworkPolicy: with
// EgressIsolated, destinations without an allowing entry fail connect()
// and sendmsg() with EPERM; without it only denying entries do.
type ClientPolicy struct {
	EgressIsolated bool
	Entries        []PolicyEntry
}

// CgroupID returns the id bpf_get_current_cgroup_id() reports for
// processes in a cgroup v2 directory: the directory's inode number.
func CgroupID(path string) (uint64, error) {
	if err := isCgroup2(path); err != nil {
		return 0, err
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", path, err)
	}
	return st.Ino, nil
}

func polKey(cg uint64, e PolicyEntry) sockLBPolKey {
	return sockLBPolKey{CgroupId: cg, Addr: bpfenc.Addr4(e.Dst.Addr().Unmap()), Port: bpfenc.Port(e.Dst.Port()), Proto: bpfenc.Proto(e.Protocol)}
}

// loadPolicyIndex learns the installed rules once (an earlier agent's
// pinned entries included), so updates are diffs without scanning the map.
func (l *LB) loadPolicyIndex() error {
	if l.polRules != nil {
		return nil
	}
	idx := map[uint64]map[sockLBPolKey]uint32{}
	var k sockLBPolKey
	var v uint32
	it := l.objs.PolRules.Iterate()
	for it.Next(&k, &v) {
		if idx[k.CgroupId] == nil {
			idx[k.CgroupId] = map[sockLBPolKey]uint32{}
		}
		idx[k.CgroupId][k] = v
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read pol_rules map: %w", err)
	}
	l.polRules = idx
	return nil
}

// SetPolicy installs or replaces the policy of the client cgroup cgroupID.
// Order keeps every intermediate state at least as strict as either the
// old or the new policy for each destination: new and changed entries
// first, then the isolation flag, then stale entries.
func (l *LB) SetPolicy(cgroupID uint64, p ClientPolicy) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("load balancer closed")
	}
	if err := l.loadPolicyIndex(); err != nil {
		return err
	}
	want := map[sockLBPolKey]uint32{}
	for _, e := range p.Entries {
		if !e.Dst.Addr().Unmap().Is4() {
			return fmt.Errorf("policy entry %v: IPv4 only", e.Dst)
		}
		v := uint32(polDeny)
		if e.Allow {
			v = polAllow
		}
		want[polKey(cgroupID, e)] = v
	}
	have := l.polRules[cgroupID]
	for k, v := range want {
		if hv, ok := have[k]; ok && hv == v {
			continue
		}
		if err := l.objs.PolRules.Update(&k, &v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write policy entry for cgroup %d: %w", cgroupID, err)
		}
		if have == nil {
			have = map[sockLBPolKey]uint32{}
			l.polRules[cgroupID] = have
		}
		have[k] = v
	}
	cv := sockLBPolCgVal{}
	if p.EgressIsolated {
		cv.Flags = polEgressIsolated
	}
	if err := l.objs.PolCgroups.Update(&cgroupID, &cv, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write policy of cgroup %d: %w", cgroupID, err)
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			if err := l.objs.PolRules.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("delete stale policy entry of cgroup %d: %w", cgroupID, err)
			}
			delete(have, k)
		}
	}
	return nil
}

// DeletePolicy stops policing the cgroup (its connects pass again); the
// cgroup entry goes first so no moment denies more than before.
func (l *LB) DeletePolicy(cgroupID uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("load balancer closed")
	}
	if err := l.loadPolicyIndex(); err != nil {
		return err
	}
	if err := l.objs.PolCgroups.Delete(&cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete policy of cgroup %d: %w", cgroupID, err)
	}
	for k := range l.polRules[cgroupID] {
		if err := l.objs.PolRules.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete policy entry of cgroup %d: %w", cgroupID, err)
		}
	}
	delete(l.polRules, cgroupID)
	return nil
}

// PolicedCgroups lists the cgroups that have a policy installed (an
// earlier agent's included), so a restarted agent can remove those of pods
// that are gone.
func (l *LB) PolicedCgroups() ([]uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("load balancer closed")
	}
	var out []uint64
	var k uint64
	var v sockLBPolCgVal
	it := l.objs.PolCgroups.Iterate()
	for it.Next(&k, &v) {
		out = append(out, k)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read pol_cgroups map: %w", err)
	}
	return out, nil
}
