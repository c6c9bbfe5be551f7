package edgeagent

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
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

// dialDirect reports whether wasm pods' host calls dial a ready endpoint
// of a service rather than its cluster IP: when asked to, and when no
// load balancer on this node can serve cluster IPs — the agent was told
// to run none, or it is not root (no eBPF, and the userspace proxy cannot
// put cluster IPs on lo).
func dialDirect(cfg Config, euid int) bool {
	return cfg.ServiceDialDirect || cfg.ServiceLB == "off" || (cfg.ServiceLB != "" && euid != 0)
}

func newPodNet(cfg Config, nc *nats.Conn) *podNet {
	p := &podNet{cfg: cfg, log: cfg.Log, store: dns.NewStore()}
	p.resolver = &dns.Resolver{View: p.store, Domain: cfg.ClusterDomain, Direct: dialDirect(cfg, os.Geteuid())}
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

// hostResolvConf is the node's resolver configuration, whose nameservers
// follow the cluster DNS in containers' resolv.conf.
const hostResolvConf = "/etc/resolv.conf"

// containerNameserver is the cluster DNS address as a resolv.conf
// nameserver for OCI containers, which share the host's network: any
// address the agent serves on is reachable from them, but resolv.conf has
// no port syntax, so only a server on port 53 qualifies. A wildcard
// address is reached through loopback.
func containerNameserver(dnsAddr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(dnsAddr)
	if err != nil || ap.Port() != 53 {
		return netip.Addr{}, false
	}
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() {
		if ip.Is4() {
			return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
		}
		return netip.IPv6Loopback(), true
	}
	return ip, true
}

// ociResolvConf renders the /etc/resolv.conf of an OCI container of a pod
// in namespace: the cluster DNS, then the node's resolvers, with the
// cluster search path. It is "" (the container gets the host's file) when
// the agent serves no cluster DNS usable from containers.
func (a *Agent) ociResolvConf(namespace string) string {
	ns, ok := containerNameserver(a.DNSAddr())
	if !ok {
		return ""
	}
	ups, err := dns.HostUpstreams(hostResolvConf, ns)
	if err != nil {
		a.log.Warn("containers get the cluster DNS only", "err", err)
	}
	return dns.ResolvConf{Nameserver: ns, Upstreams: ups, Namespace: namespace, Domain: a.cfg.ClusterDomain}.Render()
}
