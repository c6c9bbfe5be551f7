// Package userspace is Flotilla's load balancer for nodes without eBPF: a
// proxy in the agent process listens on every service VIP:port and relays
// each TCP connection, or each UDP client's datagrams, to a backend.
//
// The VIP must be a local address for the listener to bind it, so the proxy
// adds VIP/32 to the loopback interface by running `ip addr add` (iproute2;
// chosen over raw netlink to keep the code small) and removes the addresses
// it added when the last service on them goes. Loopback VIPs (127/8) are
// used as they are.
//
// A service without backends has no listener, so a client's connect is
// refused at once. Backend lists are swapped atomically (an immutable slice
// behind an atomic.Pointer), so a connection sees the old or the new list.
package userspace

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flotilla-edge/flotilla/internal/netns"
	"github.com/flotilla-edge/flotilla/netpolicy/internal/lbapi"
)

const (
	dialTimeout    = time.Second
	udpIdleTimeout = 30 * time.Second
	maxUDPSessions = 4096
)

// Config configures New.
type Config struct {
	// NetNS names a network namespace (as in `ip netns`) in which the VIPs
	// are added and all proxy sockets are created. "" = the agent's own.
	NetNS string
}

// LB is the userspace proxy. It implements netpolicy.LB.
type LB struct {
	cfg Config

	mu     sync.Mutex
	svcs   map[svcKey]*service
	vips   map[netip.Addr]*vipRef
	closed bool
	// admit is the NetworkPolicy check (SetAdmit); nil admits everything.
	admit atomic.Pointer[AdmitFunc]
}

// AdmitFunc decides whether a client address may be relayed to a backend
// (NetworkPolicy ingress of the backend's pod). The proxy only knows the
// client's address, so a datapath built on it can enforce no more than
// address-based rules; see docs/networking.md.
type AdmitFunc func(client netip.Addr, backend netip.AddrPort, proto string) error

// SetAdmit installs (nil: removes) the check applied to every new
// connection and UDP session: only admitted backends are candidates, and a
// client admitted to none is refused like a service without backends.
func (l *LB) SetAdmit(f AdmitFunc) {
	if f == nil {
		l.admit.Store(nil)
		return
	}
	l.admit.Store(&f)
}

type svcKey struct {
	vip   netip.Addr
	port  uint16
	proto string
}

type vipRef struct {
	refs  int
	added bool // we added it and must remove it
}

type affEntry struct {
	be   netip.AddrPort
	last time.Time
}

type service struct {
	lb       *LB
	key      svcKey
	backends atomic.Pointer[[]netip.AddrPort]
	affinity atomic.Int64 // time.Duration

	mu       sync.Mutex
	aff      map[netip.Addr]affEntry
	ln       net.Listener // TCP, nil when no backends
	pc       *net.UDPConn // UDP, nil when no backends
	conns    map[io.Closer]bool
	sessions map[netip.AddrPort]*udpSession
	wg       sync.WaitGroup
}

type udpSession struct {
	be   netip.AddrPort
	conn *net.UDPConn
}

// New returns a userspace load balancer.
func New(cfg Config) (*LB, error) {
	l := &LB{cfg: cfg, svcs: map[svcKey]*service{}, vips: map[netip.Addr]*vipRef{}}
	if cfg.NetNS != "" {
		if _, err := os.Stat(netns.Path(cfg.NetNS)); err != nil {
			return nil, fmt.Errorf("netns %s: %w", cfg.NetNS, err)
		}
	}
	return l, nil
}

// Mode returns "userspace".
func (l *LB) Mode() string { return "userspace" }

// inNS runs fn with the calling OS thread in the configured netns, so the
// sockets fn creates belong to it.
func (l *LB) inNS(fn func() error) error {
	if l.cfg.NetNS == "" {
		return fn()
	}
	return netns.Do(l.cfg.NetNS, fn)
}

func (l *LB) ip(args ...string) (string, error) {
	if l.cfg.NetNS != "" {
		args = append([]string{"-n", l.cfg.NetNS}, args...)
	}
	out, err := exec.Command("ip", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (l *LB) addVIP(vip netip.Addr) error {
	if r := l.vips[vip]; r != nil {
		r.refs++
		return nil
	}
	r := &vipRef{refs: 1}
	if !vip.IsLoopback() {
		out, err := l.ip("addr", "add", vip.String()+"/32", "dev", "lo")
		switch {
		case err == nil:
			r.added = true
		case strings.Contains(out, "File exists"):
		default:
			return fmt.Errorf("ip addr add %v/32 dev lo: %v: %s", vip, err, out)
		}
	}
	l.vips[vip] = r
	return nil
}

func (l *LB) releaseVIP(vip netip.Addr) {
	r := l.vips[vip]
	if r == nil {
		return
	}
	if r.refs--; r.refs > 0 {
		return
	}
	delete(l.vips, vip)
	if r.added {
		_, _ = l.ip("addr", "del", vip.String()+"/32", "dev", "lo")
	}
}

// Upsert installs or replaces a service.
func (l *LB) Upsert(s lbapi.Service) error {
	s, err := lbapi.Normalize(s)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("load balancer closed")
	}
	k := svcKey{s.VIP, s.Port, s.Protocol}
	svc := l.svcs[k]
	if svc == nil {
		if err := l.addVIP(s.VIP); err != nil {
			return err
		}
		svc = &service{lb: l, key: k, aff: map[netip.Addr]affEntry{}, conns: map[io.Closer]bool{}, sessions: map[netip.AddrPort]*udpSession{}}
		l.svcs[k] = svc
	}
	bes := slices.Clone(s.Backends)
	svc.affinity.Store(int64(s.AffinityTimeout))
	svc.backends.Store(&bes)
	svc.pruneAffinity(bes)
	if len(bes) == 0 {
		svc.stopListening()
		return nil
	}
	return svc.listen()
}

// Delete removes a service, closing its listener and its connections.
func (l *LB) Delete(vip netip.Addr, port uint16, proto string) error {
	p, err := lbapi.NormalizeProto(proto)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := svcKey{vip.Unmap(), port, p}
	svc := l.svcs[k]
	if svc == nil {
		return fmt.Errorf("%v:%d/%s: %w", vip, port, p, lbapi.ErrNotFound)
	}
	delete(l.svcs, k)
	svc.shutdown()
	l.releaseVIP(k.vip)
	return nil
}

// Services lists the installed services.
func (l *LB) Services() []lbapi.Service {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]lbapi.Service, 0, len(l.svcs))
	for k, s := range l.svcs {
		out = append(out, lbapi.Service{
			VIP: k.vip, Port: k.port, Protocol: k.proto,
			Backends:        slices.Clone(*s.backends.Load()),
			AffinityTimeout: time.Duration(s.affinity.Load()),
		})
	}
	lbapi.Sort(out)
	return out
}

// Close stops every proxy and removes the VIPs it added.
func (l *LB) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for k, s := range l.svcs {
		s.shutdown()
		l.releaseVIP(k.vip)
	}
	l.svcs = map[svcKey]*service{}
	return nil
}

func (s *service) listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil || s.pc != nil {
		return nil
	}
	addr := netip.AddrPortFrom(s.key.vip, s.key.port)
	return s.lb.inNS(func() error {
		if s.key.proto == "UDP" {
			pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
			if err != nil {
				return fmt.Errorf("listen udp %v: %w", addr, err)
			}
			s.pc = pc
			s.wg.Add(1)
			go s.serveUDP(pc)
			return nil
		}
		ln, err := net.Listen("tcp4", addr.String())
		if err != nil {
			return fmt.Errorf("listen tcp %v: %w", addr, err)
		}
		s.ln = ln
		s.wg.Add(1)
		go s.serveTCP(ln)
		return nil
	})
}

// stopListening closes the listener (connects are then refused) and, for
// UDP, the sessions.
func (s *service) stopListening() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	if s.pc != nil {
		s.pc.Close()
		s.pc = nil
	}
	for c, us := range s.sessions {
		us.conn.Close()
		delete(s.sessions, c)
	}
	s.mu.Unlock()
}

func (s *service) shutdown() {
	s.stopListening()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// pruneAffinity forgets affinity entries and UDP sessions whose backend was
// removed, so no new traffic goes there.
func (s *service) pruneAffinity(bes []netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ip, e := range s.aff {
		if !slices.Contains(bes, e.be) {
			delete(s.aff, ip)
		}
	}
	for c, us := range s.sessions {
		if !slices.Contains(bes, us.be) {
			us.conn.Close()
			delete(s.sessions, c)
		}
	}
}

// pick chooses a backend for a client: the remembered one under ClientIP
// affinity, else a random one.
func (s *service) pick(client netip.Addr, avoid netip.AddrPort) (netip.AddrPort, bool) {
	bes := *s.backends.Load()
	if f := s.lb.admit.Load(); f != nil {
		var ok []netip.AddrPort
		for _, be := range bes {
			if (*f)(client, be, s.key.proto) == nil {
				ok = append(ok, be)
			}
		}
		bes = ok
	}
	if len(bes) == 0 {
		return netip.AddrPort{}, false
	}
	timeout := time.Duration(s.affinity.Load())
	if timeout > 0 {
		now := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		if e, ok := s.aff[client]; ok && now.Sub(e.last) < timeout && e.be != avoid && slices.Contains(bes, e.be) {
			e.last = now
			s.aff[client] = e
			return e.be, true
		}
		be := bes[rand.IntN(len(bes))]
		if len(s.aff) > 65536 {
			clear(s.aff)
		}
		s.aff[client] = affEntry{be: be, last: now}
		return be, true
	}
	be := bes[rand.IntN(len(bes))]
	if be == avoid && len(bes) > 1 {
		be = bes[rand.IntN(len(bes))]
	}
	return be, true
}

func (s *service) track(c io.Closer, on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		if s.ln == nil && s.pc == nil {
			return false
		}
		s.conns[c] = true
	} else {
		delete(s.conns, c)
	}
	return true
}

func (s *service) dial(network string, be netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := s.lb.inNS(func() error {
		var err error
		c, err = net.DialTimeout(network, be.String(), dialTimeout)
		return err
	})
	return c, err
}

func (s *service) serveTCP(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if !s.track(c, true) {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.proxyTCP(c.(*net.TCPConn))
	}
}

func (s *service) proxyTCP(c *net.TCPConn) {
	defer s.wg.Done()
	defer s.track(c, false)
	defer c.Close()
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	var bc net.Conn
	var avoid netip.AddrPort
	for try := 0; try < 3 && bc == nil; try++ {
		be, ok := s.pick(client, avoid)
		if !ok {
			break
		}
		var err error
		if bc, err = s.dial("tcp4", be); err != nil {
			bc, avoid = nil, be
		}
	}
	if bc == nil {
		_ = c.SetLinger(0) // reset: the client sees an error, not a hang
		return
	}
	if !s.track(bc, true) {
		bc.Close()
		return
	}
	defer s.track(bc, false)
	defer bc.Close()
	done := make(chan struct{}, 2)
	relay := func(dst, src *net.TCPConn) {
		_, _ = io.Copy(dst, src)
		_ = dst.CloseWrite()
		done <- struct{}{}
	}
	go relay(bc.(*net.TCPConn), c)
	go relay(c, bc.(*net.TCPConn))
	<-done
	<-done
}

func (s *service) serveUDP(pc *net.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		us := s.session(pc, from)
		if us == nil {
			continue
		}
		_, _ = us.conn.Write(buf[:n])
	}
}

// session returns the client's UDP session, creating it (and its reply
// relay) on the client's first datagram.
func (s *service) session(pc *net.UDPConn, from netip.AddrPort) *udpSession {
	s.mu.Lock()
	us := s.sessions[from]
	n := len(s.sessions)
	s.mu.Unlock()
	if us != nil {
		return us
	}
	if n >= maxUDPSessions {
		return nil
	}
	be, ok := s.pick(from.Addr(), netip.AddrPort{})
	if !ok {
		return nil
	}
	c, err := s.dial("udp4", be)
	if err != nil {
		return nil
	}
	us = &udpSession{be: be, conn: c.(*net.UDPConn)}
	s.mu.Lock()
	if s.pc != pc {
		s.mu.Unlock()
		c.Close()
		return nil
	}
	s.sessions[from] = us
	s.mu.Unlock()
	s.wg.Add(1)
	go s.relayUDP(pc, from, us)
	return us
}

func (s *service) relayUDP(pc *net.UDPConn, client netip.AddrPort, us *udpSession) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		if s.sessions[client] == us {
			delete(s.sessions, client)
		}
		s.mu.Unlock()
		us.conn.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		_ = us.conn.SetReadDeadline(time.Now().Add(udpIdleTimeout))
		n, err := us.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP port unreachable from the backend
		}
		// Sent from the VIP:port socket, so the reply comes from the VIP.
		if _, err := pc.WriteToUDPAddrPort(buf[:n], client); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}
