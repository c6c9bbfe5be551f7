package dns

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrNoService means a name inside the cluster domain names no service (or
// no endpoint of one), or the service has no ready endpoint to dial.
var ErrNoService = errors.New("no such service")

// Resolver maps host names as a pod writes them to addresses to dial,
// without going through the DNS wire protocol: the agent uses it for wasm
// pods' outbound HTTP host calls.
type Resolver struct {
	View   View
	Domain string // default DefaultDomain
	// Direct dials a ready endpoint itself instead of the ClusterIP. Use it
	// when the node has no service load balancer (eBPF or userspace) for
	// the ClusterIP to be reachable; otherwise the ClusterIP goes through
	// the load balancer like any other client's connect().
	Direct bool
}

// Resolve maps host and port to "ip:port" (or, for ExternalName services,
// "external.name:port") relative to the pod's namespace, trying the names a
// resolv.conf search list would: host.<ns>.svc.<domain>, host.svc.<domain>,
// host.<domain>, then host itself if it ends in the domain. ok is false
// when host is not a cluster name at all, so the caller resolves it the
// ordinary way.
func (r *Resolver) Resolve(namespace, host string, port int) (addr string, ok bool, err error) {
	domain := strings.Trim(strings.ToLower(r.Domain), ".")
	if domain == "" {
		domain = DefaultDomain
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if _, err := netip.ParseAddr(host); err == nil || host == "" {
		return "", false, nil
	}
	var candidates []string
	inDomain := strings.HasSuffix(host, "."+domain)
	if inDomain {
		candidates = []string{strings.TrimSuffix(host, "."+domain)}
	} else {
		if namespace != "" {
			candidates = append(candidates, host+"."+namespace+".svc")
		}
		candidates = append(candidates, host+".svc", host)
	}
	for _, rel := range candidates {
		svc, ep, found := r.find(rel)
		if !found {
			continue
		}
		a, err := r.dialAddr(svc, ep, port)
		if err != nil {
			return "", true, fmt.Errorf("resolve %s:%d: %w", host, port, err)
		}
		return a, true, nil
	}
	if inDomain {
		return "", true, fmt.Errorf("resolve %s: %w", host, ErrNoService)
	}
	return "", false, nil
}

// find looks up NAME.NS.svc or HOST.NAME.NS.svc (relative to the domain).
func (r *Resolver) find(rel string) (*Service, *Endpoint, bool) {
	labels := strings.Split(rel, ".")
	n := len(labels)
	if n < 3 || n > 4 || labels[n-1] != "svc" {
		return nil, nil, false
	}
	svc, ok := r.View.Service(labels[n-2], labels[n-3])
	if !ok {
		return nil, nil, false
	}
	if n == 3 {
		return svc, nil, true
	}
	for i := range svc.Endpoints {
		if endpointLabel(svc.Endpoints[i]) == labels[0] {
			return svc, &svc.Endpoints[i], true
		}
	}
	return nil, nil, false
}

// dialAddr picks what to connect to for a service port.
func (r *Resolver) dialAddr(svc *Service, ep *Endpoint, port int) (string, error) {
	if svc.ExternalName != "" {
		return net.JoinHostPort(strings.TrimSuffix(svc.ExternalName, "."), strconv.Itoa(port)), nil
	}
	var sp *Port
	for i := range svc.Ports {
		if int(svc.Ports[i].Port) == port && protocolOf(svc.Ports[i]) == "tcp" {
			sp = &svc.Ports[i]
			break
		}
	}
	if sp == nil {
		return "", fmt.Errorf("%w: service %s/%s has no TCP port %d", ErrNoService, svc.Namespace, svc.Name, port)
	}
	if ep == nil && !svc.Headless() && !r.Direct {
		return netip.AddrPortFrom(svc.ClusterIP, uint16(port)).String(), nil
	}
	var pick []netip.AddrPort
	for _, e := range svc.Endpoints {
		if ep != nil && endpointLabel(e) != endpointLabel(*ep) {
			continue
		}
		if !e.Ready {
			continue
		}
		if p, ok := endpointPort(e, *sp); ok {
			pick = append(pick, netip.AddrPortFrom(e.Addr, p))
		}
	}
	if len(pick) == 0 {
		return "", fmt.Errorf("%w: service %s/%s port %d has no ready endpoint", ErrNoService, svc.Namespace, svc.Name, port)
	}
	return pick[rand.IntN(len(pick))].String(), nil
}
