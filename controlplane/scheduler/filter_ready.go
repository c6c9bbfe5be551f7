package scheduler

import "github.com/flotilla-edge/flotilla/api"

// Reasons reported by NodeReady.
const (
	ReasonNotReady      = "node(s) were not ready"
	ReasonUnreachable   = "node(s) were unreachable"
	ReasonUnschedulable = "node(s) were unschedulable"
)

// NodeReady keeps pods off nodes that are cordoned or whose agent is not
// heartbeating Ready=True.
type NodeReady struct{}

// Name implements Filter.
func (NodeReady) Name() string { return "NodeReady" }

// Filter implements Filter.
func (NodeReady) Filter(_ *api.Pod, n *NodeInfo) (bool, string) {
	if n.Node.Spec.Unschedulable {
		return false, ReasonUnschedulable
	}
	c := api.FindCondition(n.Node.Status.Conditions, api.NodeReady)
	switch {
	case c == nil:
		// Registered but never reported: not ready yet.
		return false, ReasonNotReady
	case c.Status == api.ConditionTrue:
		return true, ""
	case c.Status == api.ConditionUnknown:
		// Heartbeats stopped; the node may still run pods we cannot see.
		return false, ReasonUnreachable
	default:
		return false, ReasonNotReady
	}
}
