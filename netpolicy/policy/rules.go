package policy

import (
	"net/netip"
	"slices"
	"strings"
)

// Entry is a verdict for one destination of one client.
type Entry struct {
	Dst      netip.AddrPort
	Protocol string
	Allow    bool
}

// ClientRules is a client pod's connect-time policy, for a datapath that
// checks (client, destination) pairs after service translation (the eBPF
// socket programs). Destinations are the fleet's pod endpoints: the egress
// rules of the client and the ingress rules of each destination pod are
// both folded in, so the datapath needs no notion of ingress.
//
// When EgressIsolated, a destination without an Allow entry is denied;
// otherwise only the Deny entries (pods whose ingress rules do not admit
// this client) are denied and everything else passes.
//
// Not representable: egress ipBlock rules to addresses outside the fleet
// (they are ranges, not endpoints). An isolated client is denied those
// unless the datapath handles CIDRs itself (see docs/networking.md).
type ClientRules struct {
	EgressIsolated bool
	Entries        []Entry
}

// Empty reports whether the rules restrict nothing: the datapath can drop
// the client.
func (r ClientRules) Empty() bool { return !r.EgressIsolated && len(r.Entries) == 0 }

// ClientRules compiles the connect-time rules of pod src against every pod
// endpoint of the snapshot.
func (e *Engine) ClientRules(src PodRef) ClientRules {
	out := ClientRules{EgressIsolated: e.EgressIsolated(src)}
	for k := range e.endpoints {
		d := e.AllowedDirect(Source{Pod: &src}, k.addr, k.proto)
		if d.Allowed == out.EgressIsolated {
			// Isolated: list what is allowed; open: list what is denied.
			out.Entries = append(out.Entries, Entry{Dst: k.addr, Protocol: k.proto, Allow: d.Allowed})
		}
	}
	slices.SortFunc(out.Entries, func(a, b Entry) int {
		if c := a.Dst.Compare(b.Dst); c != 0 {
			return c
		}
		return strings.Compare(a.Protocol, b.Protocol)
	})
	return out
}

// PodsSelected lists the pods of the snapshot any policy isolates (for
// ingress or egress), sorted; a datapath uses it to tell which pods need
// rules at all.
func (e *Engine) PodsSelected() []PodRef {
	var out []PodRef
	for r := range e.pods {
		if e.EgressIsolated(r) || e.IngressIsolated(r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b PodRef) int { return strings.Compare(a.String(), b.String()) })
	return out
}
