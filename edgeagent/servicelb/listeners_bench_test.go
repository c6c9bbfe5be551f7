package servicelb

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkNodePortListener compares, in one run, a client talking to a
// backend directly and through the agent's node-port listener (the relay
// that Cluster node ports, and Local ones where TC cannot attach, go
// through): round trips on kept-alive connections and a new connection
// per request, each iteration one exchange of each kind, timed apart, on
// loopback.
func BenchmarkNodePortListener(b *testing.B) {
	be, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	go func() {
		for {
			c, err := be.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := io.WriteString(c, "pong\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	backend := netip.MustParseAddrPort(be.Addr().String())
	p, err := startProxy(Listener{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Protocol: "TCP", Backends: []netip.AddrPort{backend}},
		slog.New(slog.DiscardHandler), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.close()
	node := p.closer.(net.Listener).Addr().String()

	ask := func(c net.Conn, r *bufio.Reader) error {
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			return err
		}
		_, err := r.ReadString('\n')
		return err
	}
	report := func(b *testing.B, direct, relayed time.Duration) {
		d := float64(direct.Nanoseconds()) / float64(b.N)
		r := float64(relayed.Nanoseconds()) / float64(b.N)
		b.ReportMetric(d, "direct-ns/op")
		b.ReportMetric(r, "relay-ns/op")
		b.ReportMetric(d/r, "relay/direct-speed")
	}

	b.Run("keepalive", func(b *testing.B) {
		cd, err := net.Dial("tcp4", backend.String())
		if err != nil {
			b.Fatal(err)
		}
		defer cd.Close()
		cr, err := net.Dial("tcp4", node)
		if err != nil {
			b.Fatal(err)
		}
		defer cr.Close()
		rd, rr := bufio.NewReader(cd), bufio.NewReader(cr)
		var direct, relayed time.Duration
		for b.Loop() {
			t0 := time.Now()
			if err := ask(cd, rd); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := ask(cr, rr); err != nil {
				b.Fatal(err)
			}
			direct += t1.Sub(t0)
			relayed += time.Since(t1)
		}
		report(b, direct, relayed)
	})

	b.Run("connect", func(b *testing.B) {
		once := func(addr string) (time.Duration, error) {
			t0 := time.Now()
			c, err := net.Dial("tcp4", addr)
			if err != nil {
				return 0, err
			}
			err = ask(c, bufio.NewReader(c))
			// Reset rather than FIN: TIME_WAIT sockets would use up
			// loopback's ports.
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
			return time.Since(t0), err
		}
		var direct, relayed time.Duration
		for b.Loop() {
			d, err := once(backend.String())
			if err != nil {
				b.Fatal(err)
			}
			r, err := once(node)
			if err != nil {
				b.Fatal(err)
			}
			direct += d
			relayed += r
		}
		report(b, direct, relayed)
	})
}
