package servicelb

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
)

func ready(b bool) *bool { return &b }

func TestCompute(t *testing.T) {
	slice := &api.EndpointSlice{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"}, Endpoints: []api.Endpoint{
		{Addresses: []string{"10.0.0.1"}, NodeName: "pi-1", Conditions: api.EndpointConditions{Ready: ready(true)}, Ports: []api.EndpointPort{{Port: 40001, Protocol: "TCP"}}},
		{Addresses: []string{"10.0.0.2"}, NodeName: "pi-2", Conditions: api.EndpointConditions{Ready: ready(true)}, Ports: []api.EndpointPort{{Port: 40005, Protocol: "TCP"}}},
		{Addresses: []string{"10.0.0.1"}, NodeName: "pi-1", Conditions: api.EndpointConditions{Ready: ready(false)}, Ports: []api.EndpointPort{{Port: 40002, Protocol: "TCP"}}},
	}}
	base := func(mut func(*api.ServiceSpec)) *api.Service {
		s := &api.Service{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: api.ServiceSpec{Selector: map[string]string{"app": "web"}, ClusterIP: "10.43.0.10",
				Ports: []api.ServicePort{{Port: 80, TargetPort: api.FromInt(8080)}}}}
		if mut != nil {
			mut(&s.Spec)
		}
		api.Defaults(s)
		return s
	}
	tests := []struct {
		name      string
		svc       *api.Service
		vips      string
		listeners string
	}{
		{"ClusterIP: ready backends only", base(nil), "10.43.0.10:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s", ""},
		{"ClientIP affinity", base(func(s *api.ServiceSpec) { s.SessionAffinity = "ClientIP" }),
			"10.43.0.10:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=3h0m0s", ""},
		{"NodePort Cluster", base(func(s *api.ServiceSpec) { s.Type = "NodePort"; s.Ports[0].NodePort = 30080 }),
			"10.43.0.10:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s", "TCP 10.0.0.1:30080->[10.0.0.1:40001 10.0.0.2:40005]"},
		{"NodePort Local keeps this node's", base(func(s *api.ServiceSpec) {
			s.Type = "NodePort"
			s.Ports[0].NodePort = 30080
			s.ExternalTrafficPolicy = "Local"
		}), "10.43.0.10:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s", "TCP 10.0.0.1:30080->[10.0.0.1:40001] local"},
		{"LoadBalancer on node addresses", base(func(s *api.ServiceSpec) { s.Type = "LoadBalancer"; s.Ports[0].NodePort = 30080 }),
			"10.43.0.10:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s",
			"TCP 10.0.0.1:80->[10.0.0.1:40001 10.0.0.2:40005] TCP 10.0.0.1:30080->[10.0.0.1:40001 10.0.0.2:40005]"},
		{"external IPs are VIPs too", base(func(s *api.ServiceSpec) { s.ExternalIPs = []string{"192.0.2.7"} }),
			"10.43.0.10:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s 192.0.2.7:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s", ""},
		{"an external IP this node holds is answered from outside", base(func(s *api.ServiceSpec) { s.ExternalIPs = []string{"192.0.2.9"} }),
			"10.43.0.10:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s 192.0.2.9:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s",
			"TCP 192.0.2.9:80->[10.0.0.1:40001 10.0.0.2:40005]"},
		{"a LoadBalancer IP this node holds, Local", base(func(s *api.ServiceSpec) {
			s.Type = "LoadBalancer"
			s.LoadBalancerIP = "192.0.2.9"
			s.Ports[0].NodePort = 30080
			s.ExternalTrafficPolicy = "Local"
		}), "10.43.0.10:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s 192.0.2.9:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s",
			"TCP 10.0.0.1:30080->[10.0.0.1:40001] local TCP 192.0.2.9:80->[10.0.0.1:40001] local"},
		{"the node's own address as external IP", base(func(s *api.ServiceSpec) { s.ExternalIPs = []string{"10.0.0.1"} }),
			"10.43.0.10:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s 10.0.0.1:80/TCP->[10.0.0.1:40001 10.0.0.2:40005] aff=0s",
			"TCP 10.0.0.1:80->[10.0.0.1:40001 10.0.0.2:40005]"},
		{"headless: nothing", base(func(s *api.ServiceSpec) { s.ClusterIP = "None" }), "", ""},
		{"ExternalName: nothing", &api.Service{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: api.ServiceSpec{Type: "ExternalName", ExternalName: "db.example.com"}}, "", ""},
		{"not allocated yet: nothing", base(func(s *api.ServiceSpec) { s.ClusterIP = "" }), "", ""},
		{"port names must match", base(func(s *api.ServiceSpec) { s.Ports[0].Name = "http" }), "10.43.0.10:80/TCP->[] aff=0s", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Compute([]*api.Service{tc.svc}, map[string]*api.EndpointSlice{"default/web": slice}, "pi-1", netip.MustParseAddr("10.0.0.1"),
				func(a netip.Addr) bool { return a == netip.MustParseAddr("192.0.2.9") })
			var vips, lns []string
			for _, v := range d.VIPs {
				vips = append(vips, fmt.Sprintf("%s:%d/%s->%v aff=%v", v.VIP, v.Port, v.Protocol, v.Backends, v.AffinityTimeout))
			}
			for _, l := range d.Listeners {
				ln := fmt.Sprintf("%s %s->%v", l.Protocol, l.Addr, l.Backends)
				if l.Local {
					ln += " local"
				}
				lns = append(lns, ln)
			}
			if got := strings.Join(vips, " "); got != tc.vips {
				t.Errorf("VIPs\n got %s\nwant %s", got, tc.vips)
			}
			if got := strings.Join(lns, " "); got != tc.listeners {
				t.Errorf("listeners\n got %s\nwant %s", got, tc.listeners)
			}
		})
	}
}
