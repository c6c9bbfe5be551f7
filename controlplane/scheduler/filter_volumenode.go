package scheduler

import "github.com/flotilla-edge/flotilla/api"

// ReasonVolumeNode is reported by VolumeNode, worded as Kubernetes does.
const ReasonVolumeNode = "node(s) had volume node affinity conflict"

// ClaimNodeFunc returns the node a PersistentVolumeClaim is bound to, or
// "" when it is unbound or unknown.
type ClaimNodeFunc func(namespace, claim string) string

// VolumeNode keeps a pod that uses a claim bound to a node on that node:
// Flotilla volumes are node-local directories, so the data is only there.
// An unbound (or not yet seen) claim does not restrict the pod; it is
// bound to wherever the pod first lands.
type VolumeNode struct {
	ClaimNode ClaimNodeFunc
}

// Name implements Filter.
func (VolumeNode) Name() string { return "VolumeNode" }

// Filter implements Filter.
func (f VolumeNode) Filter(p *api.Pod, n *NodeInfo) (bool, string) {
	if f.ClaimNode == nil {
		return true, ""
	}
	for i := range p.Spec.Volumes {
		c := p.Spec.Volumes[i].PersistentVolumeClaim
		if c == nil {
			continue
		}
		if at := f.ClaimNode(p.Namespace, c.ClaimName); at != "" && at != n.Node.Name {
			return false, ReasonVolumeNode
		}
	}
	return true, ""
}
