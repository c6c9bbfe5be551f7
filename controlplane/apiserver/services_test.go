package apiserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/controlplane/server"
)

func startServerCIDR(t *testing.T, cidr string) (*server.Server, *client.Client) {
	t.Helper()
	s, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), NATSHost: "127.0.0.1", NATSPort: -1,
		ServiceCIDR: cidr, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	c, err := client.Connect(s.URL(), s.Token(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return s, c
}

func service(name, typ string, nodePort int32) *api.Service {
	return &api.Service{
		ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.ServiceSpec{Type: typ, Selector: map[string]string{"app": name},
			Ports: []api.ServicePort{{Port: 80, NodePort: nodePort}}},
	}
}

func createSvc(t *testing.T, c *client.Client, s *api.Service) (*api.Service, error) {
	t.Helper()
	o, err := c.Create(context.Background(), s)
	if err != nil {
		return nil, err
	}
	return o.(*api.Service), nil
}

func TestClusterIPAllocation(t *testing.T) {
	_, c := startServerCIDR(t, "10.99.0.0/30") // two usable addresses
	ctx := context.Background()
	a, err := createSvc(t, c, service("a", "", 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := createSvc(t, c, service("b", "", 0))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{a.Spec.ClusterIP: true, b.Spec.ClusterIP: true}
	if !got["10.99.0.1"] || !got["10.99.0.2"] {
		t.Fatalf("cluster IPs %q and %q, want 10.99.0.1 and 10.99.0.2", a.Spec.ClusterIP, b.Spec.ClusterIP)
	}
	_, err = createSvc(t, c, service("c", "", 0))
	if want := "spec.clusterIP: service CIDR 10.99.0.0/30 is exhausted"; err == nil || err.Error() != want || !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("third service: got %v, want %q", err, want)
	}
	if _, err := c.Get(ctx, "Service", "default", "c"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("a failed create stored something: %v", err)
	}
	// Headless and ExternalName services take no address.
	h := service("headless", "", 0)
	h.Spec.ClusterIP = "None"
	if _, err := createSvc(t, c, h); err != nil {
		t.Fatal(err)
	}
	x := &api.Service{ObjectMeta: api.ObjectMeta{Name: "x"}, Spec: api.ServiceSpec{Type: "ExternalName", ExternalName: "db.example.com"}}
	if got, err := createSvc(t, c, x); err != nil || got.Spec.ClusterIP != "" {
		t.Fatalf("ExternalName: %v, clusterIP %q", err, got.Spec.ClusterIP)
	}
	// Delete releases; the address is handed out again.
	if _, err := c.Delete(ctx, "Service", "default", "a"); err != nil {
		t.Fatal(err)
	}
	again, err := createSvc(t, c, service("c", "", 0))
	if err != nil {
		t.Fatal(err)
	}
	if again.Spec.ClusterIP != a.Spec.ClusterIP {
		t.Fatalf("reused %q, want the released %q", again.Spec.ClusterIP, a.Spec.ClusterIP)
	}
	// Apply without clusterIP keeps the allocated one; changing it is refused.
	ap := service("c", "", 0)
	applied, err := c.Apply(ctx, ap)
	if err != nil || applied.(*api.Service).Spec.ClusterIP != again.Spec.ClusterIP {
		t.Fatalf("apply: %v, clusterIP %v", err, applied)
	}
	ap.Spec.ClusterIP = "10.99.0.3"
	if _, err := c.Apply(ctx, ap); err == nil || !strings.Contains(err.Error(), "spec.clusterIP: field is immutable") {
		t.Fatalf("changing clusterIP: %v", err)
	}
}

func TestRequestedClusterIP(t *testing.T) {
	_, c := startServerCIDR(t, "10.99.0.0/24")
	tests := []struct {
		name, ip, want string
	}{
		{"free address", "10.99.0.10", ""},
		{"taken address", "10.99.0.10", "spec.clusterIP: 10.99.0.10 is already allocated"},
		{"outside the CIDR", "10.98.0.10", "spec.clusterIP: 10.98.0.10 is not in the service CIDR 10.99.0.0/24"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := service(fmt.Sprintf("s%d", i), "", 0)
			s.Spec.ClusterIP = tc.ip
			got, err := createSvc(t, c, s)
			if tc.want == "" {
				if err != nil || got.Spec.ClusterIP != tc.ip {
					t.Fatalf("got %v, %v", got, err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNodePortAllocation(t *testing.T) {
	_, c := startServerCIDR(t, "")
	ctx := context.Background()
	auto, err := createSvc(t, c, service("auto", "NodePort", 0))
	if err != nil {
		t.Fatal(err)
	}
	if np := auto.Spec.Ports[0].NodePort; np < 30000 || np > 32767 {
		t.Fatalf("allocated node port %d", np)
	}
	if !strings.HasPrefix(auto.Spec.ClusterIP, "10.43.") {
		t.Fatalf("default CIDR: clusterIP %q", auto.Spec.ClusterIP)
	}
	if _, err := createSvc(t, c, service("fixed", "NodePort", 30080)); err != nil {
		t.Fatal(err)
	}
	_, err = createSvc(t, c, service("clash", "NodePort", 30080))
	if want := "spec.ports[0].nodePort: 30080 is already allocated"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	// The clash's cluster IP was claimed before the node port failed: it
	// must have been given back, so the failed create leaks nothing.
	if _, err := c.Delete(ctx, "Service", "default", "fixed"); err != nil {
		t.Fatal(err)
	}
	if _, err := createSvc(t, c, service("clash", "NodePort", 30080)); err != nil {
		t.Fatalf("node port not released on delete: %v", err)
	}
	// Turning a NodePort service into ClusterIP gives its node port back.
	cl := service("clash", "ClusterIP", 0)
	if _, err := c.Apply(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if _, err := createSvc(t, c, service("other", "NodePort", 30080)); err != nil {
		t.Fatalf("node port not released on type change: %v", err)
	}
}

// TestAllocationAcrossServers creates services concurrently through two
// API servers sharing one NATS: every cluster IP and node port is
// distinct, because each claim is a KV create.
func TestAllocationAcrossServers(t *testing.T) {
	s1, c := startServerCIDR(t, "10.99.0.0/27") // 30 addresses
	s2, err := server.Start(context.Background(), server.Config{NATSURL: s1.URL(), Token: s1.Token(), Identity: "second",
		ServiceCIDR: "10.99.0.0/27", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s2.Stop)
	const n = 30
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = createSvc(t, c, service(fmt.Sprintf("s%d", i), "NodePort", 0)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	list, err := c.List(context.Background(), "Service", "default", "")
	if err != nil {
		t.Fatal(err)
	}
	ips, ports := map[string]string{}, map[int32]string{}
	for _, o := range list {
		s := o.(*api.Service)
		if prev, dup := ips[s.Spec.ClusterIP]; dup {
			t.Fatalf("%s and %s share cluster IP %s", prev, s.Name, s.Spec.ClusterIP)
		}
		ips[s.Spec.ClusterIP] = s.Name
		np := s.Spec.Ports[0].NodePort
		if prev, dup := ports[np]; dup {
			t.Fatalf("%s and %s share node port %d", prev, s.Name, np)
		}
		ports[np] = s.Name
	}
	if len(ips) != n {
		t.Fatalf("%d services, want %d", len(ips), n)
	}
	if _, err := createSvc(t, c, service("one-too-many", "", 0)); err == nil || !strings.Contains(err.Error(), "is exhausted") {
		t.Fatalf("31st service: %v", err)
	}
}
