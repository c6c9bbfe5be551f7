package scheduler

import "github.com/flotilla-edge/flotilla/api"

// unlimited marks a resource the node does not report: the scheduler
// does not ration what it cannot measure.
const unlimited = -1

// NodeInfo is a node plus what is already placed on it.
//
// Treat Node as immutable: when a node changes, build a new NodeInfo (or
// at least assign a new *api.Node) so the cached allocatable is refreshed.
type NodeInfo struct {
	Node *api.Node
	// RequestedMilliCPU and RequestedMemory sum the requests of the
	// non-terminal pods bound to the node.
	RequestedMilliCPU, RequestedMemory int64
	PodCount                           int
	// OwnerCounts maps a controller owner UID to how many of its pods are
	// on this node (for spreading replicas).
	OwnerCounts map[string]int

	// Allocatable resolved once per node rather than once per pod: two
	// map lookups per resource per node per Schedule add up at 1,000 nodes.
	cachedFor     *api.Node
	allocMilliCPU int64
	allocMemory   int64
}

// NewNodeInfo returns an empty NodeInfo for n.
func NewNodeInfo(n *api.Node) *NodeInfo {
	ni := &NodeInfo{Node: n}
	ni.allocMilliCPU, ni.allocMemory = allocatable(n)
	ni.cachedFor = n
	return ni
}

// Allocatable returns what pods may request on the node: allocatable,
// falling back per resource to capacity; unlimited (-1) when neither is
// reported.
func (ni *NodeInfo) Allocatable() (milliCPU, memory int64) {
	if ni.cachedFor == ni.Node && ni.Node != nil {
		return ni.allocMilliCPU, ni.allocMemory
	}
	// Built as a literal or Node swapped: compute, but never write here so
	// Schedule stays read-only over its NodeInfos.
	return allocatable(ni.Node)
}

func allocatable(n *api.Node) (milliCPU, memory int64) {
	milliCPU, memory = unlimited, unlimited
	if n == nil {
		return
	}
	if q, ok := lookup(n, "cpu"); ok {
		milliCPU = q.MilliValue()
	}
	if q, ok := lookup(n, "memory"); ok {
		memory = q.Value()
	}
	return
}

func lookup(n *api.Node, res string) (api.Quantity, bool) {
	if q, ok := n.Status.Allocatable[res]; ok {
		return q, true
	}
	q, ok := n.Status.Capacity[res]
	return q, ok
}

// AddPod accounts a pod bound to the node. Terminal pods hold nothing and
// are ignored.
func (ni *NodeInfo) AddPod(p *api.Pod) {
	ni.account(p, 1)
}

// RemovePod undoes AddPod. Pass the version of the pod that was added: on
// an update, RemovePod(old) then AddPod(new).
func (ni *NodeInfo) RemovePod(p *api.Pod) {
	ni.account(p, -1)
}

func (ni *NodeInfo) account(p *api.Pod, sign int) {
	if p.IsTerminal() {
		return
	}
	cpu, mem := p.Requests()
	ni.RequestedMilliCPU = max(0, ni.RequestedMilliCPU+int64(sign)*cpu)
	ni.RequestedMemory = max(0, ni.RequestedMemory+int64(sign)*mem)
	ni.PodCount = max(0, ni.PodCount+sign)
	ref := api.ControllerOf(&p.ObjectMeta)
	if ref == nil {
		return
	}
	if ni.OwnerCounts == nil {
		ni.OwnerCounts = make(map[string]int)
	}
	if c := ni.OwnerCounts[ref.UID] + sign; c > 0 {
		ni.OwnerCounts[ref.UID] = c
	} else {
		// Drop zeros so the map does not grow with every owner ever seen.
		delete(ni.OwnerCounts, ref.UID)
	}
}
