package scheduler

import "github.com/flotilla-edge/flotilla/api"

// Reasons reported by Resources, worded as Kubernetes does.
const (
	ReasonInsufficientCPU    = "Insufficient cpu"
	ReasonInsufficientMemory = "Insufficient memory"
)

// Resources requires the pod's cpu and memory requests to fit in what the
// node has left. A node that reports no value for a resource has unlimited
// of it.
type Resources struct{}

// Name implements Filter.
func (Resources) Name() string { return "Resources" }

// Filter implements Filter.
func (Resources) Filter(p *api.Pod, n *NodeInfo) (bool, string) {
	cpuOK, memOK := fits(p, n)
	switch {
	case !cpuOK:
		return false, ReasonInsufficientCPU
	case !memOK:
		return false, ReasonInsufficientMemory
	}
	return true, ""
}

// FailureReasons names every resource that does not fit, so a FitError
// counts "Insufficient cpu" and "Insufficient memory" separately.
func (Resources) FailureReasons(p *api.Pod, n *NodeInfo) []string {
	cpuOK, memOK := fits(p, n)
	var out []string
	if !cpuOK {
		out = append(out, ReasonInsufficientCPU)
	}
	if !memOK {
		out = append(out, ReasonInsufficientMemory)
	}
	return out
}

func fits(p *api.Pod, n *NodeInfo) (cpuOK, memOK bool) {
	cpu, mem := p.Requests()
	allocCPU, allocMem := n.Allocatable()
	cpuOK = allocCPU == unlimited || n.RequestedMilliCPU+cpu <= allocCPU
	memOK = allocMem == unlimited || n.RequestedMemory+mem <= allocMem
	return
}
