package servicelb

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// proxy is the agent's listener for one node port (or LoadBalancer port):
// it accepts outside connections (TCP) or datagrams (UDP) and relays them
// to a backend. The socket LB cannot do this: its hooks see only
// connections that processes of this node originate.
type proxy struct {
	key      string
	backends atomic.Pointer[[]netip.AddrPort]
	closer   io.Closer
	log      *slog.Logger
	wg       sync.WaitGroup
	done     chan struct{}
}

const (
	dialTimeout = 2 * time.Second
	udpIdle     = 30 * time.Second
	maxSessions = 4096
)

func listenerKey(l Listener) string { return l.Protocol + " " + l.Addr.String() }

func startProxy(l Listener, log *slog.Logger) (*proxy, error) {
	p := &proxy{key: listenerKey(l), log: log.With("listener", listenerKey(l), "service", l.Service), done: make(chan struct{})}
	p.setBackends(l.Backends)
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

func (p *proxy) setBackends(b []netip.AddrPort) {
	cp := append([]netip.AddrPort(nil), b...)
	p.backends.Store(&cp)
}

func (p *proxy) close() {
	close(p.done)
	_ = p.closer.Close()
	p.wg.Wait()
}

// pick chooses a random backend, avoiding ones that already failed.
func (p *proxy) pick(failed map[netip.AddrPort]bool) (netip.AddrPort, bool) {
	bs := *p.backends.Load()
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

// relayTCP dials a backend (up to 3 tries on different backends) and
// copies both ways until either side closes. With no backend the client
// connection is closed at once rather than left hanging.
func (p *proxy) relayTCP(c net.Conn) {
	defer c.Close()
	failed := map[netip.AddrPort]bool{}
	var be net.Conn
	for try := 0; try < 3 && be == nil; try++ {
		b, ok := p.pick(failed)
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

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// serveUDP keeps one session per client address: a connected socket to
// the backend chosen for that client, whose replies are sent back from
// the listener's socket. Idle sessions end after udpIdle.
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
			if b, ok := p.pick(nil); ok {
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
	log     *slog.Logger
	running map[string]*proxy
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
			p.setBackends(l.Backends)
			continue
		}
		p, err := startProxy(l, ls.log)
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
