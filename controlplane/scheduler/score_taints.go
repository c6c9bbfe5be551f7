package scheduler

import "github.com/flotilla-edge/flotilla/api"

// TaintPreference prefers nodes with fewer PreferNoSchedule taints the pod
// does not tolerate: such a node is used only when better ones are full.
type TaintPreference struct{}

// Name implements Scorer.
func (TaintPreference) Name() string { return "TaintPreference" }

// Score implements Scorer.
func (TaintPreference) Score(p *api.Pod, n *NodeInfo) float64 {
	bad := 0
	for _, t := range n.Node.Spec.Taints {
		if t.Effect == api.TaintPreferNoSchedule && !Tolerated(p.Spec.Tolerations, t) {
			bad++
		}
	}
	return 1 / float64(1+bad)
}
