package scheduler

import "github.com/flotilla-edge/flotilla/api"

// ReasonNodeSelector is reported by NodeSelector, worded as Kubernetes does.
const ReasonNodeSelector = "node(s) didn't match Pod's node selector"

// NodeSelector requires every pod.spec.nodeSelector pair among the node's
// labels.
type NodeSelector struct{}

// Name implements Filter.
func (NodeSelector) Name() string { return "NodeSelector" }

// Filter implements Filter.
func (NodeSelector) Filter(p *api.Pod, n *NodeInfo) (bool, string) {
	labels := n.Node.Labels
	for k, v := range p.Spec.NodeSelector {
		if got, ok := labels[k]; !ok || got != v {
			return false, ReasonNodeSelector
		}
	}
	return true, ""
}
