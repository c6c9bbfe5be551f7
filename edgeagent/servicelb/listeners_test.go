package servicelb

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/netpolicy/policy"
)

type fakeLocal struct{ m sync.Map }

func (f *fakeLocal) LocalHTTPHandler(a netip.AddrPort) http.Handler {
	if h, ok := f.m.Load(a); ok {
		return h.(http.Handler)
	}
	return nil
}

// A Local listener whose backend is served in-process hands the
// connection to the handler (the backend port itself has no listener, so
// a relay would fail), keep-alive included; a Cluster listener relays.
func TestLocalListenerHandsOver(t *testing.T) {
	backend := netip.MustParseAddrPort("127.0.0.1:1") // nothing listens there
	var mu sync.Mutex
	var seen []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RemoteAddr)
		mu.Unlock()
		_, _ = io.WriteString(w, "in-process")
	})
	l := Listener{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Protocol: "TCP", Backends: []netip.AddrPort{backend}, Local: true}
	local := &fakeLocal{}
	local.m.Store(backend, h)
	p, err := startProxy(l, slog.New(slog.DiscardHandler), local, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	url := "http://" + p.closer.(net.Listener).Addr().String() + "/"
	c := &http.Client{Transport: &http.Transport{}}
	for range 3 {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "in-process" {
			t.Fatalf("body %q", b)
		}
	}
	saw := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
	if s := saw(); len(s) != 3 || s[0] != s[2] {
		t.Fatalf("handler saw %v (want one kept-alive client connection)", s)
	}
	// The pod goes: a kept-alive connection is closed, not answered by a
	// stale handler; the next connection is relayed (and fails here).
	local.m.Delete(backend)
	if _, err := c.Get(url); err == nil {
		t.Fatal("answered after the backend left the registry")
	}
	if s := saw(); len(s) != 3 {
		t.Fatalf("stale handler served: %v", s)
	}
	c.CloseIdleConnections()

	l.Local = false
	p.set(l)
	if _, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(url); err == nil {
		t.Fatal("Cluster listener answered without relaying to a backend")
	}
}

// nameServers starts n TCP and n UDP servers on 127.0.0.1 that answer
// with their index ("0", "1", ...): TCP writes it and closes, UDP echoes
// it for every datagram.
func nameServers(t *testing.T, n int) (tcp, udp []netip.AddrPort) {
	t.Helper()
	for i := range n {
		name := []byte(strconv.Itoa(i))
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write(name)
				_ = c.Close()
			}
		}()
		pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		go func() {
			buf := make([]byte, 512)
			for {
				_, from, err := pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteToUDPAddrPort(name, from)
			}
		}()
		tcp = append(tcp, ln.Addr().(*net.TCPAddr).AddrPort())
		udp = append(udp, pc.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	return tcp, udp
}

// askTCP connects to addr and returns what the backend wrote ("" when the
// connection is closed without data) and how long it took.
func askTCP(t *testing.T, addr string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read from %s: %v (a refused client must be closed, not left hanging)", addr, err)
	}
	return string(b), time.Since(start)
}

// askUDP sends one datagram to addr from a new socket and returns the
// reply, "" when none came within wait.
func askUDP(t *testing.T, addr string, wait time.Duration) string {
	t.Helper()
	c, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("who")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// logBuffer collects debug logs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The listeners apply the admit check to every relayed TCP connection and
// UDP session: only admitted backends are candidates, and a client
// admitted to none is closed at once (TCP) or dropped (UDP), with the
// decision's reason logged.
func TestListenersApplyNetworkPolicy(t *testing.T) {
	tcpBes, udpBes := nameServers(t, 3)
	loopback := netip.MustParseAddr("127.0.0.1")
	const reason = "denied by NetworkPolicy default/test"
	// only admits the backends whose index is listed.
	only := func(bes []netip.AddrPort, idx ...int) admitFunc {
		return func(client netip.Addr, b netip.AddrPort, _ string) policy.Decision {
			for _, i := range idx {
				if bes[i] == b && client == loopback {
					return policy.Decision{Allowed: true}
				}
			}
			return policy.Decision{Reason: reason}
		}
	}
	tests := []struct {
		name  string
		proto string
		admit func(bes []netip.AddrPort) admitFunc
		want  []string // answers seen; none: refused
	}{
		{"TCP without a check", "TCP", func([]netip.AddrPort) admitFunc { return nil }, []string{"0", "1", "2"}},
		{"TCP admitted to every backend", "TCP", func(bes []netip.AddrPort) admitFunc { return only(bes, 0, 1, 2) }, []string{"0", "1", "2"}},
		{"TCP admitted to one backend", "TCP", func(bes []netip.AddrPort) admitFunc { return only(bes, 1) }, []string{"1"}},
		{"TCP admitted to none", "TCP", func(bes []netip.AddrPort) admitFunc { return only(bes) }, nil},
		{"UDP without a check", "UDP", func([]netip.AddrPort) admitFunc { return nil }, []string{"0", "1", "2"}},
		{"UDP admitted to two backends", "UDP", func(bes []netip.AddrPort) admitFunc { return only(bes, 0, 2) }, []string{"0", "2"}},
		{"UDP admitted to none", "UDP", func(bes []netip.AddrPort) admitFunc { return only(bes) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bes := tcpBes
			if tt.proto == "UDP" {
				bes = udpBes
			}
			var calls atomic.Int32
			check := tt.admit(bes)
			var admit admitFunc
			if check != nil {
				admit = func(client netip.Addr, b netip.AddrPort, proto string) policy.Decision {
					calls.Add(1)
					if proto != tt.proto {
						t.Errorf("admit asked for %s on a %s listener", proto, tt.proto)
					}
					return check(client, b, proto)
				}
			}
			logs := &logBuffer{}
			ls := listeners{log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				running: map[string]*proxy{}, admit: admit}
			l := Listener{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Protocol: tt.proto, Backends: bes, Service: "default/test"}
			ls.sync([]Listener{l})
			defer ls.closeAll()
			p := ls.running[listenerKey(l)]
			if p == nil {
				t.Fatal("no listener started")
			}
			// 30 tries miss one of 3 random backends with p < 1e-4; a
			// refused UDP client waits out each try, so it gets fewer.
			n := 30
			if tt.proto == "UDP" && len(tt.want) == 0 {
				n = 5
			}
			seen := map[string]int{}
			for range n {
				switch tt.proto {
				case "TCP":
					got, took := askTCP(t, p.closer.(net.Listener).Addr().String())
					if got == "" && took > time.Second {
						t.Fatalf("refused connection took %v to close", took)
					}
					seen[got]++
				case "UDP":
					// A refused client's datagram gets no answer: wait less.
					wait := 2 * time.Second
					if len(tt.want) == 0 {
						wait = 100 * time.Millisecond
					}
					seen[askUDP(t, p.closer.(*net.UDPConn).LocalAddr().String(), wait)]++
				}
			}
			if len(tt.want) == 0 {
				if len(seen) != 1 || seen[""] != n {
					t.Fatalf("refused client got answers: %v", seen)
				}
				if !strings.Contains(logs.String(), reason) {
					t.Errorf("refusal not logged with its reason; logs:\n%s", logs)
				}
			} else {
				if seen[""] > 0 || len(seen) != len(tt.want) {
					t.Fatalf("answers %v, want each of %v", seen, tt.want)
				}
				for _, w := range tt.want {
					if seen[w] == 0 {
						t.Fatalf("answers %v, want each of %v", seen, tt.want)
					}
				}
				if strings.Contains(logs.String(), "refused") {
					t.Errorf("admitted client logged as refused:\n%s", logs)
				}
			}
			if admit != nil && calls.Load() == 0 {
				t.Error("the check was never asked")
			}
		})
	}
}

// The in-process hand-off (externalTrafficPolicy Local, wasm HTTP
// backend) is checked like a relay: a refused client is closed before
// the handler sees it.
func TestLocalHandOffAppliesNetworkPolicy(t *testing.T) {
	backend := netip.MustParseAddrPort("127.0.0.1:1")
	var served atomic.Int32
	local := &fakeLocal{}
	local.m.Store(backend, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		_, _ = io.WriteString(w, "in-process")
	}))
	var allow atomic.Bool
	admit := func(netip.Addr, netip.AddrPort, string) policy.Decision {
		if allow.Load() {
			return policy.Decision{Allowed: true}
		}
		return policy.Decision{Reason: "denied"}
	}
	l := Listener{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Protocol: "TCP", Backends: []netip.AddrPort{backend}, Local: true}
	p, err := startProxy(l, slog.New(slog.DiscardHandler), local, admit)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	url := "http://" + p.closer.(net.Listener).Addr().String() + "/"
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, tt := range []struct {
		name  string
		allow bool
	}{{"refused", false}, {"admitted", true}, {"refused again", false}} {
		t.Run(tt.name, func(t *testing.T) {
			allow.Store(tt.allow)
			before := served.Load()
			resp, err := c.Get(url)
			if !tt.allow {
				if err == nil {
					resp.Body.Close()
					t.Fatal("refused client was answered")
				}
				if served.Load() != before {
					t.Fatal("the handler served a refused client")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "in-process" {
				t.Fatalf("body %q", b)
			}
		})
	}
}

// fakeSource is a PolicySource over a fixed engine.
type fakeSource struct {
	synced bool
	eng    *policy.Engine
}

func (f fakeSource) Synced() bool             { return f.synced }
func (f fakeSource) Engine() *policy.Engine   { return f.eng }
func (f fakeSource) Changed() <-chan struct{} { return nil }

func TestListenerAdmit(t *testing.T) {
	node := netip.MustParseAddr("10.0.0.2")
	be := netip.AddrPortFrom(node, 40001)
	eng := policy.New(policy.Input{
		Namespaces: []policy.Namespace{{Name: "default"}},
		Pods: []policy.Pod{{Namespace: "default", Name: "be", Labels: map[string]string{"app": "be"}, NodeIP: node,
			Ports: []policy.Port{{ContainerPort: 8080, HostPort: 40001}}}},
		Policies: []*api.NetworkPolicy{{ObjectMeta: api.ObjectMeta{Name: "lan-only", Namespace: "default"},
			Spec: api.NetworkPolicySpec{PodSelector: api.LabelSelector{MatchLabels: map[string]string{"app": "be"}},
				PolicyTypes: []string{api.PolicyTypeIngress},
				Ingress:     []api.NetworkPolicyIngressRule{{From: []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: "192.168.1.0/24"}}}}}}}},
	})
	lan, wan := netip.MustParseAddr("192.168.1.7"), netip.MustParseAddr("203.0.113.9")
	tests := []struct {
		name   string
		src    PolicySource
		client netip.Addr
		dst    netip.AddrPort
		allow  bool
		reason string
	}{
		{"no source: no check", nil, wan, be, true, ""},
		{"not synced: allowed", fakeSource{synced: false, eng: eng}, wan, be, true, ""},
		{"client in the ipBlock", fakeSource{synced: true, eng: eng}, lan, be, true, ""},
		{"client in the ipBlock, IPv4-mapped", fakeSource{synced: true, eng: eng}, netip.AddrFrom16(lan.As16()), be, true, ""},
		{"client outside the ipBlock", fakeSource{synced: true, eng: eng}, wan, be, false, "denied by NetworkPolicy default/lan-only"},
		{"backend that is no pod", fakeSource{synced: true, eng: eng}, wan, netip.AddrPortFrom(node, 40009), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := listenerAdmit(tt.src)
			if tt.src == nil {
				if f != nil {
					t.Fatal("a check without a policy source")
				}
				return
			}
			d := f(tt.client, tt.dst, "TCP")
			if d.Allowed != tt.allow || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("decision %+v, want allowed=%v reason ~%q", d, tt.allow, tt.reason)
			}
		})
	}
}
