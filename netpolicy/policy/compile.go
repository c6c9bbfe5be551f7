package policy

import (
	"net/netip"

	"github.com/flotilla-edge/flotilla/api"
)

// compiled is a NetworkPolicy with its selectors parsed.
type compiled struct {
	ns, name string
	// selects is the policy's podSelector; a selector that does not parse
	// selects every pod of the namespace, so a broken policy fails closed
	// (the API server rejects such policies anyway).
	selects         api.Selector
	ingress, egress bool
	inRules         []rule
	outRules        []rule
}

func (c *compiled) String() string { return c.ns + "/" + c.name }

// rule is one ingress or egress rule: peers nil = any peer, ports nil =
// any port.
type rule struct {
	peers []peer
	ports []portRule
}

type peer struct {
	pods, nss      api.Selector
	hasPod, hasNS  bool
	block          *netip.Prefix
	except         []netip.Prefix
	matchesNothing bool // a selector or CIDR that does not parse
}

type portRule struct {
	proto    string
	any      bool
	lo, hi   uint16
	name     string
	badRange bool
}

func compile(p *api.NetworkPolicy) *compiled {
	c := &compiled{ns: p.Namespace, name: p.Name,
		ingress: p.AppliesTo(api.PolicyTypeIngress), egress: p.AppliesTo(api.PolicyTypeEgress)}
	if sel, err := p.Spec.PodSelector.AsSelector(); err == nil {
		c.selects = sel
	}
	for _, r := range p.Spec.Ingress {
		c.inRules = append(c.inRules, compileRule(r.From, r.Ports))
	}
	for _, r := range p.Spec.Egress {
		c.outRules = append(c.outRules, compileRule(r.To, r.Ports))
	}
	return c
}

func compileRule(peers []api.NetworkPolicyPeer, ports []api.NetworkPolicyPort) rule {
	var r rule
	for _, p := range peers {
		r.peers = append(r.peers, compilePeer(p))
	}
	for _, p := range ports {
		r.ports = append(r.ports, compilePort(p))
	}
	return r
}

func compilePeer(p api.NetworkPolicyPeer) peer {
	var out peer
	if p.IPBlock != nil {
		pfx, err := netip.ParsePrefix(p.IPBlock.CIDR)
		if err != nil {
			return peer{matchesNothing: true}
		}
		pfx = pfx.Masked()
		out.block = &pfx
		for _, e := range p.IPBlock.Except {
			ex, err := netip.ParsePrefix(e)
			if err != nil {
				// An unparsable exception must not widen the block.
				return peer{matchesNothing: true}
			}
			out.except = append(out.except, ex.Masked())
		}
		return out
	}
	if p.PodSelector != nil {
		sel, err := p.PodSelector.AsSelector()
		if err != nil {
			return peer{matchesNothing: true}
		}
		out.pods, out.hasPod = sel, true
	}
	if p.NamespaceSelector != nil {
		sel, err := p.NamespaceSelector.AsSelector()
		if err != nil {
			return peer{matchesNothing: true}
		}
		out.nss, out.hasNS = sel, true
	}
	if !out.hasPod && !out.hasNS {
		out.matchesNothing = true
	}
	return out
}

func compilePort(p api.NetworkPolicyPort) portRule {
	r := portRule{proto: normProto(p.Protocol)}
	switch {
	case p.Port == nil:
		r.any = true
	case p.Port.IsString:
		r.name = p.Port.StrVal
	default:
		if p.Port.IntVal < 1 || p.Port.IntVal > 65535 {
			r.badRange = true
			break
		}
		r.lo, r.hi = uint16(p.Port.IntVal), uint16(p.Port.IntVal)
		if p.EndPort != nil {
			if *p.EndPort < p.Port.IntVal || *p.EndPort > 65535 {
				r.badRange = true
				break
			}
			r.hi = uint16(*p.EndPort)
		}
	}
	return r
}
