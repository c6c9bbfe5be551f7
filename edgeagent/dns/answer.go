package dns

import (
	"net/netip"
	"strings"
)

// zone answers questions for one cluster domain from a View. It holds no
// state of its own, so answering never blocks on anything but the view.
type zone struct {
	domain string // lower case, no trailing dot
	ttl    uint32
	view   View
}

// answer builds the response to q. It never recurses: names outside the
// domain are REFUSED, so a stub resolver moves on to the next nameserver.
func (z *zone) answer(q *Message) *Message {
	r := &Message{
		ID: q.ID, Response: true, Opcode: q.Opcode,
		RecursionDesired: q.RecursionDesired,
		Questions:        q.Questions,
	}
	switch {
	case q.Response:
		r.RCode = RCodeFormErr
		return r
	case q.Opcode != 0:
		r.RCode = RCodeNotImp
		return r
	case len(q.Questions) != 1:
		r.RCode = RCodeFormErr
		return r
	}
	qn := q.Questions[0]
	name := strings.TrimSuffix(strings.ToLower(qn.Name), ".")
	if qn.Class != ClassINET && qn.Class != ClassANY {
		r.RCode = RCodeRefused
		return r
	}
	rel, ok := z.relative(name)
	if !ok {
		r.RCode = RCodeRefused
		return r
	}
	r.Authoritative = true
	z.lookup(r, name, rel, qn.Type, 0)
	if len(r.Answers) == 0 || r.RCode == RCodeNXDomain {
		// RFC 2308: negative answers carry the SOA so they can be cached.
		r.Authority = []RR{z.soa()}
	}
	return r
}

// relative strips the domain: "web.default.svc" for
// "web.default.svc.cluster.local", "" for the apex.
func (z *zone) relative(name string) (string, bool) {
	if name == z.domain {
		return "", true
	}
	rel, ok := strings.CutSuffix(name, "."+z.domain)
	return rel, ok
}

// maxChase bounds CNAME chains that stay inside the zone.
const maxChase = 8

// lookup appends the records for name (rel is name relative to the domain)
// to r, setting r.RCode for names that do not exist.
func (z *zone) lookup(r *Message, name, rel string, qtype uint16, depth int) {
	labels := strings.Split(rel, ".")
	if rel == "" {
		labels = nil
	}
	n := len(labels)
	switch {
	case n == 0:
		if qtype == TypeSOA || qtype == TypeANY {
			r.Answers = append(r.Answers, z.soa())
		}
		return // the apex exists: NOERROR
	case labels[n-1] != "svc":
		// Pod records (a-b-c-d.<ns>.pod.<domain>) are not served.
		r.RCode = RCodeNXDomain
		return
	case n == 1:
		return // svc.<domain>: an empty non-terminal (RFC 8020), NODATA
	case n == 2:
		if !z.view.HasNamespace(labels[0]) {
			r.RCode = RCodeNXDomain
		}
		return
	}
	ns := labels[n-2]
	svc, ok := z.view.Service(ns, labels[n-3])
	if !ok {
		r.RCode = RCodeNXDomain
		return
	}
	switch n {
	case 3:
		z.serviceRecords(r, name, svc, qtype, depth)
	case 4:
		z.hostRecords(r, name, svc, labels[0], qtype)
	case 5:
		z.srvRecords(r, name, svc, labels[0], labels[1], qtype)
	default:
		r.RCode = RCodeNXDomain
	}
}

// serviceRecords answers NAME.NS.svc.<domain>.
func (z *zone) serviceRecords(r *Message, name string, svc *Service, qtype uint16, depth int) {
	if svc.ExternalName != "" {
		target := strings.TrimSuffix(strings.ToLower(svc.ExternalName), ".")
		r.Answers = append(r.Answers, RR{Name: name, Type: TypeCNAME, Class: ClassINET, TTL: z.ttl, Target: target})
		if qtype == TypeCNAME {
			return
		}
		// Follow targets inside the zone (a service aliasing another);
		// targets outside are the client's resolver's job.
		if rel, ok := z.relative(target); ok && depth < maxChase {
			z.lookup(r, target, rel, qtype, depth+1)
			if r.RCode == RCodeNXDomain {
				r.RCode = RCodeSuccess // the alias exists; its target is the client's problem
			}
		}
		return
	}
	if qtype != TypeA && qtype != TypeANY {
		// AAAA included: services are IPv4-only, so NODATA, never NXDOMAIN
		// (which would make a dual-stack client give up on the A answer).
		return
	}
	if !svc.Headless() {
		if svc.ClusterIP.Is4() {
			r.Answers = append(r.Answers, z.a(name, svc.ClusterIP))
		}
		return
	}
	seen := map[netip.Addr]bool{}
	for _, ep := range svc.Endpoints {
		// Endpoints share node addresses; one A record per address.
		if ep.Ready && ep.Addr.Is4() && !seen[ep.Addr] {
			seen[ep.Addr] = true
			r.Answers = append(r.Answers, z.a(name, ep.Addr))
		}
	}
}

// hostRecords answers HOSTNAME.NAME.NS.svc.<domain>: one endpoint of a
// headless service by its pod hostname (StatefulSet pods), or by the
// synthesized target name SRV answers use for endpoints without one.
func (z *zone) hostRecords(r *Message, name string, svc *Service, host string, qtype uint16) {
	for _, ep := range svc.Endpoints {
		if endpointLabel(ep) != host {
			continue
		}
		if (qtype == TypeA || qtype == TypeANY) && ep.Addr.Is4() {
			r.Answers = append(r.Answers, z.a(name, ep.Addr))
		}
		return
	}
	r.RCode = RCodeNXDomain
}

// srvRecords answers _PORT._PROTO.NAME.NS.svc.<domain> (RFC 2782).
func (z *zone) srvRecords(r *Message, name string, svc *Service, portLabel, protoLabel string, qtype uint16) {
	port, ok1 := strings.CutPrefix(portLabel, "_")
	proto, ok2 := strings.CutPrefix(protoLabel, "_")
	if !ok1 || !ok2 || svc.ExternalName != "" {
		r.RCode = RCodeNXDomain
		return
	}
	var sp *Port
	for i := range svc.Ports {
		p := &svc.Ports[i]
		if p.Name != "" && strings.EqualFold(p.Name, port) && strings.EqualFold(protocolOf(*p), proto) {
			sp = p
			break
		}
	}
	if sp == nil {
		r.RCode = RCodeNXDomain
		return
	}
	if qtype != TypeSRV && qtype != TypeANY {
		return
	}
	svcName := svc.Name + "." + svc.Namespace + ".svc." + z.domain
	if !svc.Headless() {
		r.Answers = append(r.Answers, RR{Name: name, Type: TypeSRV, Class: ClassINET, TTL: z.ttl,
			Weight: 100, Port: sp.Port, Target: strings.ToLower(svcName)})
		if svc.ClusterIP.Is4() {
			r.Additional = append(r.Additional, z.a(strings.ToLower(svcName), svc.ClusterIP))
		}
		return
	}
	// Headless: each ready endpoint with its own port. This is where
	// Flotilla's node-address-plus-host-port endpoints are told apart.
	ready := 0
	for _, ep := range svc.Endpoints {
		if ep.Ready {
			ready++
		}
	}
	for _, ep := range svc.Endpoints {
		if !ep.Ready || !ep.Addr.Is4() {
			continue
		}
		p, ok := endpointPort(ep, *sp)
		if !ok {
			continue
		}
		target := strings.ToLower(endpointLabel(ep) + "." + svcName)
		r.Answers = append(r.Answers, RR{Name: name, Type: TypeSRV, Class: ClassINET, TTL: z.ttl,
			Weight: uint16(max(1, 100/ready)), Port: p, Target: target})
		r.Additional = append(r.Additional, z.a(target, ep.Addr))
	}
}

// endpointPort finds the endpoint's port matching a service port: by name,
// or the only port when the service has one unnamed port.
func endpointPort(ep Endpoint, sp Port) (uint16, bool) {
	for _, p := range ep.Ports {
		if strings.EqualFold(p.Name, sp.Name) && strings.EqualFold(protocolOf(p), protocolOf(sp)) {
			return p.Port, true
		}
	}
	return 0, false
}

// endpointLabel is the DNS label of one endpoint: its hostname, else its
// pod name, else its address with dashes (as Kubernetes does for pods).
func endpointLabel(ep Endpoint) string {
	switch {
	case ep.Hostname != "":
		return strings.ToLower(ep.Hostname)
	case ep.PodName != "":
		return strings.ToLower(ep.PodName)
	default:
		return strings.ReplaceAll(ep.Addr.String(), ".", "-")
	}
}

func protocolOf(p Port) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return strings.ToLower(p.Protocol)
}

func (z *zone) a(name string, addr netip.Addr) RR {
	return RR{Name: name, Type: TypeA, Class: ClassINET, TTL: z.ttl, Addr: addr}
}

// soa is the zone's SOA. The serial is constant: no secondary ever
// transfers this zone, and negative caching only needs Minimum.
func (z *zone) soa() RR {
	return RR{Name: z.domain, Type: TypeSOA, Class: ClassINET, TTL: z.ttl, SOA: &SOA{
		MName: "ns.dns." + z.domain, RName: "hostmaster." + z.domain,
		Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minimum: z.ttl,
	}}
}
