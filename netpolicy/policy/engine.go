package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Engine answers policy questions over one snapshot. It is immutable after
// New and safe for concurrent use; a changed fleet gets a new Engine.
type Engine struct {
	pods      map[PodRef]*Pod
	endpoints map[epKey]podPort
	nsLabels  map[string]map[string]string
	byNS      map[string][]*compiled // policies per namespace, by name
	services  map[epKey][]netip.AddrPort
}

type epKey struct {
	addr  netip.AddrPort
	proto string
}

type podPort struct {
	pod  *Pod
	port *Port
}

// New builds an engine from a snapshot.
func New(in Input) *Engine {
	e := &Engine{pods: map[PodRef]*Pod{}, endpoints: map[epKey]podPort{}, nsLabels: map[string]map[string]string{},
		byNS: map[string][]*compiled{}, services: map[epKey][]netip.AddrPort{}}
	for i := range in.Pods {
		p := &in.Pods[i]
		e.pods[p.Ref()] = p
		for j := range p.Ports {
			pt := &p.Ports[j]
			if pt.HostPort == 0 || !p.NodeIP.IsValid() {
				continue
			}
			e.endpoints[epKey{netip.AddrPortFrom(p.NodeIP.Unmap(), pt.HostPort), normProto(pt.Protocol)}] = podPort{p, pt}
		}
	}
	for _, ns := range in.Namespaces {
		e.nsLabels[ns.Name] = ns.Labels
	}
	for _, p := range in.Policies {
		e.byNS[p.Namespace] = append(e.byNS[p.Namespace], compile(p))
	}
	for _, ps := range e.byNS {
		slices.SortFunc(ps, func(a, b *compiled) int { return strings.Compare(a.name, b.name) })
	}
	for _, s := range in.Services {
		k := epKey{netip.AddrPortFrom(s.VIP.Unmap(), s.Port), normProto(s.Protocol)}
		e.services[k] = append(e.services[k], s.Backends...)
	}
	return e
}

// Pod returns a pod of the snapshot.
func (e *Engine) Pod(r PodRef) (*Pod, bool) {
	p, ok := e.pods[r]
	return p, ok
}

// Allowed decides whether src may open a connection (or send a datagram)
// to dst: the egress policies of a source pod and the ingress policies of
// the destination pod must both allow it. A service VIP:port stands for
// its backends and is allowed only when every backend is (the caller
// cannot know which one the load balancer will pick); a VIP without
// backends is allowed, as the connection fails anyway.
func (e *Engine) Allowed(src Source, dst netip.AddrPort, proto string) Decision {
	proto = normProto(proto)
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if backends, ok := e.services[epKey{dst, proto}]; ok {
		for _, b := range backends {
			if d := e.AllowedDirect(src, b, proto); !d.Allowed {
				d.Reason = fmt.Sprintf("%s (service %v backend %v)", d.Reason, dst, b)
				return d
			}
		}
		return Decision{Allowed: true}
	}
	return e.AllowedDirect(src, dst, proto)
}

// AllowedDirect is Allowed for an address that is not translated (a
// backend after the load balancer's choice).
func (e *Engine) AllowedDirect(src Source, dst netip.AddrPort, proto string) Decision {
	proto = normProto(proto)
	t := e.target(dst, proto)
	if src.Pod != nil {
		if d := e.egress(*src.Pod, t); !d.Allowed {
			return d
		}
	}
	if t.pod == nil {
		return Decision{Allowed: true}
	}
	return e.ingress(e.sourceEndpoint(src), t)
}

// target is a destination as policy sees it.
type target struct {
	pod   *Pod  // nil: not a pod endpoint of the fleet
	port  *Port // the pod port dst names
	addr  netip.Addr
	dport uint16
	proto string
}

func (e *Engine) target(dst netip.AddrPort, proto string) target {
	t := target{addr: dst.Addr().Unmap(), dport: dst.Port(), proto: proto}
	if pp, ok := e.endpoints[epKey{netip.AddrPortFrom(t.addr, t.dport), proto}]; ok {
		t.pod, t.port = pp.pod, pp.port
	}
	return t
}

// endpoint is one side of a connection matched against peers.
type endpoint struct {
	pod  *Pod // nil: not known to be a pod
	addr netip.Addr
}

func (e *Engine) sourceEndpoint(src Source) endpoint {
	if src.Pod != nil {
		if p, ok := e.pods[*src.Pod]; ok {
			return endpoint{pod: p, addr: p.NodeIP.Unmap()}
		}
	}
	return endpoint{addr: src.IP.Unmap()}
}

// selecting returns the policies of type ingress/egress that select pod.
func (e *Engine) selecting(p *Pod, egress bool) []*compiled {
	var out []*compiled
	for _, c := range e.byNS[p.Namespace] {
		if (egress && c.egress || !egress && c.ingress) && c.selects.Matches(p.Labels) {
			out = append(out, c)
		}
	}
	return out
}

// EgressIsolated reports whether any policy isolates the pod's egress.
func (e *Engine) EgressIsolated(r PodRef) bool {
	p, ok := e.pods[r]
	return ok && len(e.selecting(p, true)) > 0
}

// IngressIsolated reports whether any policy isolates the pod's ingress.
func (e *Engine) IngressIsolated(r PodRef) bool {
	p, ok := e.pods[r]
	return ok && len(e.selecting(p, false)) > 0
}

func (e *Engine) egress(src PodRef, t target) Decision {
	p, ok := e.pods[src]
	if !ok {
		// Labels unknown (the view lags the pod): fail closed where any
		// egress policy could apply, else there is nothing to enforce.
		for _, c := range e.byNS[src.Namespace] {
			if c.egress {
				return Decision{Reason: fmt.Sprintf("pod %s is not known to the NetworkPolicy view yet", src)}
			}
		}
		return Decision{Allowed: true}
	}
	pols := e.selecting(p, true)
	if len(pols) == 0 {
		return Decision{Allowed: true}
	}
	dst := endpoint{pod: t.pod, addr: t.addr}
	for _, c := range pols {
		for _, r := range c.outRules {
			if e.ruleMatches(c.ns, r, dst, t) {
				return Decision{Allowed: true}
			}
		}
	}
	return Decision{Reason: fmt.Sprintf("%s (egress of %s to %v/%s)", deniedBy(pols), src, netip.AddrPortFrom(t.addr, t.dport), t.proto)}
}

func (e *Engine) ingress(src endpoint, t target) Decision {
	pols := e.selecting(t.pod, false)
	if len(pols) == 0 {
		return Decision{Allowed: true}
	}
	for _, c := range pols {
		for _, r := range c.inRules {
			if e.ruleMatches(c.ns, r, src, t) {
				return Decision{Allowed: true}
			}
		}
	}
	return Decision{Reason: fmt.Sprintf("%s (ingress of %s/%s port %d/%s)", deniedBy(pols), t.pod.Namespace, t.pod.Name, t.port.ContainerPort, t.proto)}
}

func deniedBy(pols []*compiled) string {
	names := make([]string, len(pols))
	for i, c := range pols {
		names[i] = c.String()
	}
	if len(names) == 1 {
		return "denied by NetworkPolicy " + names[0]
	}
	return "denied by NetworkPolicies " + strings.Join(names, ", ")
}

// ruleMatches: peer is the other side (source for ingress, destination for
// egress); t carries the port being reached.
func (e *Engine) ruleMatches(policyNS string, r rule, other endpoint, t target) bool {
	if !portsMatch(r.ports, t) {
		return false
	}
	if r.peers == nil {
		return true
	}
	for _, p := range r.peers {
		if e.peerMatches(policyNS, p, other) {
			return true
		}
	}
	return false
}

func (e *Engine) peerMatches(policyNS string, p peer, ep endpoint) bool {
	switch {
	case p.matchesNothing:
		return false
	case p.block != nil:
		if !ep.addr.IsValid() || !p.block.Contains(ep.addr) {
			return false
		}
		for _, x := range p.except {
			if x.Contains(ep.addr) {
				return false
			}
		}
		return true
	case ep.pod == nil:
		return false
	}
	if p.hasNS {
		if !p.nss.Matches(e.namespaceLabels(ep.pod.Namespace)) {
			return false
		}
	} else if ep.pod.Namespace != policyNS {
		return false
	}
	return !p.hasPod || p.pods.Matches(ep.pod.Labels)
}

// NamespaceNameLabel is set on every namespace, as Kubernetes does, so a
// namespaceSelector can pick a namespace by name.
const NamespaceNameLabel = "kubernetes.io/metadata.name"

func (e *Engine) namespaceLabels(ns string) map[string]string {
	l := make(map[string]string, len(e.nsLabels[ns])+1)
	for k, v := range e.nsLabels[ns] {
		l[k] = v
	}
	l[NamespaceNameLabel] = ns
	return l
}

// portsMatch: a pod destination is matched by container port number or
// name; any other destination by the dialled port (names never match).
func portsMatch(ports []portRule, t target) bool {
	if ports == nil {
		return true
	}
	num, name := t.dport, ""
	if t.port != nil {
		num, name = t.port.ContainerPort, t.port.Name
	}
	for _, r := range ports {
		switch {
		case r.proto != t.proto || r.badRange:
		case r.any:
			return true
		case r.name != "":
			if name != "" && r.name == name {
				return true
			}
		case num >= r.lo && num <= r.hi:
			return true
		}
	}
	return false
}
