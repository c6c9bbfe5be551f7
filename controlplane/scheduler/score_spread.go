package scheduler

import "github.com/flotilla-edge/flotilla/api"

// Spread prefers nodes holding fewer pods of the pod's controller owner,
// so losing one board takes down as few replicas as possible. Pods without
// a controller score the same everywhere.
type Spread struct{}

// Name implements Scorer.
func (Spread) Name() string { return "Spread" }

// Score implements Scorer.
func (Spread) Score(p *api.Pod, n *NodeInfo) float64 {
	ref := api.ControllerOf(&p.ObjectMeta)
	if ref == nil {
		return 1
	}
	return 1 / float64(1+n.OwnerCounts[ref.UID])
}
