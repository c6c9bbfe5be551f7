package printers

import (
	"fmt"
	"strings"

	"github.com/flotilla-edge/flotilla/api"
)

func init() {
	register("NetworkPolicy", KindPrinter{
		Columns: func(Options) []string { return []string{"NAME", "POD-SELECTOR", "AGE"} },
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.NetworkPolicy)
			return []string{x.Name, labelSelectorString(&x.Spec.PodSelector), Age(x.CreationTimestamp, o.now())}
		},
		Describe: func(d *describer, obj api.Object) { d.networkPolicy(obj.(*api.NetworkPolicy)) },
	})
}

// labelSelectorString renders a LabelSelector like kubectl: "<none>" for
// the empty selector (which selects everything).
func labelSelectorString(ls *api.LabelSelector) string {
	s, err := ls.AsSelector()
	if err != nil {
		return "<invalid: " + err.Error() + ">"
	}
	return orNone(s.String())
}

// networkPolicy follows kubectl's describe layout: the selected pods, then
// each rule's peers and ports, saying plainly what an empty list means.
func (d *describer) networkPolicy(x *api.NetworkPolicy) {
	d.meta(&x.ObjectMeta, true)
	d.line(0, "Spec:")
	sel := labelSelectorString(&x.Spec.PodSelector)
	if sel == "<none>" {
		sel = "<none> (Allowing the specific traffic to all pods in this namespace)"
	}
	d.line(1, "PodSelector:\t%s", sel)
	if x.AppliesTo(api.PolicyTypeIngress) {
		d.line(1, "Allowing ingress traffic:")
		if len(x.Spec.Ingress) == 0 {
			d.line(2, "<none> (Selected pods are isolated for ingress connectivity)")
		}
		for i, r := range x.Spec.Ingress {
			if i > 0 {
				d.line(2, "----------")
			}
			d.policyRule("From", r.From, r.Ports)
		}
	} else {
		d.line(1, "Not affecting ingress traffic")
	}
	if x.AppliesTo(api.PolicyTypeEgress) {
		d.line(1, "Allowing egress traffic:")
		if len(x.Spec.Egress) == 0 {
			d.line(2, "<none> (Selected pods are isolated for egress connectivity)")
		}
		for i, r := range x.Spec.Egress {
			if i > 0 {
				d.line(2, "----------")
			}
			d.policyRule("To", r.To, r.Ports)
		}
	} else {
		d.line(1, "Not affecting egress traffic")
	}
	types := x.Spec.PolicyTypes
	if len(types) == 0 {
		types = []string{"<default>"}
	}
	d.line(1, "Policy Types:\t%s", strings.Join(types, ", "))
}

func (d *describer) policyRule(dir string, peers []api.NetworkPolicyPeer, ports []api.NetworkPolicyPort) {
	if len(ports) == 0 {
		d.line(2, "To Port:\t<any> (traffic allowed to all ports)")
	}
	for _, p := range ports {
		d.line(2, "To Port:\t%s", policyPortString(p))
	}
	if len(peers) == 0 {
		d.line(2, "%s:\t<any> (traffic not restricted by %s)", dir, map[string]string{"From": "source", "To": "destination"}[dir])
		return
	}
	d.line(2, "%s:", dir)
	for _, p := range peers {
		switch {
		case p.IPBlock != nil:
			d.line(3, "IPBlock:")
			d.line(4, "CIDR:\t%s", p.IPBlock.CIDR)
			d.line(4, "Except:\t%s", strings.Join(p.IPBlock.Except, ", "))
		case p.PodSelector != nil && p.NamespaceSelector != nil:
			d.line(3, "NamespaceSelector:\t%s", labelSelectorString(p.NamespaceSelector))
			d.line(3, "PodSelector:\t%s", labelSelectorString(p.PodSelector))
		case p.NamespaceSelector != nil:
			d.line(3, "NamespaceSelector:\t%s", labelSelectorString(p.NamespaceSelector))
		case p.PodSelector != nil:
			d.line(3, "PodSelector:\t%s", labelSelectorString(p.PodSelector))
		}
	}
}

func policyPortString(p api.NetworkPolicyPort) string {
	proto := p.Protocol
	if proto == "" {
		proto = "TCP"
	}
	switch {
	case p.Port == nil:
		return "<any>/" + proto
	case p.EndPort != nil:
		return fmt.Sprintf("%s-%d/%s", p.Port, *p.EndPort, proto)
	}
	return p.Port.String() + "/" + proto
}
