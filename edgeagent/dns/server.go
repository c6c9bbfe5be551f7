package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// DefaultAddr is where the agent serves cluster DNS unless configured.
// 127.0.0.53 and 127.0.0.54 belong to systemd-resolved (stub and proxy
// stub), common on board images, so Flotilla takes 127.0.0.153: on the
// loopback /8, so no address needs configuring, and port 53 because
// resolv.conf cannot name another port. Binding port 53 needs root or
// CAP_NET_BIND_SERVICE, which the agent has for eBPF anyway.
const DefaultAddr = "127.0.0.153:53"

// DefaultDomain is the cluster domain.
const DefaultDomain = "cluster.local"

// DefaultTTL is short because endpoints move when pods do; clients re-ask
// often and the server answers from memory.
const DefaultTTL = 5 * time.Second

// Config configures Start.
type Config struct {
	// Addr is "ip:port" for both UDP and TCP; default DefaultAddr. Port 0
	// picks a free port (the same for UDP and TCP).
	Addr string
	// Domain is the cluster domain; default DefaultDomain.
	Domain string
	// TTL of every answer; default DefaultTTL.
	TTL time.Duration
	// View supplies the services. Required.
	View View
	Log  *slog.Logger
}

// Server is a running DNS server.
type Server struct {
	zone zone
	log  *slog.Logger
	udp  net.PacketConn
	tcp  net.Listener
	addr netip.AddrPort

	wg        sync.WaitGroup
	closeOnce sync.Once
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	closed    bool
}

// Limits on what a client can make the server hold.
const (
	maxUDPPayload = 1232 // EDNS payload we offer (DNS flag day 2020)
	tcpIdle       = 10 * time.Second
	maxTCPConns   = 256
)

// Start binds UDP and TCP on cfg.Addr and serves until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.View == nil {
		return nil, errors.New("dns: Config.View is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{
		zone:  zone{domain: strings.Trim(strings.ToLower(cfg.Domain), "."), ttl: uint32(cfg.TTL / time.Second), view: cfg.View},
		log:   cfg.Log.With("component", "dns"),
		conns: map[net.Conn]struct{}{},
	}
	if err := s.bind(cfg.Addr); err != nil {
		return nil, err
	}
	s.wg.Go(s.serveUDP)
	s.wg.Go(s.serveTCP)
	s.log.Info("cluster DNS serving", "addr", s.addr.String(), "domain", s.zone.domain)
	return s, nil
}

// bind opens the UDP socket first; with port 0 it then takes the same port
// for TCP, retrying a few times if another process got there in between.
func (s *Server) bind(addr string) error {
	for attempt := 0; ; attempt++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("dns: listen udp %s: %w", addr, err)
		}
		ua := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		tcp, err := net.Listen("tcp", ua.String())
		if err != nil {
			_ = udp.Close()
			if _, p, _ := net.SplitHostPort(addr); p == "0" && attempt < 5 {
				continue
			}
			return fmt.Errorf("dns: listen tcp %s: %w", ua, err)
		}
		s.udp, s.tcp, s.addr = udp, tcp, netip.AddrPortFrom(ua.Addr().Unmap(), ua.Port())
		return nil
	}
}

// Addr is the address the server listens on.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Close stops serving and waits for in-flight queries.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		_ = s.udp.Close()
		_ = s.tcp.Close()
	})
	s.wg.Wait()
	return nil
}

// handle decodes one query and encodes the answer. Over UDP the answer is
// bounded by 512 bytes or the client's EDNS payload size; nil means no
// answer at all.
func (s *Server) handle(req []byte, udp bool) []byte {
	q, err := Decode(req)
	if err != nil {
		if len(req) < headerLen {
			return nil // not even an ID to answer to
		}
		r := &Message{ID: binary.BigEndian.Uint16(req), Response: true, RCode: RCodeFormErr}
		b, _ := r.Encode()
		return b
	}
	r := s.zone.answer(q)
	limit := 0xffff
	if udp {
		limit = 512
	}
	if opt := findOPT(q); opt != nil {
		// Answer EDNS with EDNS (RFC 6891 7), offering our payload size.
		r.Additional = append(r.Additional, RR{Name: "", Type: TypeOPT, Class: maxUDPPayload})
		if udp {
			limit = min(max(int(opt.Class), 512), maxUDPPayload)
		}
	}
	b, err := r.Encode()
	if err != nil {
		s.log.Warn("encode dns answer", "name", q.Questions, "err", err)
		fail := &Message{ID: q.ID, Response: true, Opcode: q.Opcode, RCode: RCodeServFail, Questions: q.Questions}
		b, _ = fail.Encode()
		return b
	}
	if len(b) > limit {
		// Too big for this transport: say so and let the client retry on
		// TCP (RFC 1035 4.2.1, RFC 7766).
		tr := &Message{ID: q.ID, Response: true, Opcode: q.Opcode, Authoritative: true, Truncated: true,
			RecursionDesired: q.RecursionDesired, RCode: r.RCode, Questions: q.Questions}
		if opt := findOPT(r); opt != nil {
			tr.Additional = []RR{*opt}
		}
		b, _ = tr.Encode()
	}
	return b
}

func findOPT(m *Message) *RR {
	for i := range m.Additional {
		if m.Additional[i].Type == TypeOPT {
			return &m.Additional[i]
		}
	}
	return nil
}

func (s *Server) serveUDP() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("dns udp read", "err", err)
			continue
		}
		// Answering inline is enough: every answer comes from memory.
		if out := s.handle(buf[:n], true); out != nil {
			if _, err := s.udp.WriteTo(out, from); err != nil {
				s.log.Debug("dns udp write", "to", from.String(), "err", err)
			}
		}
	}
}

func (s *Server) serveTCP() {
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("dns tcp accept", "err", err)
			time.Sleep(50 * time.Millisecond) // e.g. EMFILE; do not spin
			continue
		}
		s.mu.Lock()
		if s.closed || len(s.conns) >= maxTCPConns {
			s.mu.Unlock()
			_ = c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.serveConn(c)
		})
	}
}

// serveConn answers length-prefixed queries (RFC 1035 4.2.2) until the
// client closes or idles out; several queries may share a connection
// (RFC 7766).
func (s *Server) serveConn(c net.Conn) {
	var lenBuf [2]byte
	buf := make([]byte, 0xffff)
	for {
		_ = c.SetDeadline(time.Now().Add(tcpIdle))
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		out := s.handle(buf[:n], false)
		if out == nil {
			return
		}
		msg := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(out)), uint16(len(out)))
		if _, err := c.Write(append(msg, out...)); err != nil {
			return
		}
	}
}

// Serve is Start plus a Close when ctx ends, for callers that tie the
// server's life to a context.
func Serve(ctx context.Context, cfg Config) (*Server, error) {
	s, err := Start(cfg)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { _ = s.Close() })
	return s, nil
}
