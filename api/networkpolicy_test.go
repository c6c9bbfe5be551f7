package api_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
)

func netpol(mut func(*api.NetworkPolicy)) *api.NetworkPolicy {
	p := &api.NetworkPolicy{
		ObjectMeta: api.ObjectMeta{Name: "allow-web", Namespace: "default"},
		Spec: api.NetworkPolicySpec{
			PodSelector: api.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Ingress: []api.NetworkPolicyIngressRule{{
				From:  []api.NetworkPolicyPeer{{PodSelector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
				Ports: []api.NetworkPolicyPort{{Port: ptr(api.FromInt(5432))}},
			}},
		},
	}
	if mut != nil {
		mut(p)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func TestNetworkPolicyValidation(t *testing.T) {
	tests := []struct {
		name string
		pol  *api.NetworkPolicy
		want string // "" = valid; else a substring of the error
	}{
		{"ingress by pod selector", netpol(nil), ""},
		{"deny all (empty selector, no rules)", netpol(func(p *api.NetworkPolicy) { p.Spec = api.NetworkPolicySpec{} }), ""},
		{"named port", netpol(func(p *api.NetworkPolicy) { p.Spec.Ingress[0].Ports[0].Port = ptr(api.FromString("postgres")) }), ""},
		{"port range", netpol(func(p *api.NetworkPolicy) { p.Spec.Ingress[0].Ports[0].EndPort = api.Int32(5440) }), ""},
		{"ipBlock with except", netpol(func(p *api.NetworkPolicy) {
			p.Spec.Egress = []api.NetworkPolicyEgressRule{{To: []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}}}}
		}), ""},
		{"bad cidr", netpol(func(p *api.NetworkPolicy) {
			p.Spec.Egress = []api.NetworkPolicyEgressRule{{To: []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: "10.0.0.0/33"}}}}}
		}), `spec.egress[0].to[0].ipBlock.cidr: "10.0.0.0/33" is not an IPv4 CIDR`},
		{"except outside cidr", netpol(func(p *api.NetworkPolicy) {
			p.Spec.Ingress[0].From = []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"192.168.0.0/24"}}}}
		}), "spec.ingress[0].from[0].ipBlock.except[0]: 192.168.0.0/24 is not strictly inside cidr 10.0.0.0/16"},
		{"ipBlock with selector", netpol(func(p *api.NetworkPolicy) {
			p.Spec.Ingress[0].From[0].IPBlock = &api.IPBlock{CIDR: "10.0.0.0/8"}
		}), "spec.ingress[0].from[0].ipBlock: may not be combined"},
		{"empty peer", netpol(func(p *api.NetworkPolicy) { p.Spec.Ingress[0].From = []api.NetworkPolicyPeer{{}} }),
			"spec.ingress[0].from[0]: one of podSelector, namespaceSelector or ipBlock is required"},
		{"port out of range", netpol(func(p *api.NetworkPolicy) { p.Spec.Ingress[0].Ports[0].Port = ptr(api.FromInt(70000)) }),
			"spec.ingress[0].ports[0].port: must be between 1 and 65535, got 70000"},
		{"endPort below port", netpol(func(p *api.NetworkPolicy) { p.Spec.Ingress[0].Ports[0].EndPort = api.Int32(80) }),
			"spec.ingress[0].ports[0].endPort: 80 is less than port 5432"},
		{"endPort with named port", netpol(func(p *api.NetworkPolicy) {
			p.Spec.Ingress[0].Ports[0] = api.NetworkPolicyPort{Port: ptr(api.FromString("pg")), EndPort: api.Int32(90)}
		}), "spec.ingress[0].ports[0].endPort: requires a numeric port"},
		{"bad protocol", netpol(func(p *api.NetworkPolicy) { p.Spec.Ingress[0].Ports[0].Protocol = "SCTP" }),
			`spec.ingress[0].ports[0].protocol: "SCTP" is not TCP or UDP`},
		{"unknown policy type", netpol(func(p *api.NetworkPolicy) { p.Spec.PolicyTypes = []string{"Ingress", "Sideways"} }),
			`spec.policyTypes[1]: "Sideways" is not Ingress or Egress`},
		{"bad selector operator", netpol(func(p *api.NetworkPolicy) {
			p.Spec.PodSelector.MatchExpressions = []api.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}
		}), "spec.podSelector: matchExpressions[0].operator"},
		{"bad namespace selector label", netpol(func(p *api.NetworkPolicy) {
			p.Spec.Ingress[0].From[0].NamespaceSelector = &api.LabelSelector{MatchLabels: map[string]string{"team": "no spaces"}}
		}), "spec.ingress[0].from[0].namespaceSelector.matchLabels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api.Defaults(tt.pol)
			err := api.Validate(tt.pol)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// The policyTypes default is Kubernetes': Ingress, plus Egress only when
// egress rules are given, so an ingress-only manifest never isolates egress.
func TestNetworkPolicyDefaults(t *testing.T) {
	tests := []struct {
		name string
		pol  *api.NetworkPolicy
		want []string
	}{
		{"ingress only", netpol(nil), []string{"Ingress"}},
		{"with egress rules", netpol(func(p *api.NetworkPolicy) {
			p.Spec.Egress = []api.NetworkPolicyEgressRule{{}}
		}), []string{"Ingress", "Egress"}},
		{"explicit egress kept", netpol(func(p *api.NetworkPolicy) { p.Spec.PolicyTypes = []string{"Egress"} }), []string{"Egress"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pol.AppliesTo("Egress"); got != slices.Contains(tt.want, "Egress") {
				t.Errorf("before defaulting AppliesTo(Egress) = %v", got)
			}
			api.Defaults(tt.pol)
			if !slices.Equal(tt.pol.Spec.PolicyTypes, tt.want) {
				t.Errorf("policyTypes %v, want %v", tt.pol.Spec.PolicyTypes, tt.want)
			}
			if tt.pol.Spec.Ingress[0].Ports[0].Protocol != "TCP" {
				t.Errorf("port protocol not defaulted")
			}
		})
	}
	if ki, err := api.LookupKind("netpol"); err != nil || ki.Kind != "NetworkPolicy" {
		t.Fatalf("netpol: %v %v", ki, err)
	}
}
