package servicelb

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// proxy is the agent's listener for one node port (or LoadBalancer port):
// it accepts outside connections (TCP) or datagrams (UDP) and relays them
// to a backend. The socket LB cannot do this: its hooks see only
// connections that processes of this node originate.
//
// NetworkPolicy: a connection or UDP session from client address C goes
// only to a backend B for which admit(C, B, proto) allows it (the ingress
// rules of B's pod); when no backend admits C, a TCP connection is closed
// at once and C's datagrams are dropped. The check is made when the
// connection or session starts; a policy change does not cut what is
// already relayed.
type proxy struct {
	key      string
	proto    string
	backends atomic.Pointer[[]netip.AddrPort]
	admit    admitFunc // nil admits everything
	// local (externalTrafficPolicy Local) with localHTTP set: a backend
	// served in this process gets the connection itself (serveLocal).
	local     atomic.Bool
	localHTTP LocalHTTP
	closer    io.Closer
	log       *slog.Logger
	wg        sync.WaitGroup
	done      chan struct{}
}

const (
	dialTimeout = 2 * time.Second
	udpIdle     = 30 * time.Second
	maxSessions = 4096
)

func listenerKey(l Listener) string { return l.Protocol + " " + l.Addr.String() }

func startProxy(l Listener, log *slog.Logger, localHTTP LocalHTTP, admit admitFunc) (*proxy, error) {
	p := &proxy{key: listenerKey(l), proto: l.Protocol, admit: admit, log: log.With("listener", listenerKey(l), "service", l.Service),
		done: make(chan struct{}), localHTTP: localHTTP}
	p.set(l)
	switch l.Protocol {
	case "TCP":
		ln, err := net.Listen("tcp4", l.Addr.String())
		if err != nil {
			return nil, fmt.Errorf("node port %s: %w", p.key, err)
		}
		p.closer = ln
		p.wg.Go(func() { p.serveTCP(ln) })
	case "UDP":
		pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(l.Addr))
		if err != nil {
			return nil, fmt.Errorf("node port %s: %w", p.key, err)
		}
		p.closer = pc
		p.wg.Go(func() { p.serveUDP(pc) })
	default:
		return nil, fmt.Errorf("node port %s: unknown protocol", p.key)
	}
	return p, nil
}

func (p *proxy) set(l Listener) {
	cp := append([]netip.AddrPort(nil), l.Backends...)
	p.backends.Store(&cp)
	p.local.Store(l.Local)
}

func (p *proxy) close() {
	close(p.done)
	_ = p.closer.Close()
	p.wg.Wait()
}

// admitted returns the current backends that NetworkPolicy lets client
// reach and, when some are left out, the reason of the first refusal.
func (p *proxy) admitted(client netip.Addr) ([]netip.AddrPort, string) {
	bs := *p.backends.Load()
	if p.admit == nil {
		return bs, ""
	}
	ok := make([]netip.AddrPort, 0, len(bs))
	reason := ""
	for _, b := range bs {
		if d := p.admit(client, b, p.proto); d.Allowed {
			ok = append(ok, b)
		} else if reason == "" {
			reason = d.Reason
		}
	}
	return ok, reason
}

// refuse logs that no backend admits client.
func (p *proxy) refuse(client netip.Addr, reason string) {
	p.log.Debug("client refused by NetworkPolicy", "client", client, "reason", reason)
}

// pick chooses a random backend of bs, avoiding ones that already failed.
func pick(bs []netip.AddrPort, failed map[netip.AddrPort]bool) (netip.AddrPort, bool) {
	var ok []netip.AddrPort
	for _, b := range bs {
		if !failed[b] {
			ok = append(ok, b)
		}
	}
	if len(ok) == 0 {
		return netip.AddrPort{}, false
	}
	return ok[rand.IntN(len(ok))], true
}

func (p *proxy) serveTCP(ln net.Listener) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("accept", "err", err)
			}
			return
		}
		conns.Go(func() { p.relayTCP(c) })
	}
}

// relayTCP dials a backend the client is admitted to (up to 3 tries on
// different backends) and copies both ways until either side closes. With
// no such backend the client connection is closed at once rather than left
// hanging.
func (p *proxy) relayTCP(c net.Conn) {
	defer c.Close()
	client := remoteAddr(c)
	bs, reason := p.admitted(client)
	if len(bs) == 0 {
		if reason != "" {
			p.refuse(client, reason)
		}
		return
	}
	if p.local.Load() && p.localHTTP != nil {
		if b, ok := pick(bs, nil); ok {
			if h := p.localHTTP.LocalHTTPHandler(b); h != nil {
				p.serveLocal(c, b, h)
				return
			}
		}
	}
	failed := map[netip.AddrPort]bool{}
	var be net.Conn
	for try := 0; try < 3 && be == nil; try++ {
		b, ok := pick(bs, failed)
		if !ok {
			break
		}
		d, err := net.DialTimeout("tcp4", b.String(), dialTimeout)
		if err != nil {
			failed[b] = true
			continue
		}
		be = d
	}
	if be == nil {
		return
	}
	defer be.Close()
	stop := make(chan struct{})
	go func() {
		select {
		case <-p.done:
			_ = c.Close()
			_ = be.Close()
		case <-stop:
		}
	}()
	defer close(stop)
	errc := make(chan error, 2)
	go func() { _, err := io.Copy(be, c); closeWrite(be); errc <- err }()
	go func() { _, err := io.Copy(c, be); closeWrite(c); errc <- err }()
	<-errc
	<-errc
}

// serveLocal serves HTTP on c with h, a backend's handler in this
// process (a wasm HTTP pod), instead of relaying to the backend's port:
// the handler sees the client's address as RemoteAddr, which wasmrt
// passes to the guest in X-Forwarded-For. It returns when the connection
// ends or the proxy closes. Once backend is gone from the registry (the
// pod stopped), the next request on a kept-alive connection closes it
// unanswered, as the pod's own server closing it would, and the client
// reconnects.
func (p *proxy) serveLocal(c net.Conn, backend netip.AddrPort, h http.Handler) {
	ln := &oneConnListener{ch: make(chan net.Conn, 1), addr: c.LocalAddr(), closed: make(chan struct{})}
	ln.ch <- c
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p.localHTTP.LocalHTTPHandler(backend) == nil {
				if hj, ok := w.(http.Hijacker); ok {
					if conn, _, err := hj.Hijack(); err == nil {
						_ = conn.Close()
						return
					}
				}
			}
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				_ = ln.Close()
			}
		},
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-p.done:
			_ = srv.Close()
		case <-stop:
		}
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		p.log.Debug("serve local backend", "err", err)
	}
}

// oneConnListener hands out one connection, then blocks in Accept until
// closed.
type oneConnListener struct {
	ch     chan net.Conn
	addr   net.Addr
	once   sync.Once
	closed chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.addr }

// remoteAddr is the client's address; invalid (matched by no ipBlock) if
// the connection cannot tell.
func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// serveUDP keeps one session per client address: a connected socket to
// the backend chosen for that client (among those it is admitted to),
// whose replies are sent back from the listener's socket. Idle sessions
// end after udpIdle. Datagrams of a client admitted to no backend are
// dropped.
func (p *proxy) serveUDP(pc *net.UDPConn) {
	var mu sync.Mutex
	sessions := map[netip.AddrPort]*net.UDPConn{}
	var wg sync.WaitGroup
	defer func() {
		mu.Lock()
		for _, s := range sessions {
			_ = s.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("read", "err", err)
			}
			return
		}
		mu.Lock()
		s := sessions[from]
		if s == nil && len(sessions) < maxSessions {
			bs, reason := p.admitted(from.Addr().Unmap())
			if len(bs) == 0 && reason != "" {
				p.refuse(from.Addr().Unmap(), reason)
			}
			if b, ok := pick(bs, nil); ok {
				if c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(b)); err == nil {
					s = c
					sessions[from] = c
					wg.Go(func() {
						defer func() {
							mu.Lock()
							delete(sessions, from)
							mu.Unlock()
							_ = c.Close()
						}()
						rb := make([]byte, 64<<10)
						for {
							_ = c.SetReadDeadline(time.Now().Add(udpIdle))
							m, err := c.Read(rb)
							if err != nil {
								return
							}
							_, _ = pc.WriteToUDPAddrPort(rb[:m], from)
						}
					})
				}
			}
		}
		mu.Unlock()
		if s != nil {
			_, _ = s.Write(buf[:n])
		}
	}
}

// listeners keeps the set of running proxies equal to the desired one.
type listeners struct {
	log       *slog.Logger
	running   map[string]*proxy
	localHTTP LocalHTTP
	// admit is every proxy's NetworkPolicy check (listenerAdmit); nil
	// admits everything.
	admit admitFunc
}

func (ls *listeners) sync(want []Listener) {
	seen := map[string]bool{}
	for _, l := range want {
		k := listenerKey(l)
		if seen[k] {
			continue // two services on one port: the first wins
		}
		seen[k] = true
		if p, ok := ls.running[k]; ok {
			p.set(l)
			continue
		}
		p, err := startProxy(l, ls.log, ls.localHTTP, ls.admit)
		if err != nil {
			ls.log.Warn("cannot listen for service", "err", err)
			continue
		}
		ls.running[k] = p
		ls.log.Info("listening for service", "listener", k, "service", l.Service)
	}
	for k, p := range ls.running {
		if !seen[k] {
			p.close()
			delete(ls.running, k)
		}
	}
}

func (ls *listeners) closeAll() { ls.sync(nil) }
