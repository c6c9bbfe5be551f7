package servicelb

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/flotilla-edge/flotilla/netpolicy/nodeport"
	"github.com/flotilla-edge/flotilla/netpolicy/policy"
)

// nodePorts keeps the TC node-port translation (package nodeport) equal
// to the listeners of externalTrafficPolicy Local services that have
// backends on this node, and each of those backends' admitted client
// addresses equal to the NetworkPolicy snapshot. Everything else arriving
// on a node port reaches the listener.
type nodePorts struct {
	nat      *nodeport.NAT
	applied  map[string]nodeport.Entry // "addr/proto"
	admitted map[nodeport.Backend][]nodeport.Prefix
	log      *slog.Logger
}

// startNodePorts attaches the translation to the interface holding the
// node's address. It returns the reason to show on the node either way.
func startNodePorts(cfg Config, log *slog.Logger) (*nodePorts, string) {
	const relayed = "node ports of Local services are relayed by the agent (wasm HTTP pods still see the client's address, containers the agent's)"
	addr, err := netip.ParseAddr(cfg.NodeAddress)
	if err != nil {
		return nil, fmt.Sprintf("%s: node address %q: %v", relayed, cfg.NodeAddress, err)
	}
	ifc, err := nodeport.InterfaceOf(addr)
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", relayed, err)
	}
	nat, err := nodeport.New(nodeport.Config{PinDir: cfg.PinDir, Interfaces: []string{ifc}})
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", relayed, err)
	}
	n := &nodePorts{nat: nat, applied: map[string]nodeport.Entry{}, admitted: nat.Admission(), log: log}
	// An earlier agent's entries are known, so stale ones go on the
	// first sync.
	if es, err := nat.Entries(); err == nil {
		for _, e := range es {
			n.applied[entryKey(e.Addr, e.Protocol)] = e
		}
	}
	return n, "node ports of Local services are translated at TC (" + nat.Mode() + ") on " + ifc + " (backends see the client's address)"
}

func entryKey(a netip.AddrPort, proto string) string { return a.String() + "/" + proto }

// sync programs want. eng is the policy snapshot; with policyOn and a nil
// eng (not synced yet) admissions are left as they are, without
// policyOn every backend admits everyone.
func (n *nodePorts) sync(ls []Listener, policyOn bool, eng *policy.Engine) {
	want := map[string]nodeport.Entry{}
	backends := map[nodeport.Backend]bool{}
	for _, l := range ls {
		if !l.Local || len(l.Backends) == 0 || !l.Addr.Addr().Is4() {
			continue
		}
		k := entryKey(l.Addr, l.Protocol)
		if _, dup := want[k]; dup {
			continue // as for listeners: the first service wins
		}
		bes := l.Backends
		if len(bes) > nodeport.MaxBackends {
			if old, ok := n.applied[k]; !ok || len(old.Backends) < nodeport.MaxBackends {
				n.log.Warn("more local backends than the node-port translation holds; using the first ones",
					"service", l.Service, "backends", len(bes), "max", nodeport.MaxBackends)
			}
			bes = bes[:nodeport.MaxBackends]
		}
		want[k] = nodeport.Entry{Addr: l.Addr, Protocol: l.Protocol, Backends: bes}
		for _, b := range bes {
			backends[nodeport.Backend{Addr: b, Protocol: l.Protocol}] = true
		}
	}

	// Admission first, so a new entry never admits a client its
	// policy denies.
	if !policyOn || eng != nil {
		for b := range backends {
			var ps []nodeport.Prefix
			if eng != nil {
				if isolated, pv := eng.IngressPrefixes(b.Addr, b.Protocol); isolated {
					for _, p := range pv {
						ps = append(ps, nodeport.Prefix{Prefix: p.Prefix.Masked(), Allow: p.Allow})
					}
				}
			}
			n.admit(b, ps)
		}
		for b := range n.admitted {
			if !backends[b] {
				n.admit(b, nil)
			}
		}
	}

	for k, e := range want {
		if old, ok := n.applied[k]; ok && slices.Equal(old.Backends, e.Backends) {
			continue
		}
		if err := n.nat.Upsert(e); err != nil {
			n.log.Warn("program node port", "node_port", k, "err", err)
			continue
		}
		n.applied[k] = e
	}
	for k, e := range n.applied {
		if _, ok := want[k]; ok {
			continue
		}
		if err := n.nat.Delete(e.Addr, e.Protocol); err != nil {
			n.log.Warn("remove node port", "node_port", k, "err", err)
			continue
		}
		delete(n.applied, k)
	}
}

func (n *nodePorts) admit(b nodeport.Backend, ps []nodeport.Prefix) {
	if samePrefixes(n.admitted[b], ps) {
		return
	}
	if err := n.nat.SetAdmission(b, ps); err != nil {
		n.log.Warn("program node-port policy", "backend", b.Addr, "err", err)
		return
	}
	if len(ps) == 0 {
		delete(n.admitted, b)
		return
	}
	n.admitted[b] = ps
}

// samePrefixes compares as sets (the NAT keeps its own order).
func samePrefixes(a, b []nodeport.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[nodeport.Prefix]bool, len(a))
	for _, p := range a {
		m[p] = true
	}
	for _, p := range b {
		if !m[p] {
			return false
		}
	}
	return true
}

func (n *nodePorts) close() {
	if err := n.nat.Close(); err != nil {
		n.log.Warn("close node-port translation", "err", err)
	}
}
