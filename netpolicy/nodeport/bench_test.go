package nodeport_test

import (
	"bufio"
	"net"
	"net/netip"
	"testing"

	"github.com/flotilla-edge/flotilla/netpolicy/nodeport"
)

// BenchmarkNodePort compares, in one run, a client outside the node
// talking to a backend directly and through a Local node port translated
// at TC: request/response round trips on one kept-alive connection (the
// per-packet cost) and a new connection per request (placement and
// conntrack entries too).
func BenchmarkNodePort(b *testing.B) {
	e := newEnv(b)
	e.backends(b, 8080)
	n := e.open(b)
	be := netip.AddrPortFrom(e.node, 8080)
	np := netip.AddrPortFrom(e.node, 30090)
	if err := n.Upsert(nodeport.Entry{Addr: np, Protocol: "TCP", Backends: []netip.AddrPort{be}}); err != nil {
		b.Fatal(err)
	}
	for _, path := range []struct {
		name string
		to   netip.AddrPort
	}{{"direct", be}, {"tc", np}} {
		b.Run("keepalive/"+path.name, func(b *testing.B) {
			c, err := e.dial("tcp4", path.to)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			for b.Loop() {
				if _, err := c.ask(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("connect/"+path.name, func(b *testing.B) {
			// One thread in the client namespace dials them all.
			err := in(e.clientNS, func() error {
				b.ResetTimer()
				for range b.N {
					c, err := net.Dial("tcp4", path.to.String())
					if err != nil {
						return err
					}
					_, err = (&conn{Conn: c, r: bufio.NewReader(c)}).ask()
					c.Close()
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
