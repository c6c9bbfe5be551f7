package netpolicy_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"

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

// ap6 is a.b.c.d:port as an AF_INET6 socket spells it: [::ffff:a.b.c.d]:port.
func ap6(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(netip.AddrFrom16(a.As16()), port).String()
}

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

			// Dual-stack AF_INET6 sockets (Node.js, Java) reach IPv4
			// services at ::ffff:VIP and only ever see that address.
			t.Run("IPv4MappedFromInet6Sockets", func(t *testing.T) {
				upsert(t, lb, netpolicy.Service{VIP: vip, Port: 80, Protocol: "TCP", Backends: all})
				upsert(t, lb, netpolicy.Service{VIP: vip, Port: 53, Protocol: "UDP", Backends: all})
				for _, tc := range []struct {
					name      string
					op        string
					port      uint16
					connected bool
				}{
					{"TCP", "tcp6", 80, false},
					{"UnconnectedUDP", "udp6", 53, false},
					{"ConnectedUDP", "udp6", 53, true},
				} {
					t.Run(tc.name, func(t *testing.T) {
						const n = 60
						r := cl.do(t, helperReq{Op: tc.op, Addr: ap6(vip, tc.port), N: n, Connected: tc.connected})
						if r.ErrCount > 0 {
							t.Fatalf("%d errors: %v", r.ErrCount, r.Errs)
						}
						for _, b := range all {
							if r.Counts[b.String()] == 0 {
								t.Errorf("backend %v never chosen: %v", b, r.Counts)
							}
						}
						// getpeername / the reply source: ::ffff:VIP, never
						// the backend and never the AF_INET form.
						if r.Peers[ap6(vip, tc.port)] != n {
							t.Errorf("peers %v, want all %v", r.Peers, ap6(vip, tc.port))
						}
					})
				}
			})

			t.Run("NoBackendsFailsFast", func(t *testing.T) {
				upsert(t, lb, netpolicy.Service{VIP: vipEmpty, Port: 80, Protocol: "TCP"})
				for _, tc := range []struct{ op, addr string }{
					{"tcp", ap(vipEmpty, 80)},
					{"tcp6", ap6(vipEmpty, 80)},
				} {
					start := time.Now()
					r := cl.do(t, helperReq{Op: tc.op, Addr: tc.addr, N: 5})
					if r.ErrCount != 5 {
						t.Fatalf("%s: want 5 failed connects, got %d errors, counts %v", tc.op, r.ErrCount, r.Counts)
					}
					if r.MaxErrMS >= 1000 || time.Since(start) > 5*time.Second {
						t.Fatalf("%s: slowest failure took %dms: %v", tc.op, r.MaxErrMS, r.Errs)
					}
					want := map[string]string{netpolicy.ModeEBPF: "operation not permitted", netpolicy.ModeUserspace: "connection refused"}[mode]
					if !strings.Contains(r.Errs[0], want) {
						t.Errorf("%s: error %q, want %q", tc.op, r.Errs[0], want)
					}
					t.Logf("%s connect error: %s (slowest %dms)", tc.op, r.Errs[0], r.MaxErrMS)
				}
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
				var pinned netip.AddrPort
				for id := range r.Counts {
					pinned = netip.MustParseAddrPort(id)
				}
				// The same client on an AF_INET6 socket is the same client.
				r = cl.do(t, helperReq{Op: "tcp6", Addr: ap6(vipAff, 80), N: 10})
				if r.ErrCount > 0 || r.Counts[pinned.String()] != 10 {
					t.Fatalf("AF_INET6 client: counts %v errors %v, want all %v", r.Counts, r.Errs, pinned)
				}
				// Removing the pinned backend moves the client elsewhere.
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
// checks the services keep working for AF_INET and AF_INET6 clients, that
// a new LB on the same pin dir keeps the pinned links (swapping in its own
// programs), attaches the hooks whose links are missing (a pin dir from an
// agent without the v6 hooks) and sees and updates the services.
func TestEBPFRestart(t *testing.T) {
	e := newEnv(t)
	e.startBackends(t, be1, be2, be3)
	cl := e.startClient(t)
	svc := netpolicy.Service{VIP: vip, Port: 80, Protocol: "TCP", Backends: []netip.AddrPort{be1, be2, be3}}
	v4 := []string{"connect4", "sendmsg4", "recvmsg4", "getpeername4"}
	v6 := []string{"connect6", "sendmsg6", "recvmsg6", "getpeername6"}
	// reachesAll checks that TCP from both socket families spreads over
	// want and that AF_INET6 peers are ::ffff:VIP.
	reachesAll := func(t *testing.T, when string, want ...netip.AddrPort) {
		t.Helper()
		for _, op := range []string{"tcp", "tcp6"} {
			addr, peer := ap(vip, 80), ap(vip, 80)
			if op == "tcp6" {
				addr, peer = ap6(vip, 80), ap6(vip, 80)
			}
			r := cl.do(t, helperReq{Op: op, Addr: addr, N: 30})
			if r.ErrCount > 0 || len(r.Counts) != len(want) || r.Peers[peer] != 30 {
				t.Fatalf("%s, %s: counts %v peers %v errors %v", when, op, r.Counts, r.Peers, r.Errs)
			}
			for _, b := range want {
				if r.Counts[b.String()] == 0 {
					t.Fatalf("%s, %s: %v never chosen: %v", when, op, b, r.Counts)
				}
			}
		}
	}

	lb1, err := ebpflb.New(ebpflb.Config{CgroupPath: e.cgroup, PinDir: e.pinDir})
	if err != nil {
		t.Fatal(err)
	}
	upsert(t, lb1, svc)
	if err := lb1.Close(); err != nil {
		t.Fatal(err)
	}
	reachesAll(t, "with the agent gone", be1, be2, be3)
	before := pinnedLinks(t, e.pinDir)
	if len(before) != len(v4)+len(v6) {
		t.Fatalf("pinned links %v, want %v and %v", before, v4, v6)
	}

	// A plain restart keeps every link and swaps in the new programs.
	lb2, err := ebpflb.New(ebpflb.Config{CgroupPath: e.cgroup, PinDir: e.pinDir})
	if err != nil {
		t.Fatal(err)
	}
	after := pinnedLinks(t, e.pinDir)
	for name, b := range before {
		if a := after[name]; a.ID != b.ID || a.Program == b.Program {
			t.Errorf("%s: link %d program %d before, link %d program %d after the restart; want the same link, a new program", name, b.ID, b.Program, a.ID, a.Program)
		}
	}
	reachesAll(t, "after a restart", be1, be2, be3)
	lb2.Close()

	// A pin dir written by an agent without the v6 hooks: the next agent
	// keeps the v4 links and attaches the v6 ones.
	for _, name := range v6 {
		lk, err := link.LoadPinnedLink(filepath.Join(e.pinDir, "link_"+name), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := lk.Detach(); err != nil {
			t.Fatal(err)
		}
		if err := lk.Unpin(); err != nil {
			t.Fatal(err)
		}
		lk.Close()
	}
	r := cl.do(t, helperReq{Op: "tcp6", Addr: ap6(vip, 80), N: 2})
	if r.ErrCount != 2 || !strings.Contains(r.Errs[0], "unreachable") {
		t.Fatalf("without the v6 links: counts %v errors %v", r.Counts, r.Errs)
	}
	lb3, err := ebpflb.New(ebpflb.Config{CgroupPath: e.cgroup, PinDir: e.pinDir})
	if err != nil {
		t.Fatal(err)
	}
	defer lb3.Close()
	upgraded := pinnedLinks(t, e.pinDir)
	for _, name := range v4 {
		if upgraded[name].ID != before[name].ID {
			t.Errorf("%s: link %d replaced by %d, want it kept", name, before[name].ID, upgraded[name].ID)
		}
	}
	for _, name := range v6 {
		if _, ok := upgraded[name]; !ok {
			t.Errorf("%s: no link after the upgrade: %v", name, upgraded)
		}
	}
	got := lb3.Services()
	if len(got) != 1 || got[0].VIP != vip || len(got[0].Backends) != 3 {
		t.Fatalf("restarted LB sees %+v", got)
	}
	reachesAll(t, "after the upgrade", be1, be2, be3)
	svc.Backends = []netip.AddrPort{be2}
	upsert(t, lb3, svc)
	reachesAll(t, "after an update", be2)
	// Teardown detaches: the VIP is unreachable again, from both families.
	lb3.Close()
	if err := ebpflb.Teardown(e.pinDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.pinDir); !os.IsNotExist(err) {
		t.Fatalf("pin dir still there: %v", err)
	}
	for _, req := range []helperReq{{Op: "tcp", Addr: ap(vip, 80), N: 2}, {Op: "tcp6", Addr: ap6(vip, 80), N: 2}} {
		r := cl.do(t, req)
		if r.ErrCount != 2 || !strings.Contains(r.Errs[0], "unreachable") {
			t.Fatalf("%s after teardown: counts %v errors %v", req.Op, r.Counts, r.Errs)
		}
	}
}

// pinnedLinks returns the link and program IDs of the links pinned in dir,
// keyed by hook name (link_connect4 -> connect4).
func pinnedLinks(t *testing.T, dir string) map[string]link.Info {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]link.Info{}
	for _, en := range entries {
		name, ok := strings.CutPrefix(en.Name(), "link_")
		if !ok {
			continue
		}
		lk, err := link.LoadPinnedLink(filepath.Join(dir, en.Name()), nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := lk.Info()
		lk.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[name] = *info
	}
	return out
}

// TestEBPFConnectPolicyInet6: the per-cgroup NetworkPolicy verdicts also
// hold for AF_INET6 sockets addressing ::ffff:a.b.c.d (judged on the
// embedded IPv4 address, after service translation), and an egress-isolated
// cgroup may not reach native IPv6 destinations, whose rules list IPv4
// endpoints only. Steps run in order: deny, then allow.
func TestEBPFConnectPolicyInet6(t *testing.T) {
	e := newEnv(t)
	be6 := netip.MustParseAddrPort("[::1]:8080") // a native IPv6 endpoint
	e.startBackends(t, be1, be2, be3, be6)
	lb, err := ebpflb.New(ebpflb.Config{CgroupPath: e.cgroup, PinDir: e.pinDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	cl := e.startClient(t)
	cg, err := ebpflb.CgroupID(e.cgroup)
	if err != nil {
		t.Fatal(err)
	}
	all := []string{be1.String(), be2.String(), be3.String()}
	upsert(t, lb, netpolicy.Service{VIP: vip, Port: 80, Protocol: "TCP", Backends: []netip.AddrPort{be1, be2, be3}})
	mapped := func(b netip.AddrPort) string { return ap6(b.Addr(), b.Port()) }

	steps := []struct {
		name   string
		set    *ebpflb.ClientPolicy // nil: delete the policy
		probes []policyProbe
	}{
		{"isolated with one allowed backend", &ebpflb.ClientPolicy{EgressIsolated: true, Entries: []ebpflb.PolicyEntry{{Dst: be1, Protocol: "TCP", Allow: true}}}, []policyProbe{
			{"tcp6", mapped(be1), 3, []string{be1.String()}, false},
			{"tcp6", mapped(be2), 3, nil, true},
			{"udp6", mapped(be3), 3, nil, true},
			// Through ::ffff:VIP: the policy judges the backend chosen.
			{"tcp6", ap6(vip, 80), 30, []string{be1.String()}, true},
			{"tcp6", be6.String(), 3, nil, true},
			{"udp6", be6.String(), 3, nil, true},
		}},
		{"open with a deny entry", &ebpflb.ClientPolicy{Entries: []ebpflb.PolicyEntry{{Dst: be2, Protocol: "TCP"}}}, []policyProbe{
			{"tcp6", mapped(be1), 3, []string{be1.String()}, false},
			{"tcp6", mapped(be2), 3, nil, true},
			{"udp6", mapped(be2), 3, []string{be2.String()}, false}, // the entry is TCP only
			{"tcp6", be6.String(), 3, []string{be6.String()}, false},
			{"udp6", be6.String(), 3, []string{be6.String()}, false},
		}},
		{"policy removed", nil, []policyProbe{
			{"tcp6", ap6(vip, 80), 30, all, false},
			{"udp6", mapped(be3), 3, []string{be3.String()}, false},
			{"tcp6", be6.String(), 3, []string{be6.String()}, false},
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.set == nil {
				if err := lb.DeletePolicy(cg); err != nil {
					t.Fatal(err)
				}
			} else if err := lb.SetPolicy(cg, *st.set); err != nil {
				t.Fatal(err)
			}
			for _, p := range st.probes {
				p.check(t, cl)
			}
		})
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
