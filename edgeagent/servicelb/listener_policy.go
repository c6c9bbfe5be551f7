package servicelb

import (
	"net/netip"

	"github.com/flotilla-edge/flotilla/netpolicy/policy"
)

// admitFunc is the NetworkPolicy check of the node-port listeners: may a
// connection (or UDP session) from client be given to backend? A nil
// admitFunc admits everything.
type admitFunc func(client netip.Addr, backend netip.AddrPort, proto string) policy.Decision

// listenerAdmit returns the listeners' check over src: the ingress rules
// of the backend's pod, with the client's real address as the peer
// (policy.FromIP, so only ipBlock peers and rules without peers can admit
// it; pod and namespace selectors never match an outside client).
//
// Without a policy source (NetworkPolicy off) the result is nil, and
// until src is Synced every client is admitted: node ports answered
// before NetworkPolicy existed on this node, and refusing all outside
// traffic while the view loads would turn an agent restart into an
// outage. (policyview.View.Admit, the userspace cluster-IP proxy's
// check, fails closed instead.)
func listenerAdmit(src PolicySource) admitFunc {
	if src == nil {
		return nil
	}
	return func(client netip.Addr, backend netip.AddrPort, proto string) policy.Decision {
		if !src.Synced() {
			return policy.Decision{Allowed: true}
		}
		return src.Engine().AllowedDirect(policy.FromIP(client.Unmap()), backend, proto)
	}
}
