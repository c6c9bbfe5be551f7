package edgeagent

import (
	"context"
	"strconv"
	"time"

	"github.com/flotilla-edge/flotilla/edgeagent/dns"
	"github.com/flotilla-edge/flotilla/edgeagent/policyview"
	"github.com/flotilla-edge/flotilla/edgeagent/servicelb"
	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
	"github.com/flotilla-edge/flotilla/netpolicy/policy"
	"github.com/flotilla-edge/flotilla/wasmrt/hostcall"
)

// withNetworkPolicy builds the policy view when Config.NetworkPolicy is on
// and returns cfg with wasm pods' host calls checked against it (unless the
// embedder set its own HostCallPolicy), sets a.lbAdmit for the userspace
// service proxy, and returns the function that starts the view's feed.
func (a *Agent) withNetworkPolicy(cfg Config) (Config, func(context.Context)) {
	if !cfg.NetworkPolicy {
		return cfg, func(context.Context) {}
	}
	view := policyview.New()
	if cfg.HostCallPolicy == nil {
		// Resolution for the check always yields the ClusterIP (never one
		// endpoint picked at random, as ServiceDialDirect dialling does),
		// so the hook judges every backend the call may end up at. a.net
		// is set right after this returns, before any pod runs.
		cfg.HostCallPolicy = view.Allow(func(_ context.Context, c hostcall.Caller, host string, port int) (string, bool, error) {
			r := dns.Resolver{View: a.net.store, Domain: cfg.ClusterDomain}
			return r.Resolve(c.Namespace, host, port)
		}, nil)
	}
	a.lbAdmit = view.Admit()
	a.lbPolicy = view
	return cfg, func(ctx context.Context) {
		a.wg.Go(func() { policyview.Feed(ctx, a.client, view, a.log) })
	}
}

// containerCgroups lists this node's running container pods by cgroup v2
// directory (runc gives every container its own, also on a hybrid
// v1+v2 host), for the eBPF LB's per-cgroup NetworkPolicy. Wasm pods run
// inside the agent's cgroup and are policed by the host-call hook instead.
func (a *Agent) containerCgroups() map[string]policy.PodRef {
	rt, _ := a.oci.runtime()
	if rt == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	infos, err := rt.List(ctx)
	if err != nil {
		a.log.Debug("list containers for policy", "err", err)
		return nil
	}
	out := map[string]policy.PodRef{}
	for _, in := range infos {
		ns, name := in.Labels[labelPodNamespace], in.Labels[labelPodName]
		if !in.Running || in.Pid == 0 || ns == "" || name == "" {
			continue
		}
		path, err := servicelb.CgroupOf(strconv.Itoa(int(in.Pid)))
		if err != nil {
			continue
		}
		out[path] = policy.PodRef{Namespace: ns, Name: name}
	}
	return out
}

// lbCgroup is where the eBPF LB attaches: Config.LBCgroupPath, else — when
// container pods are to be policed (NetworkPolicy on, containerd not
// "off") — the cgroup v2 root, because containerd puts containers under
// /<containerd namespace>/<id>, beside the agent's cgroup rather than under
// it, and the root is their only common ancestor; else "" (the agent's
// own cgroup, covering the wasm pods).
func (a *Agent) lbCgroup(cfg Config) string {
	if cfg.LBCgroupPath != "" || !cfg.NetworkPolicy || cfg.Containerd.Socket == "off" {
		return cfg.LBCgroupPath
	}
	root, err := ebpflb.Cgroup2Root()
	if err != nil {
		return ""
	}
	return root
}
