package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
)

// DefaultServiceCIDR is where cluster IPs come from unless configured
// (K3s' default).
const DefaultServiceCIDR = "10.43.0.0/16"

// serviceNetwork allocates cluster IPs and node ports. It runs in the
// API's write path (not in a controller) so a created Service carries its
// cluster IP in the reply, as kubectl users expect, and a bad or exhausted
// request fails the create instead of leaving a half-made service.
type serviceNetwork struct {
	cidr  netip.Prefix
	ips   *allocator
	ports *allocator
}

// EnableServices makes the server allocate cluster IPs from cidr ("" =
// DefaultServiceCIDR) and node ports from 30000-32767, recording them in
// the KV bucket ServiceAllocBucket. Call it before Run.
func (s *Server) EnableServices(ctx context.Context, js jetstream.JetStream, cidr string, replicas int) error {
	if cidr == "" {
		cidr = DefaultServiceCIDR
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 || p.Bits() < 8 {
		return fmt.Errorf("service CIDR %q: want an IPv4 prefix between /8 and /30", cidr)
	}
	p = p.Masked()
	if replicas < 1 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: ServiceAllocBucket, History: 1, Storage: jetstream.FileStorage, Replicas: replicas})
	if err != nil {
		return fmt.Errorf("service allocation bucket: %w", err)
	}
	base := p.Addr().As4()
	first := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	hosts := 1<<(32-p.Bits()) - 2 // not the network or broadcast address
	s.svcNet = &serviceNetwork{
		cidr: p,
		ips: &allocator{kv: kv, prefix: "clusterip", size: hosts,
			value: func(i int) string {
				v := first + 1 + uint32(i)
				return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
			},
			exhaust: func() error {
				return api.FieldErrors{{Field: "spec.clusterIP", Detail: fmt.Sprintf("service CIDR %s is exhausted", p)}}
			},
		},
		ports: &allocator{kv: kv, prefix: "nodeport", size: api.NodePortMax - api.NodePortMin + 1,
			value: func(i int) string { return strconv.Itoa(api.NodePortMin + i) },
			exhaust: func() error {
				return api.FieldErrors{{Field: "spec.ports", Detail: fmt.Sprintf("node port range %d-%d is exhausted", api.NodePortMin, api.NodePortMax)}}
			},
		},
	}
	return nil
}

// allocation is what a write claimed; finish settles it once the store
// write is known: on failure what was newly claimed is released, on
// success what the old object held and the new one dropped is released.
type allocation struct {
	n        *serviceNetwork
	owner    string
	newIPs   []string
	newPorts []string
	dropIPs  []string
	dropPort []string
}

func (a *allocation) finish(ctx context.Context, writeErr error) {
	if a == nil {
		return
	}
	ips, ports := a.dropIPs, a.dropPort
	if writeErr != nil {
		ips, ports = a.newIPs, a.newPorts
	}
	for _, v := range ips {
		_ = a.n.ips.release(ctx, v, a.owner)
	}
	for _, v := range ports {
		_ = a.n.ports.release(ctx, v, a.owner)
	}
}

// allocateService fills in and claims the cluster IP and node ports of a
// Service being written; cur is the stored version (nil on create), whose
// values are kept when the new spec leaves them empty, as Kubernetes does.
func (s *Server) allocateService(ctx context.Context, obj api.Object, cur api.Object) (*allocation, error) {
	svc, ok := obj.(*api.Service)
	if !ok || s.svcNet == nil {
		return nil, nil
	}
	api.Defaults(svc)
	if err := api.Validate(svc); err != nil {
		return nil, err
	}
	n := s.svcNet
	a := &allocation{n: n, owner: svc.Namespace + "/" + svc.Name}
	var old *api.Service
	if c, ok := cur.(*api.Service); ok {
		old = c
	}
	fail := func(err error) (*allocation, error) {
		a.finish(ctx, err)
		return nil, err
	}
	// Cluster IP.
	wantIP := svc.Spec.Type != api.ServiceTypeExternalName && !svc.Headless()
	oldIP := ""
	if old != nil && old.Spec.ClusterIP != api.ClusterIPNone {
		oldIP = old.Spec.ClusterIP
	}
	switch {
	case !wantIP:
	case svc.Spec.ClusterIP == "" && oldIP != "":
		svc.Spec.ClusterIP = oldIP
	case svc.Spec.ClusterIP != "" && oldIP != "" && svc.Spec.ClusterIP != oldIP:
		return nil, api.FieldErrors{{Field: "spec.clusterIP", Detail: fmt.Sprintf("field is immutable (%s)", oldIP)}}
	case svc.Spec.ClusterIP == "":
		ip, err := n.ips.next(ctx, a.owner)
		if err != nil {
			return nil, err
		}
		svc.Spec.ClusterIP = ip
		a.newIPs = append(a.newIPs, ip)
	case svc.Spec.ClusterIP != oldIP:
		ip, _ := netip.ParseAddr(svc.Spec.ClusterIP)
		if !n.cidr.Contains(ip) || ip == n.cidr.Addr() {
			return nil, api.FieldErrors{{Field: "spec.clusterIP", Detail: fmt.Sprintf("%s is not in the service CIDR %s", ip, n.cidr)}}
		}
		if err := n.ips.claim(ctx, ip.String(), a.owner); err != nil {
			if errors.Is(err, errTaken) {
				return nil, api.FieldErrors{{Field: "spec.clusterIP", Detail: fmt.Sprintf("%s is already allocated", ip)}}
			}
			return nil, err
		}
		a.newIPs = append(a.newIPs, ip.String())
	}
	if oldIP != "" && oldIP != svc.Spec.ClusterIP {
		a.dropIPs = append(a.dropIPs, oldIP)
	}
	// Node ports.
	oldPorts := map[string]int32{} // port/protocol -> node port
	held := map[int32]bool{}
	if old != nil {
		for _, p := range old.Spec.Ports {
			if p.NodePort != 0 {
				oldPorts[fmt.Sprintf("%d/%s", p.Port, p.Protocol)] = p.NodePort
				held[p.NodePort] = true
			}
		}
	}
	kept := map[int32]bool{}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if !svc.UsesNodePorts() {
			continue
		}
		if p.NodePort == 0 {
			p.NodePort = oldPorts[fmt.Sprintf("%d/%s", p.Port, p.Protocol)]
		}
		switch {
		case p.NodePort != 0 && held[p.NodePort]:
		case p.NodePort != 0:
			if err := n.ports.claim(ctx, strconv.Itoa(int(p.NodePort)), a.owner); err != nil {
				if errors.Is(err, errTaken) {
					err = api.FieldErrors{{Field: fmt.Sprintf("spec.ports[%d].nodePort", i), Detail: fmt.Sprintf("%d is already allocated", p.NodePort)}}
				}
				return fail(err)
			}
			a.newPorts = append(a.newPorts, strconv.Itoa(int(p.NodePort)))
		default:
			v, err := n.ports.next(ctx, a.owner)
			if err != nil {
				return fail(err)
			}
			np, _ := strconv.Atoi(v)
			p.NodePort = int32(np)
			a.newPorts = append(a.newPorts, v)
		}
		kept[p.NodePort] = true
	}
	for np := range held {
		if !kept[np] {
			a.dropPort = append(a.dropPort, strconv.Itoa(int(np)))
		}
	}
	return a, nil
}

// releaseService frees what a deleted Service held.
func (s *Server) releaseService(ctx context.Context, obj api.Object) {
	svc, ok := obj.(*api.Service)
	if !ok || s.svcNet == nil {
		return
	}
	owner := svc.Namespace + "/" + svc.Name
	if svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != api.ClusterIPNone {
		if err := s.svcNet.ips.release(ctx, svc.Spec.ClusterIP, owner); err != nil {
			s.log.Warn("release cluster IP", "service", owner, "err", err)
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			if err := s.svcNet.ports.release(ctx, strconv.Itoa(int(p.NodePort)), owner); err != nil {
				s.log.Warn("release node port", "service", owner, "err", err)
			}
		}
	}
}
