package policy

import (
	"net/netip"

	"github.com/flotilla-edge/flotilla/api"
)

// FromAPIPod converts a pod: its address is status.hostIP and its
// endpoints are the host ports the agent reported per container port
// (containerStatuses[].ports). Container ports without a reported host
// port are kept with HostPort 0, so named ports still resolve.
func FromAPIPod(p *api.Pod) Pod {
	out := Pod{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels}
	if a, err := netip.ParseAddr(p.Status.HostIP); err == nil {
		out.NodeIP = a.Unmap()
	}
	for _, cs := range p.Status.ContainerStatuses {
		for _, ps := range cs.Ports {
			pt := Port{Name: ps.Name, ContainerPort: uint16(ps.ContainerPort), Protocol: normProto(ps.Protocol)}
			if ps.HostPort > 0 && ps.HostPort < 65536 {
				pt.HostPort = uint16(ps.HostPort)
			}
			if a, err := netip.ParseAddr(ps.HostIP); err == nil && !out.NodeIP.IsValid() {
				out.NodeIP = a.Unmap()
			}
			out.Ports = append(out.Ports, pt)
		}
	}
	return out
}

// FromAPINamespace converts a namespace.
func FromAPINamespace(n *api.Namespace) Namespace {
	return Namespace{Name: n.Name, Labels: n.Labels}
}
