package policy_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/netpolicy/policy"
)

// fromBlocks is an ingress rule admitting ipBlocks: "cidr" or
// "cidr except x y ...".
func fromBlocks(blocks ...[]string) api.NetworkPolicyIngressRule {
	var r api.NetworkPolicyIngressRule
	for _, b := range blocks {
		r.From = append(r.From, api.NetworkPolicyPeer{IPBlock: &api.IPBlock{CIDR: b[0], Except: b[1:]}})
	}
	return r
}

func pv(prefix string, allow bool) policy.PrefixVerdict {
	return policy.PrefixVerdict{Prefix: netip.MustParsePrefix(prefix), Allow: allow}
}

func TestIngressPrefixes(t *testing.T) {
	beSel := sel("app", "backend")
	tests := []struct {
		name     string
		pols     []*api.NetworkPolicy
		dst      netip.AddrPort
		proto    string
		isolated bool
		want     []policy.PrefixVerdict
	}{
		{"no policy", nil, beHTTP, "TCP", false, nil},
		{"not a pod endpoint", []*api.NetworkPolicy{denyAllIngress}, external, "TCP", false, nil},
		{"policy selecting other pods", []*api.NetworkPolicy{pol("db-only", "default", sel("app", "db"), nil)}, beHTTP, "TCP", false, nil},
		{"egress-only policy", []*api.NetworkPolicy{denyAllEgress}, beHTTP, "TCP", false, nil},
		{"deny-all", []*api.NetworkPolicy{denyAllIngress}, beHTTP, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", false)}},
		{"allow all sources", []*api.NetworkPolicy{pol("be-open", "default", beSel, in(api.NetworkPolicyIngressRule{}))},
			beHTTP, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", true)}},
		{"pod peers admit no address", []*api.NetworkPolicy{pol("be-from-fe", "default", beSel, in(api.NetworkPolicyIngressRule{
			From: []api.NetworkPolicyPeer{{PodSelector: sel("app", "frontend")}}}))},
			beHTTP, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", false)}},
		{"ipBlock with except", []*api.NetworkPolicy{pol("be-lan", "default", beSel, in(fromBlocks([]string{"192.168.0.0/16", "192.168.1.0/24", "192.168.2.128/25"})))},
			beHTTP, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", false), pv("192.168.0.0/16", true), pv("192.168.1.0/24", false), pv("192.168.2.128/25", false)}},
		{"except covered by another rule's block", []*api.NetworkPolicy{pol("be-lan", "default", beSel, in(
			fromBlocks([]string{"10.0.0.0/8", "10.1.0.0/16"}),
			fromBlocks([]string{"10.1.0.0/16", "10.1.2.0/24"})))},
			// 10.1.0.0/16 is admitted by the second rule, so only its /24
			// hole stays; the /16 entry would repeat the /8's verdict.
			beHTTP, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", false), pv("10.0.0.0/8", true), pv("10.1.2.0/24", false)}},
		{"two policies: union", []*api.NetworkPolicy{
			pol("be-a", "default", beSel, in(fromBlocks([]string{"172.16.0.0/12", "172.16.5.0/24"}))),
			pol("be-b", "default", beSel, in(fromBlocks([]string{"172.16.5.7/32"})))},
			beHTTP, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", false), pv("172.16.0.0/12", true), pv("172.16.5.0/24", false), pv("172.16.5.7/32", true)}},
		{"port not matching: rule ignored, still isolated", []*api.NetworkPolicy{pol("be-metrics", "default", beSel, in(api.NetworkPolicyIngressRule{
			From: fromBlocks([]string{"192.168.0.0/16"}).From, Ports: []api.NetworkPolicyPort{port(api.FromString("metrics"))}}))},
			beHTTP, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", false)}},
		{"port matching", []*api.NetworkPolicy{pol("be-metrics", "default", beSel, in(api.NetworkPolicyIngressRule{
			From: fromBlocks([]string{"192.168.0.0/16"}).From, Ports: []api.NetworkPolicyPort{port(api.FromString("metrics"))}}))},
			beMetr, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", false), pv("192.168.0.0/16", true)}},
		{"no endpoint for the protocol", []*api.NetworkPolicy{pol("be-open", "default", beSel, in(api.NetworkPolicyIngressRule{}))},
			beHTTP, "UDP", false, nil},
		{"IPv6 blocks ignored", []*api.NetworkPolicy{pol("be-v6", "default", beSel, in(fromBlocks([]string{"::/0"}), fromBlocks([]string{"10.0.0.0/8", "fd00::/8"})))},
			beHTTP, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", false), pv("10.0.0.0/8", true)}},
		{"unparsable cidr admits nothing", []*api.NetworkPolicy{pol("be-bad", "default", beSel, in(fromBlocks([]string{"10.0.0.0/33"})))},
			beHTTP, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", false)}},
		{"0.0.0.0/0 except the LAN", []*api.NetworkPolicy{pol("be-wan", "default", beSel, in(fromBlocks([]string{"0.0.0.0/0", "192.168.0.0/16"})))},
			beHTTP, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", true), pv("192.168.0.0/16", false)}},
		{"duplicates collapse", []*api.NetworkPolicy{pol("be-dup", "default", beSel, in(fromBlocks([]string{"10.0.0.0/8"}, []string{"10.0.0.0/8"})))},
			beHTTP, "TCP", true, []policy.PrefixVerdict{pv("0.0.0.0/0", false), pv("10.0.0.0/8", true)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fleet(tt.pols...)
			isolated, got := e.IngressPrefixes(tt.dst, tt.proto)
			if isolated != tt.isolated || !slices.Equal(got, tt.want) {
				t.Fatalf("IngressPrefixes = %v %v, want %v %v", isolated, got, tt.isolated, tt.want)
			}
			checkPrefixTable(t, e, tt.dst, tt.proto, isolated, got, probes(tt.pols, nil, rand.New(rand.NewPCG(1, 2))))
		})
	}
}

// TestIngressPrefixesMatchAllowedDirect: for random policies over a small
// address space (so prefixes nest and overlap often), the LPM lookup of
// the table agrees with AllowedDirect for every boundary of every prefix
// the policies name (± 1) and for random addresses.
func TestIngressPrefixesMatchAllowedDirect(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 11))
	// randPrefix: inside 10.0.0.0/8 mostly, sometimes anywhere.
	randPrefix := func() string {
		bits := 8 + rnd.IntN(25)
		a := uint32(10)<<24 | rnd.Uint32()&0x00ffffff
		if rnd.IntN(8) == 0 {
			bits = rnd.IntN(33)
			a = rnd.Uint32()
		}
		return netip.PrefixFrom(u32Addr(a), bits).Masked().String()
	}
	for i := range 300 {
		var pols []*api.NetworkPolicy
		for j := range 1 + rnd.IntN(3) {
			var rules []api.NetworkPolicyIngressRule
			for range rnd.IntN(4) {
				var r api.NetworkPolicyIngressRule
				switch rnd.IntN(10) {
				case 0: // no peers: any client
				case 1:
					r.From = []api.NetworkPolicyPeer{{PodSelector: sel("app", "frontend")}}
				default:
					for range 1 + rnd.IntN(3) {
						b := []string{randPrefix()}
						for range rnd.IntN(4) {
							// Mostly inside the block, as the API requires.
							x := randPrefix()
							if rnd.IntN(4) > 0 {
								blk := netip.MustParsePrefix(b[0])
								bits := blk.Bits() + rnd.IntN(33-blk.Bits())
								a := blk.Addr().As4()
								v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
								v |= rnd.Uint32() >> blk.Bits()
								x = netip.PrefixFrom(u32Addr(v), bits).Masked().String()
							}
							b = append(b, x)
						}
						r.From = append(r.From, fromBlocks(b).From...)
					}
				}
				if rnd.IntN(4) == 0 {
					r.Ports = []api.NetworkPolicyPort{port(api.FromInt(8080))}
				}
				if rnd.IntN(8) == 0 {
					r.Ports = []api.NetworkPolicyPort{port(api.FromString("metrics"))}
				}
				rules = append(rules, r)
			}
			pols = append(pols, pol(fmt.Sprintf("p%d", j), "default", sel("app", "backend"), in(rules...)))
		}
		e := fleet(pols...)
		for _, dst := range []netip.AddrPort{beHTTP, beMetr} {
			isolated, table := e.IngressPrefixes(dst, "TCP")
			if !isolated {
				t.Fatalf("case %d: a policy selecting the pod does not isolate it", i)
			}
			if !t.Run(fmt.Sprintf("case%d/%v", i, dst), func(t *testing.T) {
				checkPrefixTable(t, e, dst, "TCP", isolated, table, probes(pols, table, rnd))
			}) {
				for _, p := range pols {
					t.Logf("policy %s: %+v", p.Name, p.Spec.Ingress)
				}
				t.FailNow()
			}
		}
	}
}

// checkPrefixTable compares the table's LPM verdict with AllowedDirect
// for every probe address, and checks its shape.
func checkPrefixTable(t *testing.T, e *policy.Engine, dst netip.AddrPort, proto string, isolated bool, table []policy.PrefixVerdict, addrs []netip.Addr) {
	t.Helper()
	if !isolated {
		if len(table) != 0 {
			t.Fatalf("not isolated, yet entries %v", table)
		}
		for _, a := range addrs {
			if d := e.AllowedDirect(policy.FromIP(a), dst, proto); !d.Allowed {
				t.Fatalf("not isolated, yet %v is denied: %s", a, d.Reason)
			}
		}
		return
	}
	if len(table) == 0 || table[0].Prefix != netip.MustParsePrefix("0.0.0.0/0") {
		t.Fatalf("table without 0.0.0.0/0 first: %v", table)
	}
	seen := map[netip.Prefix]bool{}
	for _, en := range table {
		if seen[en.Prefix] || !en.Prefix.Addr().Is4() || en.Prefix != en.Prefix.Masked() {
			t.Fatalf("bad entry %v in %v", en.Prefix, table)
		}
		seen[en.Prefix] = true
	}
	for _, a := range addrs {
		want := e.AllowedDirect(policy.FromIP(a), dst, proto).Allowed
		if got := lookup(table, a); got != want {
			t.Fatalf("%v: table says %v, AllowedDirect %v; table %v", a, got, want, table)
		}
	}
}

// lookup is a longest-prefix match.
func lookup(table []policy.PrefixVerdict, a netip.Addr) bool {
	best, allow := -1, false
	for _, en := range table {
		if en.Prefix.Contains(a) && en.Prefix.Bits() > best {
			best, allow = en.Prefix.Bits(), en.Allow
		}
	}
	return allow
}

// probes are the addresses to check: the first and last address of every
// IPv4 prefix the policies or the table name, one beyond each end, and
// random ones.
func probes(pols []*api.NetworkPolicy, table []policy.PrefixVerdict, rnd *rand.Rand) []netip.Addr {
	var pfx []netip.Prefix
	for _, p := range pols {
		for _, r := range p.Spec.Ingress {
			for _, pe := range r.From {
				if pe.IPBlock == nil {
					continue
				}
				for _, s := range append([]string{pe.IPBlock.CIDR}, pe.IPBlock.Except...) {
					if x, err := netip.ParsePrefix(s); err == nil && x.Addr().Is4() {
						pfx = append(pfx, x.Masked())
					}
				}
			}
		}
	}
	for _, en := range table {
		pfx = append(pfx, en.Prefix)
	}
	var out []netip.Addr
	for _, p := range pfx {
		a := p.Addr().As4()
		first := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		last := first | ^uint32(0)>>p.Bits()
		inside := first | rnd.Uint32()>>p.Bits() // >>32 is 0: first
		out = append(out, u32Addr(first), u32Addr(last), u32Addr(first-1), u32Addr(last+1), u32Addr(inside))
	}
	for range 200 {
		out = append(out, u32Addr(rnd.Uint32()), u32Addr(10<<24|rnd.Uint32()&0x00ffffff))
	}
	return append(out, netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"))
}

func u32Addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
