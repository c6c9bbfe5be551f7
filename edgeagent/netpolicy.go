package edgeagent

import (
	"context"

	"github.com/flotilla-edge/flotilla/edgeagent/dns"
	"github.com/flotilla-edge/flotilla/edgeagent/policyview"
	"github.com/flotilla-edge/flotilla/wasmrt/hostcall"
)

// withNetworkPolicy returns cfg with wasm pods' host calls checked against
// NetworkPolicies (Config.NetworkPolicy, unless the embedder set its own
// HostCallPolicy), and the function that starts the policy view's feed.
func (a *Agent) withNetworkPolicy(cfg Config) (Config, func(context.Context)) {
	if !cfg.NetworkPolicy || cfg.HostCallPolicy != nil {
		return cfg, func(context.Context) {}
	}
	view := policyview.New()
	// Resolution for the check always yields the ClusterIP (never one
	// endpoint picked at random, as ServiceDialDirect dialling does), so
	// the hook judges every backend the call may end up at. a.net is set
	// right after this returns, before any pod runs.
	cfg.HostCallPolicy = view.Allow(func(_ context.Context, c hostcall.Caller, host string, port int) (string, bool, error) {
		r := dns.Resolver{View: a.net.store, Domain: cfg.ClusterDomain}
		return r.Resolve(c.Namespace, host, port)
	}, nil)
	return cfg, func(ctx context.Context) {
		a.wg.Go(func() { policyview.Feed(ctx, a.client, view, a.log) })
	}
}
