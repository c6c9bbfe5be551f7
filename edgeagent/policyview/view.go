// Package policyview keeps the agent's in-memory picture of what
// NetworkPolicy needs — NetworkPolicies, Pods, Namespaces, Services and
// EndpointSlices of the whole fleet — and turns it into a policy.Engine
// for the datapaths: the wasm host-call hook (Allow) and the eBPF rule
// programmer. See docs/networking.md, "NetworkPolicy".
package policyview

import (
	"net/netip"
	"sync"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent/servicelb"
	"github.com/flotilla-edge/flotilla/netpolicy/policy"
)

// View is the fleet snapshot. It is safe for concurrent use.
type View struct {
	mu       sync.Mutex
	objs     map[string]map[string]api.Object // kind -> ns/name -> object
	engine   *policy.Engine                   // nil: rebuild on next use
	changed  chan struct{}                    // closed and replaced on every change
	synced   map[string]bool
	kindsAll int
}

// Kinds are the kinds the view follows.
var Kinds = []string{"NetworkPolicy", "Pod", "Namespace", "Service", "EndpointSlice"}

// New returns an empty view.
func New() *View {
	v := &View{objs: map[string]map[string]api.Object{}, changed: make(chan struct{}), synced: map[string]bool{}, kindsAll: len(Kinds)}
	for _, k := range Kinds {
		v.objs[k] = map[string]api.Object{}
	}
	return v
}

func key(m *api.ObjectMeta) string { return m.Namespace + "/" + m.Name }

// Set stores or replaces an object of one of Kinds.
func (v *View) Set(obj api.Object) {
	kind := obj.GetType().Kind
	if kind == "" {
		if ki, err := api.KindOf(obj); err == nil {
			kind = ki.Kind
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	m, ok := v.objs[kind]
	if !ok {
		return
	}
	m[key(obj.GetMeta())] = obj
	v.dirtyLocked()
}

// Delete removes an object.
func (v *View) Delete(kind, ns, name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if m, ok := v.objs[kind]; ok {
		if _, had := m[ns+"/"+name]; had {
			delete(m, ns+"/"+name)
			v.dirtyLocked()
		}
	}
}

// Keys lists the stored objects of a kind as ns/name (for re-list pruning).
func (v *View) Keys(kind string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for k := range v.objs[kind] {
		out = append(out, k)
	}
	return out
}

// MarkSynced records that a kind's initial list is in.
func (v *View) MarkSynced(kind string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.synced[kind] {
		v.synced[kind] = true
		v.dirtyLocked()
	}
}

// Synced reports whether every kind's initial list is in. Before that a
// datapath must not conclude "no policy selects this pod".
func (v *View) Synced() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.synced) == v.kindsAll
}

func (v *View) dirtyLocked() {
	v.engine = nil
	close(v.changed)
	v.changed = make(chan struct{})
}

// Changed returns a channel closed at the next change.
func (v *View) Changed() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.changed
}

// Engine returns the policy engine of the current snapshot (built once per
// change, then shared).
func (v *View) Engine() *policy.Engine {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.engine == nil {
		v.engine = policy.New(v.inputLocked())
	}
	return v.engine
}

func (v *View) inputLocked() policy.Input {
	var in policy.Input
	for _, o := range v.objs["NetworkPolicy"] {
		in.Policies = append(in.Policies, o.(*api.NetworkPolicy))
	}
	for _, o := range v.objs["Pod"] {
		p := o.(*api.Pod)
		if p.IsTerminal() {
			continue
		}
		in.Pods = append(in.Pods, policy.FromAPIPod(p))
	}
	for _, o := range v.objs["Namespace"] {
		in.Namespaces = append(in.Namespaces, policy.FromAPINamespace(o.(*api.Namespace)))
	}
	var svcs []*api.Service
	for _, o := range v.objs["Service"] {
		svcs = append(svcs, o.(*api.Service))
	}
	slices := map[string]*api.EndpointSlice{}
	for k, o := range v.objs["EndpointSlice"] {
		slices[k] = o.(*api.EndpointSlice) // the slice has its service's name
	}
	// The same translation the node's load balancer programs, so a VIP
	// stands for exactly the backends a connect() can reach.
	for _, s := range servicelb.Compute(svcs, slices, "", netip.Addr{}, nil).VIPs {
		in.Services = append(in.Services, policy.Service{VIP: s.VIP, Port: s.Port, Protocol: s.Protocol, Backends: s.Backends})
	}
	return in
}
