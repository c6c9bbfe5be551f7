package netpolicy_test

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/netpolicy"
	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
)

var (
	be1 = netip.MustParseAddrPort("127.0.0.11:8080")
	be2 = netip.MustParseAddrPort("127.0.0.12:8080")
	be3 = netip.MustParseAddrPort("127.0.0.13:8080")
	// VIPs exist only as service addresses inside the test namespace, which
	// has no route for them: nothing reaches them unless the LB translates.
	vip      = netip.MustParseAddr("10.96.0.10")
	vipEmpty = netip.MustParseAddr("10.96.0.11")
	vipAff   = netip.MustParseAddr("10.96.0.12")
)

func newLB(t testing.TB, mode string, e *testEnv) netpolicy.LB {
	t.Helper()
	lb, reason, err := netpolicy.New(mode, netpolicy.Config{CgroupPath: e.cgroup, PinDir: e.pinDir, NetNS: e.ns})
	if err != nil {
		t.Fatalf("New(%s): %v", mode, err)
	}
	if lb.Mode() != mode {
		t.Fatalf("mode %s, want %s (%s)", lb.Mode(), mode, reason)
	}
	t.Cleanup(func() { lb.Close() })
	return lb
}

func upsert(t testing.TB, lb netpolicy.LB, s netpolicy.Service) {
	t.Helper()
	if err := lb.Upsert(s); err != nil {
		t.Fatalf("upsert %v:%d: %v", s.VIP, s.Port, err)
	}
}

func ap(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

func TestLoadBalancers(t *testing.T) {
	for _, mode := range []string{netpolicy.ModeEBPF, netpolicy.ModeUserspace} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			e.startBackends(t, be1, be2, be3)
			lb := newLB(t, mode, e)
			cl := e.startClient(t)
			all := []netip.AddrPort{be1, be2, be3}

			t.Run("TCPSpreadsOverAllBackends", func(t *testing.T) {
				upsert(t, lb, netpolicy.Service{VIP: vip, Port: 80, Protocol: "TCP", Backends: all})
				r := cl.do(t, helperReq{Op: "tcp", Addr: ap(vip, 80), N: 60})
				if r.ErrCount > 0 {
					t.Fatalf("%d errors: %v", r.ErrCount, r.Errs)
				}
				for _, b := range all {
					if r.Counts[b.String()] == 0 {
						t.Errorf("backend %v never chosen: %v", b, r.Counts)
					}
				}
				// getpeername reports the VIP, not the backend.
				if r.Peers[ap(vip, 80)] != 60 {
					t.Errorf("peers %v, want all %v", r.Peers, ap(vip, 80))
				}
			})

			t.Run("RemovedBackendGetsNoNewConnections", func(t *testing.T) {
				upsert(t, lb, netpolicy.Service{VIP: vip, Port: 80, Protocol: "TCP", Backends: []netip.AddrPort{be1, be3}})
				r := cl.do(t, helperReq{Op: "tcp", Addr: ap(vip, 80), N: 60})
				if r.ErrCount > 0 {
					t.Fatalf("%d errors: %v", r.ErrCount, r.Errs)
				}
				if r.Counts[be2.String()] != 0 || r.Counts[be1.String()] == 0 || r.Counts[be3.String()] == 0 {
					t.Fatalf("counts %v: want only %v and %v", r.Counts, be1, be3)
				}
				// And back to three.
				upsert(t, lb, netpolicy.Service{VIP: vip, Port: 80, Protocol: "TCP", Backends: all})
				r = cl.do(t, helperReq{Op: "tcp", Addr: ap(vip, 80), N: 60})
				if r.ErrCount > 0 || len(r.Counts) != 3 {
					t.Fatalf("after re-adding: counts %v errors %v", r.Counts, r.Errs)
				}
			})

			t.Run("UDPRepliesComeFromVIP", func(t *testing.T) {
				upsert(t, lb, netpolicy.Service{VIP: vip, Port: 53, Protocol: "UDP", Backends: all})
				for _, connected := range []bool{false, true} {
					r := cl.do(t, helperReq{Op: "udp", Addr: ap(vip, 53), N: 30, Connected: connected})
					if r.ErrCount > 0 {
						t.Fatalf("connected=%v: %d errors: %v", connected, r.ErrCount, r.Errs)
					}
					if r.Peers[ap(vip, 53)] != 30 {
						t.Errorf("connected=%v: reply sources %v, want all %v", connected, r.Peers, ap(vip, 53))
					}
					if len(r.Counts) < 2 {
						t.Errorf("connected=%v: 30 requests reached only %v", connected, r.Counts)
					}
				}
			})

			t.Run("NoBackendsFailsFast", func(t *testing.T) {
				upsert(t, lb, netpolicy.Service{VIP: vipEmpty, Port: 80, Protocol: "TCP"})
				start := time.Now()
				r := cl.do(t, helperReq{Op: "tcp", Addr: ap(vipEmpty, 80), N: 5})
				if r.ErrCount != 5 {
					t.Fatalf("want 5 failed connects, got %d errors, counts %v", r.ErrCount, r.Counts)
				}
				if r.MaxErrMS >= 1000 || time.Since(start) > 5*time.Second {
					t.Fatalf("slowest failure took %dms: %v", r.MaxErrMS, r.Errs)
				}
				want := map[string]string{netpolicy.ModeEBPF: "operation not permitted", netpolicy.ModeUserspace: "connection refused"}[mode]
				if !strings.Contains(r.Errs[0], want) {
					t.Errorf("error %q, want %q", r.Errs[0], want)
				}
				t.Logf("connect error: %s (slowest %dms)", r.Errs[0], r.MaxErrMS)
			})

			t.Run("ClientIPAffinity", func(t *testing.T) {
				upsert(t, lb, netpolicy.Service{VIP: vipAff, Port: 80, Protocol: "TCP", Backends: all, AffinityTimeout: time.Minute})
				r := cl.do(t, helperReq{Op: "tcp", Addr: ap(vipAff, 80), N: 30})
				if r.ErrCount > 0 {
					t.Fatalf("%d errors: %v", r.ErrCount, r.Errs)
				}
				if len(r.Counts) != 1 {
					t.Fatalf("with affinity one client reached %v", r.Counts)
				}
				// Removing the pinned backend moves the client elsewhere.
				var pinned netip.AddrPort
				for id := range r.Counts {
					pinned = netip.MustParseAddrPort(id)
				}
				var rest []netip.AddrPort
				for _, b := range all {
					if b != pinned {
						rest = append(rest, b)
					}
				}
				upsert(t, lb, netpolicy.Service{VIP: vipAff, Port: 80, Protocol: "TCP", Backends: rest, AffinityTimeout: time.Minute})
				r = cl.do(t, helperReq{Op: "tcp", Addr: ap(vipAff, 80), N: 20})
				if r.ErrCount > 0 || len(r.Counts) != 1 || r.Counts[pinned.String()] != 0 {
					t.Fatalf("after removing %v: counts %v errors %v", pinned, r.Counts, r.Errs)
				}
			})

			t.Run("UpdatesUnderLoadNeverHalfWritten", func(t *testing.T) {
				// Flip the backend set while the client connects: every
				// connection must succeed (never an empty or partial list).
				done := make(chan helperResp, 1)
				go func() { done <- cl.do(t, helperReq{Op: "tcp", Addr: ap(vip, 80), N: 300}) }()
				sets := [][]netip.AddrPort{{be1}, {be2, be3}, all}
				var r helperResp
				flips := 0
			loop:
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); flips++ {
					select {
					case r = <-done:
						break loop
					default:
					}
					if err := lb.Upsert(netpolicy.Service{VIP: vip, Port: 80, Protocol: "TCP", Backends: sets[flips%len(sets)]}); err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Millisecond)
				}
				if r.Counts == nil {
					select {
					case r = <-done:
					case <-time.After(30 * time.Second):
						t.Fatal("client did not finish")
					}
				}
				if r.ErrCount > 0 {
					t.Fatalf("%d of 300 connections failed during %d updates: %v", r.ErrCount, flips, r.Errs)
				}
				t.Logf("300 connections, %d backend-set flips, counts %v", flips, r.Counts)
				upsert(t, lb, netpolicy.Service{VIP: vip, Port: 80, Protocol: "TCP", Backends: all})
			})

			t.Run("ServicesAndDelete", func(t *testing.T) {
				got := lb.Services()
				if len(got) != 4 {
					t.Fatalf("services: %+v", got)
				}
				if s := got[0]; s.VIP != vip || s.Port != 53 || s.Protocol != "UDP" || len(s.Backends) != 3 || s.Backends[0] != be1 {
					t.Errorf("first service %+v", s)
				}
				if s := got[3]; s.VIP != vipAff || s.AffinityTimeout != time.Minute || len(s.Backends) != 2 {
					t.Errorf("affinity service %+v", s)
				}
				if err := lb.Delete(vip, 80, "tcp"); err != nil {
					t.Fatal(err)
				}
				if err := lb.Delete(vip, 80, "TCP"); !errors.Is(err, netpolicy.ErrNotFound) {
					t.Fatalf("second delete: %v", err)
				}
				if len(lb.Services()) != 3 {
					t.Fatalf("after delete: %+v", lb.Services())
				}
				r := cl.do(t, helperReq{Op: "tcp", Addr: ap(vip, 80), N: 3})
				if r.ErrCount != 3 {
					t.Fatalf("deleted service still answers: %v", r.Counts)
				}
			})
		})
	}
}

// TestEBPFRestart closes the LB without unpinning (an agent restart) and
// checks the service keeps working, then that a new LB on the same pin dir
// sees and updates it.
func TestEBPFRestart(t *testing.T) {
	e := newEnv(t)
	e.startBackends(t, be1, be2, be3)
	cl := e.startClient(t)
	svc := netpolicy.Service{VIP: vip, Port: 80, Protocol: "TCP", Backends: []netip.AddrPort{be1, be2, be3}}

	lb1, err := ebpflb.New(ebpflb.Config{CgroupPath: e.cgroup, PinDir: e.pinDir})
	if err != nil {
		t.Fatal(err)
	}
	upsert(t, lb1, svc)
	if err := lb1.Close(); err != nil {
		t.Fatal(err)
	}
	r := cl.do(t, helperReq{Op: "tcp", Addr: ap(vip, 80), N: 30})
	if r.ErrCount > 0 || len(r.Counts) != 3 {
		t.Fatalf("with the agent gone: counts %v errors %v", r.Counts, r.Errs)
	}

	lb2, err := ebpflb.New(ebpflb.Config{CgroupPath: e.cgroup, PinDir: e.pinDir})
	if err != nil {
		t.Fatal(err)
	}
	defer lb2.Close()
	got := lb2.Services()
	if len(got) != 1 || got[0].VIP != vip || len(got[0].Backends) != 3 {
		t.Fatalf("restarted LB sees %+v", got)
	}
	r = cl.do(t, helperReq{Op: "tcp", Addr: ap(vip, 80), N: 30})
	if r.ErrCount > 0 || len(r.Counts) != 3 {
		t.Fatalf("after restart: counts %v errors %v", r.Counts, r.Errs)
	}
	svc.Backends = []netip.AddrPort{be2}
	upsert(t, lb2, svc)
	r = cl.do(t, helperReq{Op: "tcp", Addr: ap(vip, 80), N: 10})
	if r.ErrCount > 0 || r.Counts[be2.String()] != 10 {
		t.Fatalf("update after restart: counts %v errors %v", r.Counts, r.Errs)
	}
	// Teardown detaches: the VIP is unreachable again.
	lb2.Close()
	if err := ebpflb.Teardown(e.pinDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.pinDir); !os.IsNotExist(err) {
		t.Fatalf("pin dir still there: %v", err)
	}
	r = cl.do(t, helperReq{Op: "tcp", Addr: ap(vip, 80), N: 2})
	if r.ErrCount != 2 || !strings.Contains(r.Errs[0], "unreachable") {
		t.Fatalf("after teardown: counts %v errors %v", r.Counts, r.Errs)
	}
}

// TestAutoFallback: auto picks eBPF when it works and otherwise falls back
// to userspace with the reason.
func TestAutoFallback(t *testing.T) {
	e := newEnv(t)
	lb, reason, err := netpolicy.New("auto", netpolicy.Config{CgroupPath: e.cgroup, PinDir: e.pinDir})
	if err != nil {
		t.Fatal(err)
	}
	if lb.Mode() != "ebpf" {
		t.Fatalf("auto chose %s: %s", lb.Mode(), reason)
	}
	lb.Close()

	notBPF := t.TempDir()
	lb, reason, err = netpolicy.New("auto", netpolicy.Config{CgroupPath: e.cgroup, PinDir: notBPF + "/pins"})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	if lb.Mode() != "userspace" || !strings.Contains(reason, "bpf filesystem") {
		t.Fatalf("mode %s reason %q", lb.Mode(), reason)
	}
	t.Logf("fallback reason: %s", reason)
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, _, err := netpolicy.New("iptables", netpolicy.Config{}); err == nil {
		t.Fatal("unknown mode accepted")
	}
	lb, _, err := netpolicy.New("userspace", netpolicy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	bad := []netpolicy.Service{
		{VIP: netip.MustParseAddr("fd00::1"), Port: 80},
		{VIP: vip, Port: 0},
		{VIP: vip, Port: 80, Protocol: "SCTP"},
		{VIP: vip, Port: 80, Backends: []netip.AddrPort{netip.MustParseAddrPort("[fd00::1]:80")}},
		{VIP: vip, Port: 80, Backends: []netip.AddrPort{netip.AddrPortFrom(be1.Addr(), 0)}},
		{VIP: vip, Port: 80, AffinityTimeout: -time.Second},
	}
	for _, s := range bad {
		if err := lb.Upsert(s); err == nil {
			t.Errorf("accepted %+v", s)
		}
	}
	if err := lb.Delete(vip, 80, "TCP"); !errors.Is(err, netpolicy.ErrNotFound) {
		t.Errorf("delete of unknown service: %v", err)
	}
}
