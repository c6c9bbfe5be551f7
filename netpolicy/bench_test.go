package netpolicy_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/flotilla-edge/flotilla/netpolicy"
	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
	"github.com/flotilla-edge/flotilla/netpolicy/userspace"
)

// BenchmarkServicePath compares a tiny TCP request/response sent directly
// to a backend, via the eBPF VIP and via the userspace proxy VIP, all inside
// one test namespace, with a new connection per request and with one
// keep-alive connection; then the eBPF path with 1, 100 and 5,000 services
// installed. The client is a separate process in the LB's cgroup; the
// reported req/s and latencies are measured in the client.
func BenchmarkServicePath(b *testing.B) {
	e := newEnv(b)
	backend := netip.MustParseAddrPort("127.0.0.21:9000")
	e.startBackends(b, backend)

	eb, err := ebpflb.New(ebpflb.Config{CgroupPath: e.cgroup, PinDir: e.pinDir})
	if err != nil {
		b.Fatal(err)
	}
	defer eb.Close()
	us, err := userspace.New(userspace.Config{NetNS: e.ns})
	if err != nil {
		b.Fatal(err)
	}
	defer us.Close()
	ebpfVIP := netip.MustParseAddr("10.96.0.10")
	userVIP := netip.MustParseAddr("10.96.1.10")
	one := []netip.AddrPort{backend}
	upsert(b, eb, netpolicy.Service{VIP: ebpfVIP, Port: 80, Backends: one})
	upsert(b, us, netpolicy.Service{VIP: userVIP, Port: 80, Backends: one})
	cl := e.startClient(b)

	targets := []struct{ name, addr string }{
		{"direct", backend.String()},
		{"ebpf", ap(ebpfVIP, 80)},
		{"userspace", ap(userVIP, 80)},
	}
	// Kernel-side cost of the connect4 hook itself, per run.
	if st, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err == nil {
		defer st.Close()
	}
	measure := func(b *testing.B, addr string, keepAlive bool) {
		before, _ := eb.ProgramStats()
		b.ResetTimer()
		r := cl.do(b, helperReq{Op: "bench", Addr: addr, N: b.N, KeepAlive: keepAlive})
		b.StopTimer()
		if after, err := eb.ProgramStats(); err == nil && !keepAlive {
			runs := after["connect4"].RunCount - before["connect4"].RunCount
			if runs > 0 {
				ns := (after["connect4"].Runtime - before["connect4"].Runtime).Nanoseconds()
				b.ReportMetric(float64(ns)/float64(runs), "connect4-ns/run")
			}
		}
		el := time.Duration(r.ElapsedNS)
		b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
		b.ReportMetric(float64(r.P50NS)/1e3, "p50-µs")
		b.ReportMetric(float64(r.P99NS)/1e3, "p99-µs")
	}
	for _, ka := range []bool{false, true} {
		kind := "newconn"
		if ka {
			kind = "keepalive"
		}
		for _, tg := range targets {
			b.Run(kind+"/"+tg.name, func(b *testing.B) { measure(b, tg.addr, ka) })
		}
	}

	// The eBPF path with many services: lookups are one hash probe.
	installed := 1
	for _, n := range []int{1, 100, 5000} {
		for ; installed < n; installed++ {
			v := netip.AddrFrom4([4]byte{10, 97, byte(installed >> 8), byte(installed)})
			upsert(b, eb, netpolicy.Service{VIP: v, Port: 80, Backends: []netip.AddrPort{backend, netip.AddrPortFrom(v, 8080)}})
		}
		if got := len(eb.Services()); got != n {
			b.Fatalf("%d services installed, want %d", got, n)
		}
		b.Run(fmt.Sprintf("newconn/ebpf-%dsvc", n), func(b *testing.B) { measure(b, ap(ebpfVIP, 80), false) })
	}
}
