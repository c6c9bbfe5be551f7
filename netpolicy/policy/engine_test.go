package policy_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/netpolicy/policy"
)

// The fleet of every case: two namespaces' worth of pods on three nodes;
// each pod endpoint is node address + host port.
var (
	nodeA = netip.MustParseAddr("10.0.0.1")
	nodeB = netip.MustParseAddr("10.0.0.2")
	nodeC = netip.MustParseAddr("10.0.0.3")

	beHTTP  = netip.AddrPortFrom(nodeB, 40001)
	beMetr  = netip.AddrPortFrom(nodeB, 40002)
	dbPG    = netip.AddrPortFrom(nodeB, 40003)
	monProd = netip.AddrPortFrom(nodeC, 40004)

	svcBackend = netip.MustParseAddrPort("10.43.0.10:80") // -> beHTTP
	svcMixed   = netip.MustParseAddrPort("10.43.0.11:80") // -> beHTTP, dbPG
	external   = netip.MustParseAddrPort("192.0.2.7:443")
	external2  = netip.MustParseAddrPort("192.0.2.200:443")
)

func fleet(pols ...*api.NetworkPolicy) *policy.Engine {
	return policy.New(policy.Input{
		Policies: pols,
		Namespaces: []policy.Namespace{
			{Name: "default"},
			{Name: "prod", Labels: map[string]string{"team": "ops", "env": "prod"}},
			{Name: "dev", Labels: map[string]string{"team": "ops", "env": "dev"}},
		},
		Pods: []policy.Pod{
			{Namespace: "default", Name: "fe", Labels: map[string]string{"app": "frontend"}, NodeIP: nodeA,
				Ports: []policy.Port{{Name: "http", ContainerPort: 8080, HostPort: 40000}}},
			{Namespace: "default", Name: "be", Labels: map[string]string{"app": "backend"}, NodeIP: nodeB,
				Ports: []policy.Port{{Name: "http", ContainerPort: 8080, HostPort: 40001}, {Name: "metrics", ContainerPort: 9090, HostPort: 40002}}},
			{Namespace: "default", Name: "db", Labels: map[string]string{"app": "db"}, NodeIP: nodeB,
				Ports: []policy.Port{{Name: "pg", ContainerPort: 5432, HostPort: 40003}}},
			{Namespace: "prod", Name: "mon", Labels: map[string]string{"app": "monitor"}, NodeIP: nodeC,
				Ports: []policy.Port{{ContainerPort: 9000, HostPort: 40004}}},
			{Namespace: "dev", Name: "mon", Labels: map[string]string{"app": "monitor"}, NodeIP: nodeC,
				Ports: []policy.Port{{ContainerPort: 9000, HostPort: 40005}}},
		},
		Services: []policy.Service{
			{VIP: svcBackend.Addr(), Port: 80, Protocol: "TCP", Backends: []netip.AddrPort{beHTTP}},
			{VIP: svcMixed.Addr(), Port: 80, Protocol: "TCP", Backends: []netip.AddrPort{beHTTP, dbPG}},
		},
	})
}

func sel(kv ...string) *api.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &api.LabelSelector{MatchLabels: m}
}

func pol(name, ns string, podSel *api.LabelSelector, mut func(*api.NetworkPolicySpec)) *api.NetworkPolicy {
	p := &api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Name: name, Namespace: ns}}
	if podSel != nil {
		p.Spec.PodSelector = *podSel
	}
	if mut != nil {
		mut(&p.Spec)
	}
	api.Defaults(p)
	return p
}

func in(rules ...api.NetworkPolicyIngressRule) func(*api.NetworkPolicySpec) {
	return func(s *api.NetworkPolicySpec) { s.Ingress = rules }
}

func out(rules ...api.NetworkPolicyEgressRule) func(*api.NetworkPolicySpec) {
	return func(s *api.NetworkPolicySpec) { s.Egress = rules; s.PolicyTypes = []string{"Egress"} }
}

func port(v api.IntOrString) api.NetworkPolicyPort { return api.NetworkPolicyPort{Port: &v} }

var (
	denyAllIngress = pol("deny-all", "default", nil, nil)
	denyAllEgress  = pol("deny-egress", "default", nil, func(s *api.NetworkPolicySpec) { s.PolicyTypes = []string{"Egress"} })
	feToBackend    = pol("fe-to-backend", "default", sel("app", "frontend"), out(api.NetworkPolicyEgressRule{
		To: []api.NetworkPolicyPeer{{PodSelector: sel("app", "backend")}}}))
)

func TestAllowed(t *testing.T) {
	fe := policy.FromPod("default", "fe")
	be := policy.FromPod("default", "be")
	tests := []struct {
		name   string
		pols   []*api.NetworkPolicy
		src    policy.Source
		dst    netip.AddrPort
		proto  string
		allow  bool
		reason string // substring of the denial
	}{
		{"no policy allows everything", nil, fe, dbPG, "TCP", true, ""},
		{"no policy allows external", nil, fe, external, "TCP", true, ""},
		{"deny-all ingress isolates every pod of the namespace", []*api.NetworkPolicy{denyAllIngress}, fe, dbPG, "TCP", false,
			"denied by NetworkPolicy default/deny-all (ingress of default/db port 5432/TCP)"},
		{"deny-all ingress leaves egress to outside alone", []*api.NetworkPolicy{denyAllIngress}, fe, external, "TCP", true, ""},
		{"deny-all ingress does not touch other namespaces", []*api.NetworkPolicy{denyAllIngress}, fe, monProd, "TCP", true, ""},
		{"policy selecting other pods leaves this one open", []*api.NetworkPolicy{pol("db-only", "default", sel("app", "db"), nil)}, fe, beHTTP, "TCP", true, ""},
		{"deny-all egress", []*api.NetworkPolicy{denyAllEgress}, fe, beHTTP, "TCP", false,
			"denied by NetworkPolicy default/deny-egress (egress of default/fe to 10.0.0.2:40001/TCP)"},
		{"deny-all egress covers outside too", []*api.NetworkPolicy{denyAllEgress}, fe, external, "TCP", false, "default/deny-egress"},
		{"egress allow by pod label", []*api.NetworkPolicy{denyAllEgress, feToBackend}, fe, beHTTP, "TCP", true, ""},
		{"egress allow does not cover other pods", []*api.NetworkPolicy{denyAllEgress, feToBackend}, fe, dbPG, "TCP", false,
			"denied by NetworkPolicies default/deny-egress, default/fe-to-backend"},
		{"egress to a service is checked on its backend", []*api.NetworkPolicy{denyAllEgress, feToBackend}, fe, svcBackend, "TCP", true, ""},
		{"service with a denied backend is denied", []*api.NetworkPolicy{denyAllEgress, feToBackend}, fe, svcMixed, "TCP", false,
			"(service 10.43.0.11:80 backend 10.0.0.2:40003)"},
		{"egress allowed but destination ingress-isolated", []*api.NetworkPolicy{feToBackend, pol("be-closed", "default", sel("app", "backend"), nil)}, fe, beHTTP, "TCP", false,
			"default/be-closed (ingress of default/be"},
		{"union of two policies: first admits", []*api.NetworkPolicy{
			pol("db-from-be", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{{PodSelector: sel("app", "backend")}}})),
			pol("db-from-fe", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{{PodSelector: sel("app", "frontend")}}}))},
			be, dbPG, "TCP", true, ""},
		{"union of two policies: second admits", []*api.NetworkPolicy{
			pol("db-from-be", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{{PodSelector: sel("app", "backend")}}})),
			pol("db-from-fe", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{{PodSelector: sel("app", "frontend")}}}))},
			fe, dbPG, "TCP", true, ""},
		{"podSelector alone means the policy's namespace", []*api.NetworkPolicy{
			pol("db-from-monitor", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{{PodSelector: sel("app", "monitor")}}}))},
			policy.FromPod("prod", "mon"), dbPG, "TCP", false, "default/db-from-monitor"},
		{"namespaceSelector and podSelector in one peer: AND (match)", []*api.NetworkPolicy{
			pol("db-from-prod-monitor", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{{
				NamespaceSelector: sel("env", "prod"), PodSelector: sel("app", "monitor")}}}))},
			policy.FromPod("prod", "mon"), dbPG, "TCP", true, ""},
		{"namespaceSelector and podSelector in one peer: AND (other namespace)", []*api.NetworkPolicy{
			pol("db-from-prod-monitor", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{{
				NamespaceSelector: sel("env", "prod"), PodSelector: sel("app", "monitor")}}}))},
			policy.FromPod("dev", "mon"), dbPG, "TCP", false, "db-from-prod-monitor"},
		{"namespaceSelector and podSelector as separate peers: OR", []*api.NetworkPolicy{
			pol("db-from-prod-or-monitor", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{
				{NamespaceSelector: sel("env", "prod")}, {PodSelector: sel("app", "frontend")}}}))},
			fe, dbPG, "TCP", true, ""},
		{"namespaceSelector by the name label", []*api.NetworkPolicy{
			pol("db-from-dev", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{
				{NamespaceSelector: sel(policy.NamespaceNameLabel, "dev")}}}))},
			policy.FromPod("dev", "mon"), dbPG, "TCP", true, ""},
		{"empty namespaceSelector: every namespace", []*api.NetworkPolicy{
			pol("db-from-anywhere", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{
				{NamespaceSelector: &api.LabelSelector{}}}}))},
			policy.FromPod("dev", "mon"), dbPG, "TCP", true, ""},
		{"pod peers never match an outside address", []*api.NetworkPolicy{
			pol("db-from-anywhere", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{
				{NamespaceSelector: &api.LabelSelector{}}}}))},
			policy.FromIP(netip.MustParseAddr("192.0.2.1")), dbPG, "TCP", false, "db-from-anywhere"},
		{"port by number is the container port", []*api.NetworkPolicy{
			pol("be-http", "default", sel("app", "backend"), in(api.NetworkPolicyIngressRule{Ports: []api.NetworkPolicyPort{port(api.FromInt(8080))}}))},
			fe, beHTTP, "TCP", true, ""},
		{"port by number: other container port denied", []*api.NetworkPolicy{
			pol("be-http", "default", sel("app", "backend"), in(api.NetworkPolicyIngressRule{Ports: []api.NetworkPolicyPort{port(api.FromInt(8080))}}))},
			fe, beMetr, "TCP", false, "port 9090/TCP"},
		{"port by number: the host port is not the policy port", []*api.NetworkPolicy{
			pol("be-hostport", "default", sel("app", "backend"), in(api.NetworkPolicyIngressRule{Ports: []api.NetworkPolicyPort{port(api.FromInt(40001))}}))},
			fe, beHTTP, "TCP", false, "be-hostport"},
		{"port by name", []*api.NetworkPolicy{
			pol("be-metrics", "default", sel("app", "backend"), in(api.NetworkPolicyIngressRule{Ports: []api.NetworkPolicyPort{port(api.FromString("metrics"))}}))},
			fe, beMetr, "TCP", true, ""},
		{"port by name: other name denied", []*api.NetworkPolicy{
			pol("be-metrics", "default", sel("app", "backend"), in(api.NetworkPolicyIngressRule{Ports: []api.NetworkPolicyPort{port(api.FromString("metrics"))}}))},
			fe, beHTTP, "TCP", false, "be-metrics"},
		{"port range", []*api.NetworkPolicy{
			pol("be-range", "default", sel("app", "backend"), in(api.NetworkPolicyIngressRule{Ports: []api.NetworkPolicyPort{{Port: &[]api.IntOrString{api.FromInt(9000)}[0], EndPort: api.Int32(9100)}}}))},
			fe, beMetr, "TCP", true, ""},
		{"port protocol must match", []*api.NetworkPolicy{
			pol("be-udp", "default", sel("app", "backend"), in(api.NetworkPolicyIngressRule{Ports: []api.NetworkPolicyPort{{Protocol: "UDP", Port: &[]api.IntOrString{api.FromInt(8080)}[0]}}}))},
			fe, beHTTP, "TCP", false, "be-udp"},
		{"ipBlock egress", []*api.NetworkPolicy{pol("fe-out", "default", sel("app", "frontend"), out(api.NetworkPolicyEgressRule{
			To: []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: "192.0.2.0/24", Except: []string{"192.0.2.128/25"}}}}}))},
			fe, external, "TCP", true, ""},
		{"ipBlock except", []*api.NetworkPolicy{pol("fe-out", "default", sel("app", "frontend"), out(api.NetworkPolicyEgressRule{
			To: []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: "192.0.2.0/24", Except: []string{"192.0.2.128/25"}}}}}))},
			fe, external2, "TCP", false, "fe-out"},
		{"egress port to outside is the dialled port", []*api.NetworkPolicy{pol("fe-https", "default", sel("app", "frontend"), out(api.NetworkPolicyEgressRule{
			Ports: []api.NetworkPolicyPort{port(api.FromInt(443))}}))},
			fe, external, "TCP", true, ""},
		{"ipBlock ingress from outside", []*api.NetworkPolicy{pol("be-lan", "default", sel("app", "backend"), in(api.NetworkPolicyIngressRule{
			From: []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: "192.168.1.0/24"}}}}))},
			policy.FromIP(netip.MustParseAddr("192.168.1.20")), beHTTP, "TCP", true, ""},
		{"ipBlock ingress from elsewhere", []*api.NetworkPolicy{pol("be-lan", "default", sel("app", "backend"), in(api.NetworkPolicyIngressRule{
			From: []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: "192.168.1.0/24"}}}}))},
			policy.FromIP(netip.MustParseAddr("192.168.2.20")), beHTTP, "TCP", false, "be-lan"},
		{"ipBlock matches a pod by its node address", []*api.NetworkPolicy{pol("be-from-node-a", "default", sel("app", "backend"), in(api.NetworkPolicyIngressRule{
			From: []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: "10.0.0.1/32"}}}}))},
			fe, beHTTP, "TCP", true, ""},
		{"unknown source pod fails closed under egress policies", []*api.NetworkPolicy{denyAllEgress}, policy.FromPod("default", "new"), beHTTP, "TCP", false,
			"not known to the NetworkPolicy view"},
		{"Egress-only policy does not isolate ingress", []*api.NetworkPolicy{denyAllEgress}, policy.FromPod("prod", "mon"), beHTTP, "TCP", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := fleet(tt.pols...).Allowed(tt.src, tt.dst, tt.proto)
			if d.Allowed != tt.allow {
				t.Fatalf("Allowed = %v (%s), want %v", d.Allowed, d.Reason, tt.allow)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("reason %q, want it to contain %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestClientRules(t *testing.T) {
	tests := []struct {
		name     string
		pols     []*api.NetworkPolicy
		src      policy.PodRef
		isolated bool
		want     []policy.Entry
	}{
		{"no policy: nothing to program", nil, policy.PodRef{"default", "fe"}, false, nil},
		{"egress-isolated: allowed endpoints only", []*api.NetworkPolicy{denyAllEgress, feToBackend}, policy.PodRef{"default", "fe"}, true,
			[]policy.Entry{{Dst: beHTTP, Protocol: "TCP", Allow: true}, {Dst: beMetr, Protocol: "TCP", Allow: true}}},
		{"open client: deny entries for ingress-isolated pods", []*api.NetworkPolicy{
			pol("db-from-be", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{{PodSelector: sel("app", "backend")}}}))},
			policy.PodRef{"default", "fe"}, false, []policy.Entry{{Dst: dbPG, Protocol: "TCP", Allow: false}}},
		{"admitted client of an ingress-isolated pod: nothing", []*api.NetworkPolicy{
			pol("db-from-be", "default", sel("app", "db"), in(api.NetworkPolicyIngressRule{From: []api.NetworkPolicyPeer{{PodSelector: sel("app", "backend")}}}))},
			policy.PodRef{"default", "be"}, false, nil},
		{"deny-all egress: isolated with no entries", []*api.NetworkPolicy{denyAllEgress}, policy.PodRef{"default", "db"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fleet(tt.pols...).ClientRules(tt.src)
			if r.EgressIsolated != tt.isolated {
				t.Errorf("EgressIsolated = %v, want %v", r.EgressIsolated, tt.isolated)
			}
			if len(r.Entries) != len(tt.want) {
				t.Fatalf("entries %+v, want %+v", r.Entries, tt.want)
			}
			for i := range tt.want {
				if r.Entries[i] != tt.want[i] {
					t.Errorf("entry %d = %+v, want %+v", i, r.Entries[i], tt.want[i])
				}
			}
			if r.Empty() != (!tt.isolated && len(tt.want) == 0) {
				t.Errorf("Empty() = %v", r.Empty())
			}
		})
	}
}

func TestFromAPIPod(t *testing.T) {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "be", Namespace: "default", Labels: map[string]string{"app": "backend"}},
		Status: api.PodStatus{HostIP: "10.0.0.2", ContainerStatuses: []api.ContainerStatus{{Name: "c", Ports: []api.PortStatus{
			{Name: "http", ContainerPort: 8080, HostIP: "10.0.0.2", HostPort: 40001, Protocol: "TCP"}}}}}}
	got := policy.FromAPIPod(p)
	if got.NodeIP != nodeB || len(got.Ports) != 1 || got.Ports[0] != (policy.Port{Name: "http", ContainerPort: 8080, HostPort: 40001, Protocol: "TCP"}) {
		t.Fatalf("%+v", got)
	}
}
