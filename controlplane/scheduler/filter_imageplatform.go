package scheduler

import (
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/flotilla-edge/flotilla/api"
)

// ReasonImagePlatform is reported by ImagePlatform; FailureReasons adds
// which platforms the image offers and what the node is.
const ReasonImagePlatform = "node(s) didn't match the image's platforms"

// ImagePlatformsFunc returns the platforms ("os/arch[/variant]") an OCI
// image reference offers, or nil when the image is unknown to the fleet.
type ImagePlatformsFunc func(image string) []string

// ImagePlatform keeps OCI containers off nodes their image has no build
// for. Only images imported into the fleet are known; an unknown image
// passes, and the agent reports the pull error.
type ImagePlatform struct {
	Platforms ImagePlatformsFunc
}

// Name implements Filter.
func (ImagePlatform) Name() string { return "ImagePlatform" }

// Filter implements Filter.
func (f ImagePlatform) Filter(p *api.Pod, n *NodeInfo) (bool, string) {
	if _, _, bad := f.mismatch(p, n); bad {
		return false, ReasonImagePlatform
	}
	return true, ""
}

// FailureReasons implements failureReasoner: the reason names the
// platforms, so a Pending pod says what is missing.
func (f ImagePlatform) FailureReasons(p *api.Pod, n *NodeInfo) []string {
	offers, node, bad := f.mismatch(p, n)
	if !bad {
		return nil
	}
	return []string{fmt.Sprintf("%s (image offers %s; node is %s)", ReasonImagePlatform, strings.Join(offers, ", "), node)}
}

// mismatch finds the first OCI container whose image lacks a build the
// node can run. The match is containerd's: variant-aware, so an armv7
// node takes linux/arm/v6 and v7 images but an armv6 node only v6.
func (f ImagePlatform) mismatch(p *api.Pod, n *NodeInfo) (offers []string, node string, bad bool) {
	if f.Platforms == nil {
		return nil, "", false
	}
	info := n.Node.Status.NodeInfo
	if info.OperatingSystem == "" || info.Architecture == "" {
		return nil, "", false // an agent that does not say: let it try
	}
	np := platforms.Normalize(ocispec.Platform{OS: info.OperatingSystem, Architecture: info.Architecture, Variant: info.Variant})
	match := platforms.Only(np)
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		if c.Runtime != api.RuntimeOCI {
			continue
		}
		offers = f.Platforms(c.Image)
		if offers == nil {
			continue
		}
		ok := false
		for _, s := range offers {
			ip, err := platforms.Parse(s)
			if err == nil && match.Match(ip) {
				ok = true
				break
			}
		}
		if !ok {
			return offers, platforms.Format(np), true
		}
	}
	return nil, "", false
}
