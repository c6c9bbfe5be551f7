package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent"
	"github.com/flotilla-edge/flotilla/edgeagent/dns"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

// TestFrontendCallsBackendByServiceName runs the frontend/backend example
// on a real fleet: the frontend wasm pod calls http://backend/ through the
// "flotilla" host module; the agent resolves the Service "backend" from its
// DNS view (fed by the real Service and the EndpointSlice the endpoints
// controller writes) and dials a ready backend endpoint. The same view
// answers real DNS queries on the agent's DNS server.
func TestFrontendCallsBackendByServiceName(t *testing.T) {
	f := testfleet.Start(t)
	ctx := context.Background()
	// The agent is started here rather than by testfleet to set the DNS
	// options: a loopback DNS port, and direct endpoint dialling since the
	// test node runs no service load balancer for ClusterIPs.
	a, err := edgeagent.Start(ctx, edgeagent.Config{
		Name: "pi-1", NATSURL: f.Server.URL(), Token: f.Server.Token(), DataDir: t.TempDir(),
		Address: "127.0.0.1", HeartbeatInterval: time.Second, Log: testfleet.Logger(),
		ClusterDNSAddr: "127.0.0.1:0", ServiceDialDirect: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	f.Push(t, "examples/backend", "backend:v1")
	f.Push(t, "examples/frontend", "frontend:v1")

	backend := webDeployment("backend", 2, nil)
	backend.Spec.Template.Spec.Containers[0].Image = "backend:v1"
	frontend := webDeployment("frontend", 1, nil)
	frontend.Spec.Template.Spec.Containers[0].Image = "frontend:v1"
	objs := []api.Object{
		backend, frontend,
		&api.Service{ObjectMeta: api.ObjectMeta{Name: "backend"}, Spec: api.ServiceSpec{
			Selector: map[string]string{"app": "backend"},
			Ports:    []api.ServicePort{{Name: "http", Port: 80, TargetPort: api.FromString("http")}},
		}},
		&api.Service{ObjectMeta: api.ObjectMeta{Name: "db"}, Spec: api.ServiceSpec{
			ClusterIP: api.ClusterIPNone, Selector: map[string]string{"app": "backend"},
			Ports: []api.ServicePort{{Name: "http", Port: 80, TargetPort: api.FromString("http")}},
		}},
		&api.Service{ObjectMeta: api.ObjectMeta{Name: "docs"}, Spec: api.ServiceSpec{
			Type: api.ServiceTypeExternalName, ExternalName: "docs.example.org",
		}},
	}
	for _, o := range objs {
		if _, err := f.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
	}
	testfleet.WaitFor(t, "backend pods running", 60*time.Second, allRunning(t, f, "app=backend", 2))
	testfleet.WaitFor(t, "frontend pod running", 60*time.Second, allRunning(t, f, "app=frontend", 1))
	fe := listPods(t, f, "app=frontend")[0]
	var backends []string
	for _, p := range listPods(t, f, "app=backend") {
		backends = append(backends, p.Name)
	}

	// The frontend reaches both backends by the service name (the agent
	// picks a ready endpoint per request).
	re := regexp.MustCompile(`^frontend (\S+) → backend says: \{"pod":"([^"]+)","value":\d+\}\n$`)
	seen := map[string]bool{}
	testfleet.WaitFor(t, "frontend answers from both backends", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + endpoint(fe) + "/")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := re.FindStringSubmatch(string(b))
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Logf("frontend said %d %q", resp.StatusCode, b)
			return false
		}
		if m[1] != fe.Name || !slices.Contains(backends, m[2]) {
			t.Fatalf("frontend said %q; pods %s and %v", b, fe.Name, backends)
		}
		seen[m[2]] = true
		return len(seen) == len(backends)
	})

	// The agent's DNS server answers from the same view.
	svc, err := f.Client.Get(ctx, "Service", "default", "backend")
	if err != nil {
		t.Fatal(err)
	}
	clusterIP := svc.(*api.Service).Spec.ClusterIP
	addr := netip.MustParseAddrPort(a.DNSAddr())
	tests := []struct {
		name  string
		qname string
		qtype uint16
		rcode uint8
		check func(m *dns.Message) bool
	}{
		{"ClusterIP", "backend.default.svc.cluster.local", dns.TypeA, dns.RCodeSuccess, func(m *dns.Message) bool {
			return len(m.Answers) == 1 && m.Answers[0].Addr.String() == clusterIP
		}},
		{"SRV", "_http._tcp.backend.default.svc.cluster.local", dns.TypeSRV, dns.RCodeSuccess, func(m *dns.Message) bool {
			return len(m.Answers) == 1 && m.Answers[0].Port == 80
		}},
		{"headless: node address once, ports in SRV", "db.default.svc.cluster.local", dns.TypeA, dns.RCodeSuccess, func(m *dns.Message) bool {
			return len(m.Answers) == 1 && m.Answers[0].Addr.String() == "127.0.0.1"
		}},
		{"headless SRV per pod", "_http._tcp.db.default.svc.cluster.local", dns.TypeSRV, dns.RCodeSuccess, func(m *dns.Message) bool {
			return len(m.Answers) == 2 && m.Answers[0].Port != m.Answers[1].Port
		}},
		{"ExternalName", "docs.default.svc.cluster.local", dns.TypeA, dns.RCodeSuccess, func(m *dns.Message) bool {
			return len(m.Answers) == 1 && m.Answers[0].Target == "docs.example.org"
		}},
		{"unknown", "nope.default.svc.cluster.local", dns.TypeA, dns.RCodeNXDomain, func(m *dns.Message) bool { return len(m.Answers) == 0 }},
		{"outside", "example.org", dns.TypeA, dns.RCodeRefused, func(m *dns.Message) bool { return len(m.Answers) == 0 }},
	}
	for _, tc := range tests {
		t.Run("dns/"+tc.name, func(t *testing.T) {
			var m *dns.Message
			// The feed may still be catching up with the endpoints.
			testfleet.WaitFor(t, tc.name, 10*time.Second, func() bool {
				m = dnsQuery(t, addr, tc.qname, tc.qtype)
				return m.RCode == tc.rcode && tc.check(m)
			})
		})
	}

	// Deleting the backend service makes the frontend's call fail cleanly.
	if _, err := f.Client.Delete(ctx, "Service", "default", "backend"); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "frontend reports the missing service", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + endpoint(fe) + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusBadGateway
	})
}

// dnsQuery asks one question over UDP.
func dnsQuery(t *testing.T, addr netip.AddrPort, name string, qtype uint16) *dns.Message {
	t.Helper()
	q := &dns.Message{ID: 42, RecursionDesired: true, Questions: []dns.Question{{Name: name, Type: qtype, Class: dns.ClassINET}}}
	b, err := q.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dns.Decode(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return m
}
