package policy

import (
	"net/netip"
	"slices"
)

// PrefixVerdict is one entry of a longest-prefix-match table: clients in
// Prefix are admitted (Allow) or refused, unless a longer entry of the
// same table contains them.
type PrefixVerdict struct {
	Prefix netip.Prefix
	Allow  bool
}

// IngressPrefixes compiles, for one pod endpoint dst (node address + host
// port) and protocol, which IPv4 client addresses the ingress rules of its
// pod admit, as a longest-prefix-match table for a datapath that knows
// the client by address only (an eBPF LPM trie in front of a node port).
//
// isolated is false when every client is admitted: dst is not a pod
// endpoint of the snapshot, or no policy isolates its pod's ingress; the
// table is then empty. When isolated, the table holds 0.0.0.0/0, and the
// verdict for any IPv4 address a — the Allow of the longest entry
// containing a — equals AllowedDirect(FromIP(a), dst, proto).Allowed.
//
// Only ipBlock peers and rules without peers can admit an address, as in
// AllowedDirect with FromIP: pod and namespace selectors never match a
// client known by address only. IPv6 blocks and exceptions are left out:
// they never contain an IPv4 address, so the table is exact for IPv4
// clients and says nothing about IPv6 ones.
//
// The table is exact, not approximate: the candidates are 0.0.0.0/0 and
// every IPv4 cidr and except of the rules whose ports match dst; the
// prefixes containing one address form a chain, so "block contains a"
// equals "block contains the longest candidate containing a", and every
// address has the verdict of its longest candidate. An entry whose verdict
// equals its nearest enclosing candidate's is dropped (lookups then fall
// through to an ancestor with the same verdict); 0.0.0.0/0 is always kept.
// Entries are sorted by address, then by prefix length.
func (e *Engine) IngressPrefixes(dst netip.AddrPort, proto string) (isolated bool, entries []PrefixVerdict) {
	t := e.target(netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()), normProto(proto))
	if t.pod == nil {
		return false, nil
	}
	pols := e.selecting(t.pod, false)
	if len(pols) == 0 {
		return false, nil
	}
	var rules []rule
	for _, c := range pols {
		for _, r := range c.inRules {
			if portsMatch(r.ports, t) {
				rules = append(rules, r)
			}
		}
	}
	all := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	cands := []netip.Prefix{all}
	for _, r := range rules {
		for _, p := range r.peers {
			if p.matchesNothing || p.block == nil || !p.block.Addr().Is4() {
				continue
			}
			cands = append(cands, *p.block)
			for _, x := range p.except {
				if x.Addr().Is4() {
					cands = append(cands, x)
				}
			}
		}
	}
	// By address, then length: an enclosing prefix comes before the
	// prefixes inside it, and prefixes either nest or are disjoint, so a
	// stack of the open ones yields each one's nearest enclosing candidate.
	slices.SortFunc(cands, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	cands = slices.Compact(cands)
	type open struct {
		p     netip.Prefix
		allow bool
	}
	var stack []open
	for _, p := range cands {
		allow := admitsPrefix(rules, p)
		for len(stack) > 0 && !stack[len(stack)-1].p.Contains(p.Addr()) {
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 || stack[len(stack)-1].allow != allow {
			entries = append(entries, PrefixVerdict{Prefix: p, Allow: allow})
		}
		stack = append(stack, open{p, allow})
	}
	return true, entries
}

// admitsPrefix is the verdict the rules give every address of p that lies
// in no longer candidate: some rule without peers, or with an IPv4 ipBlock
// peer whose block contains p and none of whose exceptions does.
func admitsPrefix(rules []rule, p netip.Prefix) bool {
	for _, r := range rules {
		if r.peers == nil {
			return true
		}
		for _, pe := range r.peers {
			if pe.matchesNothing || pe.block == nil || !covers(*pe.block, p) {
				continue
			}
			excepted := false
			for _, x := range pe.except {
				if covers(x, p) {
					excepted = true
					break
				}
			}
			if !excepted {
				return true
			}
		}
	}
	return false
}

// covers reports whether outer contains every address of inner.
func covers(outer, inner netip.Prefix) bool {
	return outer.Addr().Is4() == inner.Addr().Is4() && outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}
