package scheduler

import "github.com/flotilla-edge/flotilla/api"

// LeastAllocated prefers the node with the most room left after placing
// the pod: the mean of its free cpu and free memory fractions. Spreading
// load keeps headroom on every board for bursts and restarts.
type LeastAllocated struct{}

// Name implements Scorer.
func (LeastAllocated) Name() string { return "LeastAllocated" }

// Score implements Scorer.
func (LeastAllocated) Score(p *api.Pod, n *NodeInfo) float64 {
	cpu, mem := p.Requests()
	allocCPU, allocMem := n.Allocatable()
	return (freeFraction(n.RequestedMilliCPU+cpu, allocCPU) +
		freeFraction(n.RequestedMemory+mem, allocMem)) / 2
}

// freeFraction is 1 for an unlimited resource and 0 for an exhausted one.
func freeFraction(used, alloc int64) float64 {
	switch {
	case alloc == unlimited:
		return 1
	case alloc <= 0 || used >= alloc:
		return 0
	}
	return float64(alloc-used) / float64(alloc)
}
