package policyview

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/flotilla-edge/flotilla/netpolicy/policy"
	"github.com/flotilla-edge/flotilla/wasmrt/hostcall"
)

// ErrDenied is wrapped by every denial Allow returns.
var ErrDenied = errors.New("NetworkPolicy")

// Allow returns the hook for hostcall.Config.Allow: a wasm pod's outbound
// call to host:port passes only when the pod's egress policies and the
// destination pod's ingress policies allow it.
//
// The hook sees the host as the pod wrote it, so it resolves it itself:
// resolve (the agent's cluster-name resolver; it must return the ClusterIP,
// not one endpoint picked at random, or the check and the dial could pick
// different backends) maps service names; a ClusterIP stands for all of its
// backends, and every one must be allowed because the load balancer picks
// one after this check. Other names are resolved through the node's
// resolver and every address must be allowed. Until the view has its
// initial lists nothing is known about selection, so calls are denied.
func (v *View) Allow(resolve hostcall.ResolveFunc, lookup func(ctx context.Context, host string) ([]netip.Addr, error)) hostcall.AllowFunc {
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		}
	}
	return func(ctx context.Context, c hostcall.Caller, host string, port int) error {
		if !v.Synced() {
			return fmt.Errorf("%w: policy view not synced yet", ErrDenied)
		}
		dsts, err := destinations(ctx, resolve, lookup, c, host, port)
		if err != nil {
			// Unresolvable: the host call fails on resolution anyway; a
			// policy error here would hide the real cause.
			return nil
		}
		eng := v.Engine()
		src := policy.FromPod(c.Namespace, c.Pod)
		for _, d := range dsts {
			if dec := eng.Allowed(src, d, policy.TCP); !dec.Allowed {
				return fmt.Errorf("%w: %s", ErrDenied, dec.Reason)
			}
		}
		return nil
	}
}

func destinations(ctx context.Context, resolve hostcall.ResolveFunc, lookup func(context.Context, string) ([]netip.Addr, error),
	c hostcall.Caller, host string, port int) ([]netip.AddrPort, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(port))}, nil
	}
	if resolve != nil {
		addr, ok, err := resolve(ctx, c, host, port)
		if err != nil {
			return nil, err
		}
		if ok {
			h, p, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			pn, err := strconv.Atoi(p)
			if err != nil {
				return nil, err
			}
			if a, err := netip.ParseAddr(h); err == nil {
				return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(pn))}, nil
			}
			host, port = h, pn // ExternalName: an outside name
		}
	}
	addrs, err := lookup(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", host, err)
	}
	out := make([]netip.AddrPort, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(port)))
	}
	return out, nil
}

// Admit returns the check for the userspace service proxy
// (userspace.LB.SetAdmit): a client address may be relayed to a backend
// only when the backend pod's ingress rules admit that address. The proxy
// knows the client's address only, so only ipBlock peers (and rules
// without peers) can admit it; see docs/networking.md. Until the view has
// its initial lists every relay is refused (fail closed).
func (v *View) Admit() func(client netip.Addr, backend netip.AddrPort, proto string) error {
	return func(client netip.Addr, backend netip.AddrPort, proto string) error {
		if !v.Synced() {
			return fmt.Errorf("%w: policy view not synced yet", ErrDenied)
		}
		if d := v.Engine().AllowedDirect(policy.FromIP(client.Unmap()), backend, proto); !d.Allowed {
			return fmt.Errorf("%w: %s", ErrDenied, d.Reason)
		}
		return nil
	}
}
