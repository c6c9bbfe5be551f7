package nodeport_test

// Two network namespaces the test creates, joined by a veth pair: "node"
// holds the backends and the programs on its side of the veth, "client"
// is a host outside the node. Neither has a default route.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/vishvananda/netlink"

	"github.com/flotilla-edge/flotilla/internal/netns"
	"github.com/flotilla-edge/flotilla/internal/privtest"
	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
	"github.com/flotilla-edge/flotilla/netpolicy/nodeport"
)

type env struct {
	nodeNS, clientNS string
	node, client     netip.Addr
	nodeIf           string
	pinDir           string
	attach           string // nodeport.Config.Attach
}

func sh(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// eachAttach runs test once per attach mode: tcx links and cls_bpf
// filters (what kernels before 6.6 get).
func eachAttach(t *testing.T, test func(*testing.T, *env)) {
	for _, mode := range []string{nodeport.AttachTCX, nodeport.AttachTC} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			e.attach = mode
			test(t, e)
		})
	}
}

func newEnv(t testing.TB) *env {
	t.Helper()
	privtest.RequireEBPF(t)
	if err := features.HaveProgramType(ebpf.SchedCLS); err != nil {
		privtest.Unavailable(t, "kernel lacks TC BPF programs: "+err.Error())
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	sfx := hex.EncodeToString(b)
	e := &env{nodeNS: "flnpn-" + sfx, clientNS: "flnpc-" + sfx, nodeIf: "np" + sfx + "n",
		node:   netip.MustParseAddr(fmt.Sprintf("10.232.%d.1", b[0])),
		client: netip.MustParseAddr(fmt.Sprintf("10.232.%d.2", b[0])),
		pinDir: "/sys/fs/bpf/flotilla-nptest-" + sfx}
	for _, ns := range []string{e.nodeNS, e.clientNS} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	cIf := "np" + sfx + "c"
	sh(t, "ip", "link", "add", e.nodeIf, "netns", e.nodeNS, "type", "veth", "peer", "name", cIf, "netns", e.clientNS)
	sh(t, "ip", "-n", e.nodeNS, "addr", "add", e.node.String()+"/30", "dev", e.nodeIf)
	sh(t, "ip", "-n", e.clientNS, "addr", "add", e.client.String()+"/30", "dev", cIf)
	sh(t, "ip", "-n", e.nodeNS, "link", "set", e.nodeIf, "up")
	sh(t, "ip", "-n", e.clientNS, "link", "set", cIf, "up")
	t.Cleanup(func() {
		if err := ebpflb.Teardown(e.pinDir); err != nil {
			t.Errorf("teardown %s: %v", e.pinDir, err)
		}
	})
	return e
}

// in runs fn on a thread in namespace ns (netns.Do).
func in(ns string, fn func() error) error { return netns.Do(ns, fn) }

// backends serves TCP and UDP on the node's ports: every request line or
// datagram is answered with "port=<backend port> remote=<peer>".
func (e *env) backends(t testing.TB, ports ...uint16) {
	t.Helper()
	var closers []io.Closer
	var wg sync.WaitGroup
	err := in(e.nodeNS, func() error {
		for _, p := range ports {
			a := netip.AddrPortFrom(e.node, p)
			ln, err := net.Listen("tcp4", a.String())
			if err != nil {
				return err
			}
			pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(a))
			if err != nil {
				return err
			}
			closers = append(closers, ln, pc)
			wg.Go(func() {
				var cw sync.WaitGroup
				defer cw.Wait()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					cw.Go(func() {
						defer c.Close()
						_ = c.SetDeadline(time.Now().Add(20 * time.Second))
						r := bufio.NewReader(c)
						for {
							if _, err := r.ReadString('\n'); err != nil {
								return
							}
							if _, err := fmt.Fprintf(c, "port=%d remote=%s\n", p, c.RemoteAddr()); err != nil {
								return
							}
						}
					})
				}
			})
			wg.Go(func() {
				buf := make([]byte, 1500)
				for {
					_, from, err := pc.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					_, _ = pc.WriteToUDPAddrPort([]byte(fmt.Sprintf("port=%d remote=%s\n", p, from)), from)
				}
			})
		}
		return nil
	})
	t.Cleanup(func() {
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) open(t testing.TB) *nodeport.NAT {
	t.Helper()
	var n *nodeport.NAT
	err := in(e.nodeNS, func() (err error) {
		n, err = nodeport.New(nodeport.Config{PinDir: e.pinDir, Interfaces: []string{e.nodeIf}, Attach: e.attach})
		return err
	})
	if err != nil {
		if e.attach == nodeport.AttachTCX && errors.Is(err, ebpf.ErrNotSupported) {
			// A kernel feature, not a privilege: before Linux 6.6 the
			// agent uses tc, which every test also runs with.
			t.Skipf("this kernel has no tcx: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	if e.attach != "" && n.Mode() != e.attach {
		t.Fatalf("attached with %s, want %s", n.Mode(), e.attach)
	}
	return n
}

// attached lists what carries the programs on the node's interface: the
// pinned tcx links and this package's cls_bpf filters (by name).
func (e *env) attached(t testing.TB) (links, filters []string) {
	t.Helper()
	ents, err := os.ReadDir(e.pinDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ents {
		if strings.HasPrefix(f.Name(), "link_np_") {
			links = append(links, f.Name())
		}
	}
	err = in(e.nodeNS, func() error {
		lk, err := netlink.LinkByName(e.nodeIf)
		if err != nil {
			return err
		}
		for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
			fs, err := netlink.FilterList(lk, parent)
			if err != nil {
				return err
			}
			for _, f := range fs {
				if bf, ok := f.(*netlink.BpfFilter); ok {
					filters = append(filters, bf.Name)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return links, filters
}

// conn is a client connection made inside the client namespace.
type conn struct {
	net.Conn
	r *bufio.Reader
}

func (e *env) dial(proto string, to netip.AddrPort) (*conn, error) {
	var c net.Conn
	err := in(e.clientNS, func() (err error) {
		c, err = net.DialTimeout(proto, to.String(), 2*time.Second)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, r: bufio.NewReader(c)}, nil
}

// ask sends one line and returns the answer.
func (c *conn) ask() (string, error) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "hi\n"); err != nil {
		return "", err
	}
	s, err := c.r.ReadString('\n')
	return strings.TrimSpace(s), err
}

// once opens a connection, asks once and closes it.
func (e *env) once(proto string, to netip.AddrPort) (string, error) {
	c, err := e.dial(proto, to)
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.ask()
	if err != nil {
		return "", err
	}
	if proto == "udp4" {
		// The reply must come back from the node port, or the
		// connected socket would not have received it at all.
		if got := c.RemoteAddr().String(); got != to.String() {
			return "", fmt.Errorf("reply from %s", got)
		}
	}
	return s, nil
}

func TestNodePortKeepsClientAddress(t *testing.T) { eachAttach(t, nodePortKeepsClientAddress) }

func nodePortKeepsClientAddress(t *testing.T, e *env) {
	e.backends(t, 8080, 8081)
	n := e.open(t)
	np := netip.AddrPortFrom(e.node, 30080)
	bes := []netip.AddrPort{netip.AddrPortFrom(e.node, 8080), netip.AddrPortFrom(e.node, 8081)}
	for _, proto := range []string{"TCP", "UDP"} {
		if err := n.Upsert(nodeport.Entry{Addr: np, Protocol: proto, Backends: bes}); err != nil {
			t.Fatal(err)
		}
	}

	for _, proto := range []string{"tcp4", "udp4"} {
		t.Run(proto, func(t *testing.T) {
			seen := map[string]int{}
			for range 40 {
				s, err := e.once(proto, np)
				if err != nil {
					t.Fatal(err)
				}
				port, remote, _ := strings.Cut(s, " ")
				if host, _, _ := net.SplitHostPort(strings.TrimPrefix(remote, "remote=")); host != e.client.String() {
					t.Fatalf("backend saw %q, want the client's address %s", remote, e.client)
				}
				seen[port]++
			}
			if len(seen) != 2 {
				t.Fatalf("40 flows reached %v, want both backends", seen)
			}
		})
	}

	t.Run("EstablishedFlowKeepsItsBackend", func(t *testing.T) {
		c, err := e.dial("tcp4", np)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		first, err := c.ask()
		if err != nil {
			t.Fatal(err)
		}
		port := strings.Fields(first)[0]
		other := bes[0]
		if port == "port=8080" {
			other = bes[1]
		}
		if err := n.Upsert(nodeport.Entry{Addr: np, Protocol: "TCP", Backends: []netip.AddrPort{other}}); err != nil {
			t.Fatal(err)
		}
		again, err := c.ask()
		if err != nil || strings.Fields(again)[0] != port {
			t.Fatalf("after the backend list changed the flow answered %q, %v; want %s", again, err, port)
		}
		for range 10 {
			s, err := e.once("tcp4", np)
			if err != nil || !strings.HasPrefix(s, fmt.Sprintf("port=%d ", other.Port())) {
				t.Fatalf("new flow: %q, %v; want only %v", s, err, other)
			}
		}
		if err := n.Upsert(nodeport.Entry{Addr: np, Protocol: "TCP", Backends: bes}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNodePortAdmission(t *testing.T) { eachAttach(t, nodePortAdmission) }

func nodePortAdmission(t *testing.T, e *env) {
	e.backends(t, 8080)
	n := e.open(t)
	np := netip.AddrPortFrom(e.node, 30081)
	be := nodeport.Backend{Addr: netip.AddrPortFrom(e.node, 8080), Protocol: "TCP"}
	if err := n.Upsert(nodeport.Entry{Addr: np, Protocol: "TCP", Backends: []netip.AddrPort{be.Addr}}); err != nil {
		t.Fatal(err)
	}
	all := netip.MustParsePrefix("0.0.0.0/0")
	self := netip.PrefixFrom(e.client, 32)
	cases := []struct {
		name  string
		rules []nodeport.Prefix
		admit bool
	}{
		{"NotIsolated", nil, true},
		{"DenyAll", []nodeport.Prefix{{Prefix: all}}, false},
		{"AllowTheClient", []nodeport.Prefix{{Prefix: all}, {Prefix: self, Allow: true}}, true},
		{"AllowItsSubnetExceptTheClient", []nodeport.Prefix{{Prefix: all}, {Prefix: netip.PrefixFrom(e.client, 24).Masked(), Allow: true}, {Prefix: self}}, false},
		{"AllowAll", []nodeport.Prefix{{Prefix: all, Allow: true}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := n.SetAdmission(be, tc.rules); err != nil {
				t.Fatal(err)
			}
			s, err := e.once("tcp4", np)
			if tc.admit {
				if err != nil || !strings.Contains(s, "remote="+e.client.String()+":") {
					t.Fatalf("admitted client: %q, %v", s, err)
				}
				return
			}
			// Not translated: the packet reaches the node port itself,
			// where nothing listens in this test, so it is refused.
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("denied client: %q, %v; want connection refused", s, err)
			}
		})
	}
	if got := n.Admission()[be]; len(got) != 1 || got[0].Prefix != all || !got[0].Allow {
		t.Fatalf("admission mirror %v, want only 0.0.0.0/0 allow", got)
	}
}

// TestNodePortSurvivesRestart: closing the handles keeps the pinned links
// translating, and a new NAT on the same pin dir finds the entries.
func TestNodePortSurvivesRestart(t *testing.T) { eachAttach(t, nodePortSurvivesRestart) }

func nodePortSurvivesRestart(t *testing.T, e *env) {
	e.backends(t, 8080)
	n := e.open(t)
	np := netip.AddrPortFrom(e.node, 30082)
	want := nodeport.Entry{Addr: np, Protocol: "TCP", Backends: []netip.AddrPort{netip.AddrPortFrom(e.node, 8080)}}
	be := nodeport.Backend{Addr: want.Backends[0], Protocol: "TCP"}
	if err := n.Upsert(want); err != nil {
		t.Fatal(err)
	}
	if err := n.SetAdmission(be, []nodeport.Prefix{{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Allow: true}}); err != nil {
		t.Fatal(err)
	}
	c, err := e.dial("tcp4", np)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ask(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := c.ask(); err != nil {
		t.Fatalf("open flow while no agent runs: %q, %v", s, err)
	}
	if s, err := e.once("tcp4", np); err != nil || !strings.Contains(s, "remote="+e.client.String()) {
		t.Fatalf("new flow while no agent runs: %q, %v", s, err)
	}

	n2 := e.open(t)
	got, err := n2.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Addr != want.Addr || got[0].Protocol != want.Protocol || len(got[0].Backends) != 1 || got[0].Backends[0] != want.Backends[0] {
		t.Fatalf("entries after restart %+v, want %+v", got, want)
	}
	if a := n2.Admission()[be]; len(a) != 1 || !a[0].Allow {
		t.Fatalf("admission after restart %v", a)
	}
	if s, err := c.ask(); err != nil {
		t.Fatalf("open flow after restart: %q, %v", s, err)
	}
	if err := n2.Delete(np, "TCP"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.once("tcp4", np); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("deleted node port: %v, want connection refused", err)
	}
}

func TestNodePortBadInput(t *testing.T) {
	e := newEnv(t)
	n := e.open(t)
	many := make([]netip.AddrPort, nodeport.MaxBackends+1)
	for i := range many {
		many[i] = netip.AddrPortFrom(e.node, uint16(8000+i))
	}
	cases := []struct {
		name string
		e    nodeport.Entry
		want string
	}{
		{"NoBackends", nodeport.Entry{Addr: netip.AddrPortFrom(e.node, 30000), Protocol: "TCP"}, "0 backends"},
		{"TooMany", nodeport.Entry{Addr: netip.AddrPortFrom(e.node, 30000), Protocol: "TCP", Backends: many}, "33 backends"},
		{"SCTP", nodeport.Entry{Addr: netip.AddrPortFrom(e.node, 30000), Protocol: "SCTP", Backends: many[:1]}, `protocol "SCTP"`},
		{"IPv6", nodeport.Entry{Addr: netip.MustParseAddrPort("[fd00::1]:30000"), Protocol: "TCP", Backends: many[:1]}, "only IPv4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := n.Upsert(tc.e); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Upsert: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if got, err := n.Entries(); err != nil || len(got) != 0 {
		t.Fatalf("bad input changed the map: %v, %v", got, err)
	}
}

// TestNodePortSourcePortReuse: a client that dials the node port, then
// the backend's own port, then the node port again, all from one source
// port, gets answers every time: the direct flow's replies are not
// rewritten by the earlier flow's reply mapping, and the later translated
// flow gets its mapping back.
func TestNodePortSourcePortReuse(t *testing.T) { eachAttach(t, nodePortSourcePortReuse) }

func nodePortSourcePortReuse(t *testing.T, e *env) {
	e.backends(t, 8080)
	n := e.open(t)
	np := netip.AddrPortFrom(e.node, 30083)
	be := netip.AddrPortFrom(e.node, 8080)
	if err := n.Upsert(nodeport.Entry{Addr: np, Protocol: "TCP", Backends: []netip.AddrPort{be}}); err != nil {
		t.Fatal(err)
	}
	from := &net.TCPAddr{IP: e.client.AsSlice(), Port: 41234}
	for i, to := range []netip.AddrPort{np, be, np, be} {
		var s string
		err := in(e.clientNS, func() error {
			d := net.Dialer{LocalAddr: from, Timeout: 2 * time.Second}
			c, err := d.Dial("tcp4", to.String())
			if err != nil {
				return err
			}
			// Reset, so the source port is free again at once.
			defer func() { _ = c.(*net.TCPConn).SetLinger(0); c.Close() }()
			s, err = (&conn{Conn: c, r: bufio.NewReader(c)}).ask()
			return err
		})
		if err != nil || !strings.HasPrefix(s, "port=8080 ") {
			t.Fatalf("exchange %d with %v from port %d: %q, %v", i, to, from.Port, s, err)
		}
	}
}

// TestNodePortAttachModeChange: a node whose kernel gains tcx (or an
// agent told to use tc) moves the programs, and leaves nothing of the
// other mode behind; Detach removes both.
func TestNodePortAttachModeChange(t *testing.T) {
	e := newEnv(t)
	e.backends(t, 8080)
	np := netip.AddrPortFrom(e.node, 30084)
	for i, step := range []struct {
		mode           string
		links, filters int
	}{
		{nodeport.AttachTC, 0, 2},
		{nodeport.AttachTCX, 2, 0},
		{nodeport.AttachTC, 0, 2},
	} {
		e.attach = step.mode
		n := e.open(t)
		if err := n.Upsert(nodeport.Entry{Addr: np, Protocol: "TCP", Backends: []netip.AddrPort{netip.AddrPortFrom(e.node, 8080)}}); err != nil {
			t.Fatal(err)
		}
		links, filters := e.attached(t)
		if len(links) != step.links || len(filters) != step.filters {
			t.Fatalf("step %d (%s): links %v, filters %v; want %d and %d", i, step.mode, links, filters, step.links, step.filters)
		}
		if s, err := e.once("tcp4", np); err != nil || !strings.Contains(s, "remote="+e.client.String()) {
			t.Fatalf("step %d (%s): %q, %v", i, step.mode, s, err)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := in(e.nodeNS, func() error { return nodeport.Detach(e.pinDir) }); err != nil {
		t.Fatal(err)
	}
	if links, filters := e.attached(t); len(links)+len(filters) != 0 {
		t.Fatalf("after Detach: links %v, filters %v", links, filters)
	}
	if _, err := e.once("tcp4", np); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("node port after Detach: %v, want connection refused", err)
	}
}
