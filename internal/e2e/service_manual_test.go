package e2e

// The service controller (edgeagent/servicelb) on its own, against a
// selector-less Service whose EndpointSlice the test writes: the backends
// are the test's own TCP (HTTP) and UDP servers on the node address (the
// root end of the test's veth). Runs in both LB modes; see service_test.go
// for the namespace/cgroup isolation.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent/servicelb"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

// testBackend is one endpoint: an HTTP server and a UDP echo of its name,
// both on the node address.
type testBackend struct {
	name             string
	tcpPort, udpPort int32
}

func startTestBackends(t *testing.T, addr string, n int) []testBackend {
	t.Helper()
	var out []testBackend
	for i := range n {
		name := fmt.Sprintf("be-%d", i)
		ln, err := net.Listen("tcp4", net.JoinHostPort(addr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "test backend | Running on: %s | v=1", name)
		}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(addr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		go func() {
			buf := make([]byte, 512)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo([]byte(name), from)
			}
		}()
		out = append(out, testBackend{name: name, tcpPort: int32(ln.Addr().(*net.TCPAddr).Port), udpPort: int32(pc.LocalAddr().(*net.UDPAddr).Port)})
	}
	return out
}

// createMix creates service "mix" (ports http 80/TCP and echo 7/UDP; spec
// gives the rest) and its EndpointSlice over bes, as a user would for a
// service without a selector.
func createMix(t *testing.T, f *testfleet.Fleet, e *svcEnv, bes []testBackend, spec api.ServiceSpec) *api.Service {
	t.Helper()
	spec.Ports = []api.ServicePort{{Name: "http", Port: 80, Protocol: "TCP"}, {Name: "echo", Port: 7, Protocol: "UDP"}}
	o, err := f.Client.Create(context.Background(), &api.Service{ObjectMeta: api.ObjectMeta{Name: "mix", Namespace: "default"}, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Client.Create(context.Background(), manualSlice(e.nodeAddr, bes)); err != nil {
		t.Fatal(err)
	}
	return o.(*api.Service)
}

// lbConfig is a test's service LB on the node side of its veth, with its
// cgroup, pin dir and (userspace) namespace.
func (e *svcEnv) lbConfig(f *testfleet.Fleet, mode string) servicelb.Config {
	return servicelb.Config{Client: f.Client, NodeName: "pi-1", NodeAddress: e.nodeAddr, Mode: mode,
		CgroupPath: e.cgroup, PinDir: e.pinDir, NetNS: e.lbNetNS(mode), Log: testfleet.Logger()}
}

func manualSlice(nodeAddr string, bes []testBackend) *api.EndpointSlice {
	s := &api.EndpointSlice{ObjectMeta: api.ObjectMeta{Name: "mix", Namespace: "default",
		Labels: map[string]string{"flotilla.dev/service-name": "mix"}}}
	for _, b := range bes {
		s.Endpoints = append(s.Endpoints, api.Endpoint{Addresses: []string{nodeAddr}, NodeName: "pi-1",
			Ports: []api.EndpointPort{{Name: "http", Port: b.tcpPort, Protocol: "TCP"}, {Name: "echo", Port: b.udpPort, Protocol: "UDP"}}})
	}
	return s
}

// TestServiceLBManualEndpoints: UDP through a ClusterIP and a NodePort, and
// a restart of the controller: stopping it keeps the pinned eBPF datapath
// serving, and the next controller takes the service over and applies an
// endpoint change.
func TestServiceLBManualEndpoints(t *testing.T) {
	for _, m := range lbModes {
		t.Run(m.mode, func(t *testing.T) {
			e := newSvcEnv(t)
			f := testfleet.Start(t)
			ctx := context.Background()
			bes := startTestBackends(t, e.nodeAddr, 3)
			svc := createMix(t, f, e, bes, api.ServiceSpec{Type: api.ServiceTypeNodePort})
			cfg := e.lbConfig(f, m.mode)
			c, err := servicelb.Start(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if c != nil {
					c.Stop()
				}
			}()
			if c.Mode() != m.mode {
				t.Fatalf("mode %q, want %q (%s)", c.Mode(), m.mode, c.Reason())
			}
			clusterHTTP := net.JoinHostPort(svc.Spec.ClusterIP, "80")
			clusterUDP := net.JoinHostPort(svc.Spec.ClusterIP, "7")
			nodeUDP := net.JoinHostPort(e.nodeAddr, strconv.Itoa(int(svc.Spec.Ports[1].NodePort)))

			for _, tc := range []struct {
				name, op, addr string
			}{
				{"TCPClusterIP", "get", clusterHTTP},
				{"UDPClusterIP", "udp", clusterUDP},
				{"UDPNodePort", "udp", nodeUDP},
			} {
				t.Run(tc.name, func(t *testing.T) {
					var r clientResult
					testfleet.WaitFor(t, tc.addr+" answers", 10*time.Second, func() bool {
						r = e.fromNetns(t, tc.op, tc.addr, 1)
						return len(r.Errs) == 0
					})
					r = e.fromNetns(t, tc.op, tc.addr, 45)
					if len(r.Errs) > 0 || len(r.Answers) != 3 {
						t.Fatalf("45 %s to %s: answers %v, errors %v", tc.op, tc.addr, r.Answers, r.Errs)
					}
					t.Logf("%s %s: %v", tc.op, tc.addr, r.Answers)
				})
			}

			t.Run("RestartKeepsServingAndTakesOver", func(t *testing.T) {
				c.Stop()
				c = nil
				// The eBPF links and maps stay pinned: the cluster IP keeps
				// answering with no controller running. The userspace
				// proxy lives in the agent, so it stops with it.
				r := e.fromNetns(t, "get", clusterHTTP, 30)
				if m.mode == "ebpf" && (len(r.Errs) > 0 || len(r.Answers) != 3) {
					t.Fatalf("controller stopped: answers %v, errors %v", r.Answers, r.Errs)
				}
				t.Logf("controller stopped (%s): answers %v, %d errors", m.mode, r.Answers, len(r.Errs))
				if c, err = servicelb.Start(cfg); err != nil {
					t.Fatal(err)
				}
				testfleet.WaitFor(t, "the restarted controller serves", 10*time.Second, func() bool {
					return len(e.fromNetns(t, "get", clusterHTTP, 1).Errs) == 0
				})
				// Drop be-2: no new connection may reach it.
				if _, err := f.Client.Modify(ctx, "EndpointSlice", "default", "mix", func(o api.Object) error {
					o.(*api.EndpointSlice).Endpoints = manualSlice(e.nodeAddr, bes[:2]).Endpoints
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				testfleet.WaitFor(t, "be-2 leaves the rotation", 10*time.Second, func() bool {
					r = e.fromNetns(t, "get", clusterHTTP, 20)
					return len(r.Errs) == 0 && r.Answers["be-2"] == 0
				})
				r = e.fromNetns(t, "get", clusterHTTP, 45)
				if len(r.Errs) > 0 || len(r.Answers) != 2 || r.Answers["be-2"] > 0 {
					t.Fatalf("after removing be-2: answers %v, errors %v", r.Answers, r.Errs)
				}
				t.Logf("after the update: %v", r.Answers)
			})
		})
	}
}
