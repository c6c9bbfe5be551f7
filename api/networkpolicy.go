package api

import (
	"fmt"
	"net/netip"
	"slices"
)

// NetworkPolicy restricts which traffic reaches (ingress) and leaves
// (egress) the pods it selects, with Kubernetes' semantics: a pod selected
// by any policy of a type is isolated for that type, and then only traffic
// allowed by the union of those policies' rules passes; a pod no policy
// selects allows everything. Where it is enforced is in docs/networking.md.
type NetworkPolicy struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       NetworkPolicySpec `json:"spec"`
}

// NetworkPolicySpec is what a policy selects and allows.
type NetworkPolicySpec struct {
	// PodSelector picks the pods of the policy's namespace it applies to;
	// the empty selector picks all of them.
	PodSelector LabelSelector `json:"podSelector"`
	// PolicyTypes lists Ingress and/or Egress. Default: Ingress, plus
	// Egress when egress rules are given.
	PolicyTypes []string `json:"policyTypes,omitempty"`
	// Ingress rules: traffic to the selected pods matching any rule passes.
	Ingress []NetworkPolicyIngressRule `json:"ingress,omitempty"`
	// Egress rules: traffic from the selected pods matching any rule passes.
	Egress []NetworkPolicyEgressRule `json:"egress,omitempty"`
}

// NetworkPolicyIngressRule admits traffic from any of From (every source
// when empty) to any of Ports (every port when empty).
type NetworkPolicyIngressRule struct {
	From  []NetworkPolicyPeer `json:"from,omitempty"`
	Ports []NetworkPolicyPort `json:"ports,omitempty"`
}

// NetworkPolicyEgressRule admits traffic to any of To (every destination
// when empty) on any of Ports (every port when empty).
type NetworkPolicyEgressRule struct {
	To    []NetworkPolicyPeer `json:"to,omitempty"`
	Ports []NetworkPolicyPort `json:"ports,omitempty"`
}

// NetworkPolicyPeer is one set of peers. PodSelector alone means pods of
// the policy's namespace; NamespaceSelector alone means every pod of the
// matching namespaces; both means the matching pods of the matching
// namespaces (AND). IPBlock excludes the other two.
type NetworkPolicyPeer struct {
	PodSelector       *LabelSelector `json:"podSelector,omitempty"`
	NamespaceSelector *LabelSelector `json:"namespaceSelector,omitempty"`
	IPBlock           *IPBlock       `json:"ipBlock,omitempty"`
}

// IPBlock is a CIDR minus some sub-ranges of it.
type IPBlock struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except,omitempty"`
}

// NetworkPolicyPort is a protocol and a port or port range. A pod's port
// is its container port (by number, or by name); an address outside the
// fleet is matched by the port it is dialled on.
type NetworkPolicyPort struct {
	Protocol string `json:"protocol,omitempty"` // TCP (default) or UDP
	// Port is a number or a container port name; nil means every port.
	Port *IntOrString `json:"port,omitempty"`
	// EndPort makes Port..EndPort a range (Port must then be a number).
	EndPort *int32 `json:"endPort,omitempty"`
}

// Policy types.
const (
	PolicyTypeIngress = "Ingress"
	PolicyTypeEgress  = "Egress"
)

// AppliesTo reports whether the policy has type t (Ingress or Egress),
// applying the default when policyTypes is empty (a policy read before
// defaulting is judged the same way).
func (p *NetworkPolicy) AppliesTo(t string) bool {
	types := p.Spec.PolicyTypes
	if len(types) == 0 {
		types = defaultPolicyTypes(&p.Spec)
	}
	return slices.Contains(types, t)
}

func defaultPolicyTypes(s *NetworkPolicySpec) []string {
	t := []string{PolicyTypeIngress}
	if len(s.Egress) > 0 {
		t = append(t, PolicyTypeEgress)
	}
	return t
}

func defaultNetworkPolicy(p *NetworkPolicy) {
	if len(p.Spec.PolicyTypes) == 0 {
		p.Spec.PolicyTypes = defaultPolicyTypes(&p.Spec)
	}
	for i := range p.Spec.Ingress {
		defaultPolicyPorts(p.Spec.Ingress[i].Ports)
	}
	for i := range p.Spec.Egress {
		defaultPolicyPorts(p.Spec.Egress[i].Ports)
	}
}

func defaultPolicyPorts(ps []NetworkPolicyPort) {
	for i := range ps {
		if ps[i].Protocol == "" {
			ps[i].Protocol = "TCP"
		}
	}
}

func validateNetworkPolicy(fe *FieldErrors, p *NetworkPolicy) {
	s := &p.Spec
	validateLabelSelector(fe, "spec.podSelector", &s.PodSelector)
	seen := map[string]bool{}
	for i, t := range s.PolicyTypes {
		f := fmt.Sprintf("spec.policyTypes[%d]", i)
		switch {
		case t != PolicyTypeIngress && t != PolicyTypeEgress:
			fe.add(f, "%q is not Ingress or Egress", t)
		case seen[t]:
			fe.add(f, "duplicate %s", t)
		}
		seen[t] = true
	}
	for i, r := range s.Ingress {
		f := fmt.Sprintf("spec.ingress[%d]", i)
		validatePeers(fe, f+".from", r.From)
		validatePolicyPorts(fe, f+".ports", r.Ports)
	}
	for i, r := range s.Egress {
		f := fmt.Sprintf("spec.egress[%d]", i)
		validatePeers(fe, f+".to", r.To)
		validatePolicyPorts(fe, f+".ports", r.Ports)
	}
}

func validateLabelSelector(fe *FieldErrors, f string, ls *LabelSelector) {
	if ls == nil {
		return
	}
	if _, err := ls.AsSelector(); err != nil {
		fe.add(f, "%v", err)
	}
	if err := ValidLabels(ls.MatchLabels); err != nil {
		fe.add(f+".matchLabels", "%v", err)
	}
}

func validatePeers(fe *FieldErrors, f string, peers []NetworkPolicyPeer) {
	for i, p := range peers {
		pf := fmt.Sprintf("%s[%d]", f, i)
		if p.PodSelector == nil && p.NamespaceSelector == nil && p.IPBlock == nil {
			fe.add(pf, "one of podSelector, namespaceSelector or ipBlock is required")
		}
		if p.IPBlock != nil && (p.PodSelector != nil || p.NamespaceSelector != nil) {
			fe.add(pf+".ipBlock", "may not be combined with podSelector or namespaceSelector")
		}
		validateLabelSelector(fe, pf+".podSelector", p.PodSelector)
		validateLabelSelector(fe, pf+".namespaceSelector", p.NamespaceSelector)
		if p.IPBlock != nil {
			validateIPBlock(fe, pf+".ipBlock", p.IPBlock)
		}
	}
}

func validateIPBlock(fe *FieldErrors, f string, b *IPBlock) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !cidr.Addr().Is4() {
		fe.add(f+".cidr", "%q is not an IPv4 CIDR", b.CIDR)
		return
	}
	for i, e := range b.Except {
		ef := fmt.Sprintf("%s.except[%d]", f, i)
		ex, err := netip.ParsePrefix(e)
		switch {
		case err != nil || !ex.Addr().Is4():
			fe.add(ef, "%q is not an IPv4 CIDR", e)
		case ex.Bits() <= cidr.Bits() || !cidr.Contains(ex.Addr()):
			fe.add(ef, "%s is not strictly inside cidr %s", e, b.CIDR)
		}
	}
}

func validatePolicyPorts(fe *FieldErrors, f string, ports []NetworkPolicyPort) {
	for i, p := range ports {
		pf := fmt.Sprintf("%s[%d]", f, i)
		switch p.Protocol {
		case "", "TCP", "UDP":
		default:
			fe.add(pf+".protocol", "%q is not TCP or UDP", p.Protocol)
		}
		if p.Port != nil {
			if p.Port.IsString {
				if !portNameRe.MatchString(p.Port.StrVal) || len(p.Port.StrVal) > 15 {
					fe.add(pf+".port", "%q is not a port number or an IANA port name", p.Port.StrVal)
				}
			} else if p.Port.IntVal < 1 || p.Port.IntVal > 65535 {
				fe.add(pf+".port", "must be between 1 and 65535, got %d", p.Port.IntVal)
			}
		}
		if p.EndPort == nil {
			continue
		}
		switch {
		case p.Port == nil || p.Port.IsString:
			fe.add(pf+".endPort", "requires a numeric port")
		case *p.EndPort > 65535:
			fe.add(pf+".endPort", "must be at most 65535, got %d", *p.EndPort)
		case *p.EndPort < p.Port.IntVal:
			fe.add(pf+".endPort", "%d is less than port %d", *p.EndPort, p.Port.IntVal)
		}
	}
}
