// Package scheduler picks a node for a pod. It is a pure, in-memory
// feasibility-then-rank pipeline in the style of Nomad's iterator chain:
// filters reject nodes that cannot run the pod, weighted scorers rank the
// rest, and ties fall to the least-loaded node, then the name.
//
// Schedule is allocation-free per node: filters return constant reasons
// and only a pod that fits nowhere pays for collecting them.
package scheduler

import "github.com/flotilla-edge/flotilla/api"

// Filter rejects nodes that cannot run a pod. reason is a constant,
// human-readable phrase counted into FitError ("Insufficient cpu").
type Filter interface {
	Name() string
	Filter(p *api.Pod, n *NodeInfo) (ok bool, reason string)
}

// Scorer ranks a feasible node in 0..1; higher is better. The Scheduler
// applies weights.
type Scorer interface {
	Name() string
	Score(p *api.Pod, n *NodeInfo) float64
}

// failureReasoner is an optional Filter extension for filters that can
// fail for several reasons at once; it is called only to build a FitError.
type failureReasoner interface {
	FailureReasons(p *api.Pod, n *NodeInfo) []string
}

// Weighted is a scorer with its weight in the sum.
type Weighted struct {
	Scorer
	Weight float64
}

// Scheduler holds a stack of filters and weighted scorers. It keeps no
// per-call state, so one Scheduler may serve concurrent Schedule calls
// over NodeInfos nobody is mutating.
type Scheduler struct {
	filters []Filter
	scorers []Weighted
}

// New returns the default stack. Cheap, most-selective checks run first
// so most nodes are rejected before the map lookups of later filters.
func New(opts ...Option) *Scheduler {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return NewWith(
		[]Filter{
			NodeReady{},
			Runtime{},
			ImagePlatform{Platforms: o.imagePlatforms},
			NodeSelector{},
			TaintToleration{},
			VolumeNode{ClaimNode: o.claimNode},
			Resources{},
		},
		[]Weighted{
			{LeastAllocated{}, 1},
			// Replica spread outweighs packing: one failed board should
			// cost one replica, not several.
			{Spread{}, 2},
			// An untolerated PreferNoSchedule taint outweighs both: the
			// node is a last resort, not merely a busier one.
			{TaintPreference{}, 4},
		},
	)
}

// Option configures New.
type Option func(*options)

type options struct {
	claimNode      ClaimNodeFunc
	imagePlatforms ImagePlatformsFunc
}

// WithClaimNodes lets VolumeNode look up where claims are bound; without
// it VolumeNode passes every node.
func WithClaimNodes(f ClaimNodeFunc) Option { return func(o *options) { o.claimNode = f } }

// WithImagePlatforms lets ImagePlatform look up the platforms of imported
// OCI images; without it ImagePlatform passes every node.
func WithImagePlatforms(f ImagePlatformsFunc) Option {
	return func(o *options) { o.imagePlatforms = f }
}

// NewWith returns a Scheduler running the given filters in order and
// summing the weighted scorers.
func NewWith(filters []Filter, scorers []Weighted) *Scheduler {
	return &Scheduler{filters: filters, scorers: scorers}
}

// scoreEpsilon absorbs float noise so equal nodes tie and fall to the
// PodCount/name tie-break instead of rounding error.
const scoreEpsilon = 1e-9

// Schedule picks the best feasible node for p. When none fits, the error
// is a *FitError counting why each node was rejected.
func (s *Scheduler) Schedule(p *api.Pod, nodes []*NodeInfo) (*NodeInfo, error) {
	var best *NodeInfo
	var bestScore float64
	for _, n := range nodes {
		if !s.feasible(p, n) {
			continue
		}
		score := s.score(p, n)
		if best == nil || better(score, n, bestScore, best) {
			best, bestScore = n, score
		}
	}
	if best == nil {
		return nil, s.fitError(p, nodes)
	}
	return best, nil
}

func (s *Scheduler) feasible(p *api.Pod, n *NodeInfo) bool {
	for _, f := range s.filters {
		if ok, _ := f.Filter(p, n); !ok {
			return false
		}
	}
	return true
}

func (s *Scheduler) score(p *api.Pod, n *NodeInfo) float64 {
	var total float64
	for _, w := range s.scorers {
		total += w.Weight * w.Score(p, n)
	}
	return total
}

// better reports whether candidate a beats the current best b. Among equal
// scores the node with fewer pods wins, so replicas rotate over identical
// nodes even without Spread; the name makes the choice deterministic.
func better(aScore float64, a *NodeInfo, bScore float64, b *NodeInfo) bool {
	if d := aScore - bScore; d > scoreEpsilon || d < -scoreEpsilon {
		return d > 0
	}
	if a.PodCount != b.PodCount {
		return a.PodCount < b.PodCount
	}
	return a.Node.Name < b.Node.Name
}

// fitError re-runs the filters to learn why each node failed. It is the
// slow path, taken only when the pod fits nowhere, so the hot path never
// builds reasons. Like Kubernetes, a node reports its first failing filter.
func (s *Scheduler) fitError(p *api.Pod, nodes []*NodeInfo) *FitError {
	e := &FitError{NumNodes: len(nodes), Reasons: map[string]int{}}
	for _, n := range nodes {
		for _, f := range s.filters {
			ok, reason := f.Filter(p, n)
			if ok {
				continue
			}
			if fr, isFR := f.(failureReasoner); isFR {
				for _, r := range fr.FailureReasons(p, n) {
					e.Reasons[r]++
				}
			} else {
				e.Reasons[reason]++
			}
			break
		}
	}
	return e
}
