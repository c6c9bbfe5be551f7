package scheduler

import (
	"fmt"

	"github.com/flotilla-edge/flotilla/api"
)

// ReasonUntoleratedTaint is TaintToleration's constant reason; a FitError
// names the taint itself (see FailureReasons).
const ReasonUntoleratedTaint = "node(s) had untolerated taint"

// TaintToleration keeps a pod off nodes with a NoSchedule or NoExecute
// taint it does not tolerate. PreferNoSchedule only lowers the score
// (TaintPreference).
type TaintToleration struct{}

// Name implements Filter.
func (TaintToleration) Name() string { return "TaintToleration" }

// Filter implements Filter without allocating: the taint is named only
// when a FitError is built.
func (TaintToleration) Filter(p *api.Pod, n *NodeInfo) (bool, string) {
	if FirstUntolerated(p.Spec.Tolerations, n.Node.Spec.Taints, api.TaintNoSchedule, api.TaintNoExecute) != nil {
		return false, ReasonUntoleratedTaint
	}
	return true, ""
}

// FailureReasons names the taint as Kubernetes does:
// "node(s) had untolerated taint {dedicated: edge}".
func (TaintToleration) FailureReasons(p *api.Pod, n *NodeInfo) []string {
	t := FirstUntolerated(p.Spec.Tolerations, n.Node.Spec.Taints, api.TaintNoSchedule, api.TaintNoExecute)
	if t == nil {
		return nil
	}
	return []string{fmt.Sprintf("%s {%s: %s}", ReasonUntoleratedTaint, t.Key, t.Value)}
}
