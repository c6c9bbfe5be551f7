package edgeagent

import (
	"context"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/edgeagent/dns"
	"github.com/flotilla-edge/flotilla/wasmrt/hostcall"
)

// podNet is the agent's service naming for pods: the cluster DNS view fed
// from the API, the DNS server on the node, and the "flotilla" host module
// through which wasm pods make outbound requests by service name.
type podNet struct {
	cfg      Config
	log      *slog.Logger
	store    *dns.Store
	resolver *dns.Resolver
	host     *hostcall.Host
	server   *dns.Server // nil when disabled or the address was taken
}

// ClusterDNSOff disables the DNS server (Config.ClusterDNSAddr); the view
// still serves wasm pods' host calls.
const ClusterDNSOff = "off"

func newPodNet(cfg Config, nc *nats.Conn) *podNet {
	p := &podNet{cfg: cfg, log: cfg.Log, store: dns.NewStore()}
	p.resolver = &dns.Resolver{View: p.store, Domain: cfg.ClusterDomain, Direct: cfg.ServiceDialDirect}
	p.host = hostcall.New(hostcall.Config{
		Resolve: func(_ context.Context, c hostcall.Caller, host string, port int) (string, bool, error) {
			return p.resolver.Resolve(c.Namespace, host, port)
		},
		Allow:   cfg.HostCallPolicy,
		Publish: nc.Publish,
		Log:     cfg.Log,
	})
	return p
}

// start feeds the view and serves DNS. A DNS address that cannot be bound
// (taken, or port 53 without privileges) is logged, not fatal: pods keep
// running and wasm pods still resolve service names through host calls.
func (p *podNet) start(ctx context.Context, c *client.Client, wg *sync.WaitGroup) {
	wg.Go(func() { dns.Feed(ctx, c, p.store, p.log) })
	if p.cfg.ClusterDNSAddr == ClusterDNSOff {
		return
	}
	addr := p.cfg.ClusterDNSAddr
	if addr == "" {
		addr = dns.DefaultAddr
	}
	s, err := dns.Start(dns.Config{Addr: addr, Domain: p.cfg.ClusterDomain, View: p.store, Log: p.log})
	if err != nil {
		p.log.Warn("cluster DNS not served", "addr", addr, "err", err)
		return
	}
	p.server = s
}

// stop closes the DNS server and the host calls' idle connections; the feed
// ends with the agent's context.
func (p *podNet) stop() {
	if p.server != nil {
		_ = p.server.Close()
	}
	p.host.Close()
}

// DNSAddr is where the agent serves cluster DNS; invalid when it does not.
func (a *Agent) DNSAddr() string {
	if a.net == nil || a.net.server == nil {
		return ""
	}
	return a.net.server.Addr().String()
}

// caller identifies the pod to the host module.
func (r *podRunner) caller() hostcall.Caller {
	return hostcall.Caller{Namespace: r.pod.Namespace, Pod: r.pod.Name}
}
