package scheduler

import (
	"github.com/flotilla-edge/flotilla/api"
)

// node builds a ready wasm node; mods adjust it.
func node(name string, mods ...func(*api.Node)) *api.Node {
	n := &api.Node{
		ObjectMeta: api.ObjectMeta{Name: name},
		Status: api.NodeStatus{
			Conditions: []api.Condition{{Type: api.NodeReady, Status: api.ConditionTrue}},
			Runtimes:   []string{api.RuntimeWasm},
		},
	}
	for _, m := range mods {
		m(n)
	}
	return n
}

func capacity(cpu, mem string) func(*api.Node) {
	return func(n *api.Node) { n.Status.Capacity = resources(cpu, mem) }
}

func allocatableRes(cpu, mem string) func(*api.Node) {
	return func(n *api.Node) { n.Status.Allocatable = resources(cpu, mem) }
}

func labels(kv ...string) func(*api.Node) {
	return func(n *api.Node) {
		n.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func readyStatus(status string) func(*api.Node) {
	return func(n *api.Node) { n.Status.Conditions[0].Status = status }
}

func noConditions(n *api.Node) { n.Status.Conditions = nil }

func cordoned(n *api.Node) { n.Spec.Unschedulable = true }

func runtimes(rts ...string) func(*api.Node) {
	return func(n *api.Node) { n.Status.Runtimes = rts }
}

// resources builds a ResourceList; "" leaves a resource out.
func resources(cpu, mem string) api.ResourceList {
	rl := api.ResourceList{}
	if cpu != "" {
		rl["cpu"] = api.MustParseQuantity(cpu)
	}
	if mem != "" {
		rl["memory"] = api.MustParseQuantity(mem)
	}
	return rl
}

// pod builds a one-container wasm pod; mods adjust it.
func pod(name string, mods ...func(*api.Pod)) *api.Pod {
	p := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "app", Image: "hello:1"}}},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func requests(cpu, mem string) func(*api.Pod) {
	return func(p *api.Pod) { p.Spec.Containers[0].Resources.Requests = resources(cpu, mem) }
}

func nodeSelector(kv ...string) func(*api.Pod) {
	return func(p *api.Pod) {
		p.Spec.NodeSelector = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

func containerRuntimes(rts ...string) func(*api.Pod) {
	return func(p *api.Pod) {
		p.Spec.Containers = nil
		for _, rt := range rts {
			p.Spec.Containers = append(p.Spec.Containers, api.Container{Name: "c" + rt, Image: "x:1", Runtime: rt})
		}
	}
}

func ownedBy(uid string) func(*api.Pod) {
	return func(p *api.Pod) {
		p.OwnerReferences = []api.OwnerReference{{Kind: "ReplicaSet", Name: "rs-" + uid, UID: uid, Controller: true}}
	}
}

func phase(ph string) func(*api.Pod) {
	return func(p *api.Pod) { p.Status.Phase = ph }
}

func infos(nodes ...*api.Node) []*NodeInfo {
	out := make([]*NodeInfo, len(nodes))
	for i, n := range nodes {
		out[i] = NewNodeInfo(n)
	}
	return out
}
