package api_test

import (
	"strings"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
)

func svc(mut func(*api.Service)) *api.Service {
	s := &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: api.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []api.ServicePort{{Port: 80, TargetPort: api.FromInt(8080)}},
		},
	}
	if mut != nil {
		mut(s)
	}
	return s
}

func TestServiceValidation(t *testing.T) {
	tests := []struct {
		name string
		svc  *api.Service
		want string // "" = valid; else a substring of the error
	}{
		{"minimal ClusterIP", svc(nil), ""},
		{"named target port", svc(func(s *api.Service) { s.Spec.Ports[0].TargetPort = api.FromString("http") }), ""},
		{"NodePort with port", svc(func(s *api.Service) { s.Spec.Type = "NodePort"; s.Spec.Ports[0].NodePort = 30080 }), ""},
		{"headless", svc(func(s *api.Service) { s.Spec.ClusterIP = "None"; s.Spec.Ports = nil }), ""},
		{"ExternalName", svc(func(s *api.Service) {
			s.Spec = api.ServiceSpec{Type: "ExternalName", ExternalName: "db.example.com"}
		}), ""},
		{"port out of range", svc(func(s *api.Service) { s.Spec.Ports[0].Port = 70000 }),
			"spec.ports[0].port: must be between 1 and 65535, got 70000"},
		{"duplicate port", svc(func(s *api.Service) {
			s.Spec.Ports = []api.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 80}}
		}), "spec.ports[1].port: duplicate port 80/TCP"},
		{"same port other protocol is fine", svc(func(s *api.Service) {
			s.Spec.Ports = []api.ServicePort{{Name: "a", Port: 53}, {Name: "b", Port: 53, Protocol: "UDP"}}
		}), ""},
		{"unnamed ports", svc(func(s *api.Service) {
			s.Spec.Ports = []api.ServicePort{{Port: 80}, {Port: 81}}
		}), "spec.ports[0].name: is required when a service has more than one port"},
		{"bad protocol", svc(func(s *api.Service) { s.Spec.Ports[0].Protocol = "SCTP" }), `spec.ports[0].protocol: "SCTP" is not TCP or UDP`},
		{"node port below range", svc(func(s *api.Service) { s.Spec.Type = "NodePort"; s.Spec.Ports[0].NodePort = 8080 }),
			"spec.ports[0].nodePort: must be between 30000 and 32767, got 8080"},
		{"node port on ClusterIP", svc(func(s *api.Service) { s.Spec.Ports[0].NodePort = 30080 }),
			"spec.ports[0].nodePort: may not be used when spec.type is ClusterIP"},
		{"bad target port name", svc(func(s *api.Service) { s.Spec.Ports[0].TargetPort = api.FromString("Not_A_Name") }),
			"spec.ports[0].targetPort"},
		{"ExternalName not a DNS name", svc(func(s *api.Service) {
			s.Spec = api.ServiceSpec{Type: "ExternalName", ExternalName: "not a name!"}
		}), "spec.externalName: must be a DNS name"},
		{"ExternalName missing", svc(func(s *api.Service) { s.Spec = api.ServiceSpec{Type: "ExternalName"} }),
			"spec.externalName: is required when spec.type is ExternalName"},
		{"ExternalName with clusterIP", svc(func(s *api.Service) {
			s.Spec = api.ServiceSpec{Type: "ExternalName", ExternalName: "db.example.com", ClusterIP: "10.43.0.5"}
		}), "spec.clusterIP: must be empty when spec.type is ExternalName"},
		{"externalName on ClusterIP", svc(func(s *api.Service) { s.Spec.ExternalName = "db.example.com" }),
			"spec.externalName: may only be set when spec.type is ExternalName, not ClusterIP"},
		{"unknown type", svc(func(s *api.Service) { s.Spec.Type = "Ingress" }), `spec.type: "Ingress" is not ClusterIP`},
		{"bad clusterIP", svc(func(s *api.Service) { s.Spec.ClusterIP = "10.43.0.300" }), "spec.clusterIP"},
		{"headless NodePort", svc(func(s *api.Service) { s.Spec.Type = "NodePort"; s.Spec.ClusterIP = "None" }),
			"spec.clusterIP: may not be None when spec.type is NodePort"},
		{"no ports", svc(func(s *api.Service) { s.Spec.Ports = nil }), "spec.ports: at least one port is required"},
		{"bad affinity", svc(func(s *api.Service) { s.Spec.SessionAffinity = "Cookie" }), "spec.sessionAffinity"},
		{"affinity timeout too long", svc(func(s *api.Service) {
			s.Spec.SessionAffinity = "ClientIP"
			s.Spec.SessionAffinityConfig = &api.SessionAffinityConfig{ClientIP: &api.ClientIPConfig{TimeoutSeconds: api.Int32(100000)}}
		}), "spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be between 1 and 86400"},
		{"traffic policy on ClusterIP", svc(func(s *api.Service) { s.Spec.ExternalTrafficPolicy = "Local" }),
			"spec.externalTrafficPolicy: may only be set when spec.type is NodePort or LoadBalancer"},
		{"bad traffic policy", svc(func(s *api.Service) { s.Spec.Type = "NodePort"; s.Spec.ExternalTrafficPolicy = "Nearest" }),
			`spec.externalTrafficPolicy: "Nearest" is not Cluster or Local`},
		{"loadBalancerIP on NodePort", svc(func(s *api.Service) { s.Spec.Type = "NodePort"; s.Spec.LoadBalancerIP = "192.0.2.1" }),
			"spec.loadBalancerIP: may only be set when spec.type is LoadBalancer"},
		{"bad externalIP", svc(func(s *api.Service) { s.Spec.ExternalIPs = []string{"example.com"} }),
			`spec.externalIPs[0]: "example.com" is not an IPv4 address`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api.Defaults(tc.svc)
			err := api.Validate(tc.svc)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestServiceDefaults(t *testing.T) {
	s := svc(func(s *api.Service) {
		s.Spec.Type = "NodePort"
		s.Spec.SessionAffinity = "ClientIP"
		s.Spec.Ports[0].TargetPort = api.IntOrString{}
	})
	api.Defaults(s)
	p := s.Spec.Ports[0]
	if p.Protocol != "TCP" || p.TargetPort != api.FromInt(80) {
		t.Fatalf("port defaults: %+v", p)
	}
	if s.Spec.ExternalTrafficPolicy != "Cluster" || s.AffinityTimeoutSeconds() != 10800 {
		t.Fatalf("policy %q, affinity timeout %d", s.Spec.ExternalTrafficPolicy, s.AffinityTimeoutSeconds())
	}
}

func TestEndpointSliceValidation(t *testing.T) {
	tests := []struct {
		name  string
		slice api.EndpointSlice
		want  string
	}{
		{"valid", api.EndpointSlice{Endpoints: []api.Endpoint{{Addresses: []string{"10.0.0.5"}, Ports: []api.EndpointPort{{Port: 40001}}}}}, ""},
		{"no address", api.EndpointSlice{Endpoints: []api.Endpoint{{}}}, "endpoints[0].addresses: at least one address is required"},
		{"bad address", api.EndpointSlice{Endpoints: []api.Endpoint{{Addresses: []string{"pi-1"}}}}, `endpoints[0].addresses[0]: "pi-1" is not an IPv4 address`},
		{"bad port", api.EndpointSlice{Endpoints: []api.Endpoint{{Addresses: []string{"10.0.0.5"}, Ports: []api.EndpointPort{{Port: 0}}}}}, "endpoints[0].ports[0].port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.slice
			s.Name, s.Namespace = "web", "default"
			api.Defaults(&s)
			err := api.Validate(&s)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}
