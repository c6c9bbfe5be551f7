package servicelb

import (
	"net/netip"
	"sort"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/netpolicy"
)

// Listener is one address:port/protocol the agent itself answers for
// traffic arriving from outside the node (node ports, LoadBalancer ports),
// relayed to Backends.
type Listener struct {
	Addr     netip.AddrPort
	Protocol string
	Backends []netip.AddrPort
	Service  string // namespace/name, for logs
	// Local is externalTrafficPolicy Local: Backends are this node's, and
	// a backend the agent serves in-process (LocalHTTP) gets the
	// connection handed over instead of relayed, keeping the client's
	// address.
	Local bool
}

// Desired is what the node should program: socket-LB services for the
// virtual IPs, and listeners for node ports and LoadBalancer ports.
type Desired struct {
	VIPs      []netpolicy.Service
	Listeners []Listener
}

// Compute translates Services and their EndpointSlices into what one node
// programs. node and nodeAddr identify this node: externalTrafficPolicy
// Local keeps only its own endpoints for outside traffic, and node ports
// are answered on nodeAddr. local reports the node's own addresses (nil:
// none but nodeAddr): an external IP or LoadBalancer IP the node holds is
// answered on the service port from outside too, as kube-proxy does.
// Headless and ExternalName services get nothing (they are a DNS matter).
func Compute(services []*api.Service, slices map[string]*api.EndpointSlice, node string, nodeAddr netip.Addr, local func(netip.Addr) bool) Desired {
	var d Desired
	for _, svc := range services {
		if svc.Spec.Type == api.ServiceTypeExternalName || svc.Headless() {
			continue
		}
		vip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil || !vip.Is4() {
			continue // not allocated yet
		}
		key := svc.Namespace + "/" + svc.Name
		slice := slices[key]
		affinity := time.Duration(svc.AffinityTimeoutSeconds()) * time.Second
		for _, sp := range svc.Spec.Ports {
			all := backends(slice, sp, "")
			outside := all
			isLocal := svc.Spec.ExternalTrafficPolicy == api.TrafficPolicyLocal
			if isLocal {
				outside = backends(slice, sp, node)
			}
			// Local clients reach the service on its cluster IP and on its
			// external IPs through the socket LB, with every ready backend.
			vips := []netip.Addr{vip}
			for _, s := range append([]string{svc.Spec.LoadBalancerIP}, svc.Spec.ExternalIPs...) {
				a, err := netip.ParseAddr(s)
				if err != nil || !a.Is4() || a == vip {
					continue
				}
				vips = append(vips, a)
				// Outside clients reach an external IP this node holds.
				if a == nodeAddr || (local != nil && local(a)) {
					d.Listeners = append(d.Listeners, Listener{Addr: netip.AddrPortFrom(a, uint16(sp.Port)), Protocol: sp.Protocol, Backends: outside, Service: key, Local: isLocal})
				}
			}
			for _, v := range vips {
				d.VIPs = append(d.VIPs, netpolicy.Service{VIP: v, Port: uint16(sp.Port), Protocol: sp.Protocol, Backends: all, AffinityTimeout: affinity})
			}
			if !svc.UsesNodePorts() {
				continue
			}
			if sp.NodePort != 0 && nodeAddr.IsValid() {
				d.Listeners = append(d.Listeners, Listener{Addr: netip.AddrPortFrom(nodeAddr, uint16(sp.NodePort)), Protocol: sp.Protocol, Backends: outside, Service: key, Local: isLocal})
			}
			// LoadBalancer without its own address: like K3s' ServiceLB,
			// every node answers the service port on its own address.
			if svc.Spec.Type == api.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerIP == "" && len(svc.Spec.ExternalIPs) == 0 && nodeAddr.IsValid() {
				d.Listeners = append(d.Listeners, Listener{Addr: netip.AddrPortFrom(nodeAddr, uint16(sp.Port)), Protocol: sp.Protocol, Backends: outside, Service: key, Local: isLocal})
			}
		}
	}
	sort.Slice(d.Listeners, func(i, j int) bool {
		a, b := d.Listeners[i], d.Listeners[j]
		if a.Addr != b.Addr {
			return a.Addr.Compare(b.Addr) < 0
		}
		return a.Protocol < b.Protocol
	})
	return d
}

// backends are the ready endpoints' addresses for one service port (its
// endpoint port of the same name and protocol), only those on node when
// node is not "".
func backends(slice *api.EndpointSlice, sp api.ServicePort, node string) []netip.AddrPort {
	if slice == nil {
		return nil
	}
	var out []netip.AddrPort
	for _, e := range slice.Endpoints {
		if !e.IsReady() || len(e.Addresses) == 0 || (node != "" && e.NodeName != node) {
			continue
		}
		addr, err := netip.ParseAddr(e.Addresses[0])
		if err != nil || !addr.Is4() {
			continue
		}
		for _, p := range e.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = "TCP"
			}
			if p.Name == sp.Name && proto == sp.Protocol && p.Port > 0 && p.Port < 65536 {
				out = append(out, netip.AddrPortFrom(addr, uint16(p.Port)))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Compare(out[j]) < 0 })
	return out
}
