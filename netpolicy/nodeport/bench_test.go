package nodeport_test

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/netpolicy/nodeport"
)

// BenchmarkNodePort compares a client outside the node talking to a
// backend directly and through a Local node port translated at TC:
// request/response round trips on kept-alive connections (the per-packet
// cost) and a new connection per request (placement and conntrack entries
// too). Each iteration does one direct and one translated exchange, timed
// separately, so drift on a shared machine hits both alike; the metrics
// are the mean of each and their ratio.
func BenchmarkNodePort(b *testing.B) {
	e := newEnv(b)
	e.backends(b, 8080)
	n := e.open(b)
	be := netip.AddrPortFrom(e.node, 8080)
	np := netip.AddrPortFrom(e.node, 30090)
	if err := n.Upsert(nodeport.Entry{Addr: np, Protocol: "TCP", Backends: []netip.AddrPort{be}}); err != nil {
		b.Fatal(err)
	}
	report := func(b *testing.B, direct, tc time.Duration) {
		d := float64(direct.Nanoseconds()) / float64(b.N)
		t := float64(tc.Nanoseconds()) / float64(b.N)
		b.ReportMetric(d, "direct-ns/op")
		b.ReportMetric(t, "tc-ns/op")
		b.ReportMetric(d/t, "tc/direct-speed")
	}

	b.Run("keepalive", func(b *testing.B) {
		cd, err := e.dial("tcp4", be)
		if err != nil {
			b.Fatal(err)
		}
		defer cd.Close()
		ct, err := e.dial("tcp4", np)
		if err != nil {
			b.Fatal(err)
		}
		defer ct.Close()
		var direct, tc time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := cd.ask(); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := ct.ask(); err != nil {
				b.Fatal(err)
			}
			direct += t1.Sub(t0)
			tc += time.Since(t1)
		}
		report(b, direct, tc)
	})

	b.Run("connect", func(b *testing.B) {
		var direct, tc time.Duration
		exchange := func(to netip.AddrPort) (time.Duration, error) {
			t0 := time.Now()
			c, err := net.Dial("tcp4", to.String())
			if err != nil {
				return 0, err
			}
			_, err = (&conn{Conn: c, r: bufio.NewReader(c)}).ask()
			// Reset rather than FIN: thousands of TIME_WAIT sockets
			// would use up the client's ports.
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
			return time.Since(t0), err
		}
		// One thread in the client namespace dials them all.
		err := in(e.clientNS, func() error {
			b.ResetTimer()
			for range b.N {
				d, err := exchange(be)
				if err != nil {
					return err
				}
				t, err := exchange(np)
				if err != nil {
					return err
				}
				direct += d
				tc += t
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		report(b, direct, tc)
	})
}
