package scheduler

import (
	"slices"

	"github.com/flotilla-edge/flotilla/api"
)

// ReasonRuntime is reported by Runtime.
const ReasonRuntime = "node(s) didn't support the Pod's runtime"

// Runtime requires the node's agent to offer every runtime the pod's
// containers use (empty means wasm).
type Runtime struct{}

// Name implements Filter.
func (Runtime) Name() string { return "Runtime" }

// Filter implements Filter.
func (Runtime) Filter(p *api.Pod, n *NodeInfo) (bool, string) {
	for i := range p.Spec.Containers {
		rt := p.Spec.Containers[i].Runtime
		if rt == "" {
			rt = api.RuntimeWasm
		}
		if !slices.Contains(n.Node.Status.Runtimes, rt) {
			return false, ReasonRuntime
		}
	}
	return true, ""
}
