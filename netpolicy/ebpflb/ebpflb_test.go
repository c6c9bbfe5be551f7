package ebpflb

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/netpolicy/internal/bpfenc"
)

// The BPF side stores addresses and ports as __be32/__be16: the bytes in
// memory are in network order whatever the CPU's byte order.
func TestNetworkOrderInMemory(t *testing.T) {
	a := netip.MustParseAddr("10.96.0.1")
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], bpfenc.Addr4(a))
	if b != [4]byte{10, 96, 0, 1} {
		t.Fatalf("be32 bytes %v", b)
	}
	if bpfenc.AddrOf(bpfenc.Addr4(a)) != a {
		t.Fatal("addr round trip")
	}
	var p [2]byte
	binary.NativeEndian.PutUint16(p[:], bpfenc.Port(8080))
	if p != [2]byte{0x1f, 0x90} || bpfenc.PortOf(bpfenc.Port(8080)) != 8080 {
		t.Fatalf("be16 bytes %v", p)
	}
}

func TestAffinitySeconds(t *testing.T) {
	for d, want := range map[time.Duration]uint32{0: 0, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, 3 * time.Hour: 10800} {
		if got := affinitySeconds(d); got != want {
			t.Errorf("affinitySeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

// Every program in sock_lb.c is attached (as link_<name>) with the attach
// type its section declares, the v6 hooks included.
func TestHooksMatchObject(t *testing.T) {
	spec, err := loadSockLB()
	if err != nil {
		t.Fatal(err)
	}
	hs := hooks(&sockLBObjects{})
	if len(hs) != len(spec.Programs) {
		t.Errorf("%d hooks for %d programs in the object", len(hs), len(spec.Programs))
	}
	for _, h := range hs {
		p := spec.Programs["flotilla_"+h.name]
		if p == nil {
			t.Errorf("hook %s: no program flotilla_%s", h.name, h.name)
			continue
		}
		if p.AttachType != h.attach {
			t.Errorf("hook %s: attached as %v, section %q says %v", h.name, h.attach, p.SectionName, p.AttachType)
		}
	}
}
