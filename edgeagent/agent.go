// Package edgeagent is Flotilla's edge agent: it registers its node, keeps
// it alive with heartbeats, runs the pods assigned to it (wasm modules
// through wasmrt), reports their status and ships their logs.
package edgeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/api/events"
	"github.com/flotilla-edge/flotilla/edgeagent/servicelb"
	"github.com/flotilla-edge/flotilla/netpolicy/userspace"
	"github.com/flotilla-edge/flotilla/wasmrt"
)

// Agent runs one node's pods.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	nc      *nats.Conn
	ownConn bool
	js      jetstream.JetStream
	client  *client.Client
	rt      *wasmrt.Runtime
	modules *modules
	ports   *ports
	// localHTTP maps the wasm HTTP pods' hostIP:hostPort to their
	// handlers, for servicelb's in-process hand-over (Local policy).
	localHTTP   localHTTP
	logs        *shipper
	events      *events.Recorder
	probeClient *http.Client
	// lbAdmit is the NetworkPolicy check of the userspace service proxy
	// (nil without Config.NetworkPolicy).
	lbAdmit userspace.AdmitFunc
	// lbPolicy is the policy view for the eBPF LB's per-cgroup rules of
	// container pods (nil without Config.NetworkPolicy).
	lbPolicy servicelb.PolicySource
	net      *podNet // cluster DNS and wasm host calls
	oci      *ociState
	// configCache holds the last ConfigMaps and Secrets read for pods
	// ("Kind/ns/name" -> api.Object), used while the API is unreachable.
	configCache sync.Map

	ctx    context.Context // lives until Stop
	cancel context.CancelFunc
	// stopping is set by Stop before ctx is cancelled: a pod runner that
	// sees its context end then knows the agent, not the pod, is going,
	// and leaves its OCI containers running.
	stopping atomic.Bool
	wg       sync.WaitGroup
	// The log shipper outlives the pods so their last lines get out.
	logCancel context.CancelFunc
	logWG     sync.WaitGroup
	stopOnce  sync.Once

	mu      sync.Mutex
	desired map[string]*api.Pod   // by assignment key
	running map[string]*podRunner // by assignment key
	gone    map[string]bool       // uids whose pod object no longer exists
	wake    chan struct{}         // cap 1: "reconcile now"
}

// registerTimeout bounds how long Start retries registration while NATS is
// connected but no API server answers yet.
const registerTimeout = 15 * time.Second

// Start connects, registers the node and starts the agent's loops. ctx
// bounds start-up only; Stop ends the agent. When NATS cannot be reached
// the agent starts anyway, runs the pods of its local copy of the
// assignments and registers once NATS is back.
func Start(ctx context.Context, cfg Config) (*Agent, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent %s: data dir: %w", cfg.Name, err)
	}
	a := &Agent{
		cfg:         cfg,
		log:         cfg.Log,
		nc:          cfg.Conn,
		ports:       newPorts(cfg.Address, cfg.PortRange),
		probeClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		running:     map[string]*podRunner{},
		gone:        map[string]bool{},
		wake:        make(chan struct{}, 1),
		oci:         &ociState{imported: make(chan struct{})},
	}
	if a.nc == nil {
		opts := []nats.Option{
			nats.Name("flotilla-agent-" + cfg.Name),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(500 * time.Millisecond),
			// Start offline rather than fail: the local copy keeps pods up.
			nats.RetryOnFailedConnect(true),
		}
		if cfg.Token != "" {
			opts = append(opts, nats.Token(cfg.Token))
		}
		nc, err := nats.Connect(cfg.NATSURL, opts...)
		if err != nil {
			return nil, fmt.Errorf("agent %s: connect to %s: %w", cfg.Name, cfg.NATSURL, err)
		}
		a.nc, a.ownConn = nc, true
	}
	a.client = client.New(a.nc)
	js, err := jetstream.New(a.nc)
	if err != nil {
		a.closeConn()
		return nil, fmt.Errorf("agent %s: jetstream: %w", cfg.Name, err)
	}
	a.js = js
	cfg, startPolicy := a.withNetworkPolicy(cfg)
	a.net = newPodNet(cfg, a.nc)
	a.rt, err = wasmrt.New(ctx, wasmrt.Config{CacheDir: cfg.CompileCacheDir, HostCalls: a.net.host})
	if err != nil {
		a.closeConn()
		return nil, fmt.Errorf("agent %s: %w", cfg.Name, err)
	}
	fail := func(err error) (*Agent, error) {
		_ = a.rt.Close(context.Background())
		a.closeConn()
		return nil, err
	}
	if a.modules, err = newModules(js, a.rt, filepath.Join(cfg.DataDir, "modules"), a.nc.IsConnected); err != nil {
		return fail(err)
	}
	// Before the first reconcile, so running containers are adopted, not
	// started twice.
	ociUp := a.connectContainerd(ctx)
	if err := a.loadLocalAssignments(); err != nil {
		// A broken local copy only matters offline; the watch replaces it.
		a.log.Warn("ignoring local assignments", "err", err)
	}
	registered := false
	if a.nc.IsConnected() {
		if err := a.registerWithRetry(ctx); err != nil {
			return fail(err)
		}
		registered = true
		a.log.Info("node registered", "address", cfg.Address)
	} else {
		a.log.Warn("NATS unreachable; running pods from the local copy of the assignments", "url", cfg.NATSURL)
	}

	a.ctx, a.cancel = context.WithCancel(context.Background())
	logCtx, logCancel := context.WithCancel(context.Background())
	a.logCancel = logCancel
	a.logs = newShipper(a.nc, js, a.log)
	a.logWG.Go(func() { a.logs.run(logCtx) })
	// Events share the log shipper's lifetime so "Killing" events of the
	// pods stopped on the way out still get written.
	a.events = events.New(a.client, eventComponent, cfg.Name, a.log)
	a.logWG.Go(func() { a.events.Run(logCtx) })
	a.wg.Go(func() { a.logs.ensureStream(a.ctx) })
	a.wg.Go(func() { a.heartbeatLoop(a.ctx, registered) })
	a.wg.Go(func() { a.watchAssignments(a.ctx) })
	a.wg.Go(func() { a.reconcileLoop(a.ctx) })
	a.wg.Go(func() { a.containerdLoop(a.ctx, ociUp) })
	a.wg.Go(func() { a.serveExec(a.ctx) })
	a.net.start(a.ctx, a.client, &a.wg)
	startPolicy(a.ctx)
	if cfg.ServiceLB != "" {
		a.wg.Go(func() {
			servicelb.Run(a.ctx, servicelb.Config{Client: a.client, NodeName: cfg.Name, NodeAddress: cfg.Address,
				Mode: cfg.ServiceLB, CgroupPath: a.lbCgroup(cfg), PinDir: cfg.LBPinDir, NetNS: cfg.LBNetNS,
				Admit: a.lbAdmit, Policy: a.lbPolicy, PodCgroups: a.containerCgroups, LocalHTTP: &a.localHTTP, Log: a.log})
		})
	}
	return a, nil
}

// registerWithRetry registers, retrying while no API server answers yet.
func (a *Agent) registerWithRetry(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	bo := newBackoff(200*time.Millisecond, 2*time.Second)
	for {
		err := a.register(rctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, api.ErrInvalid) || !sleepCtx(rctx, bo.next()) {
			return err
		}
	}
}

func (a *Agent) closeConn() {
	if a.ownConn {
		a.nc.Close()
	}
}

// Stop stops every wasm pod, closes their listeners and waits for every
// goroutine of the agent. OCI containers keep running: the next agent on
// this node adopts them, so an agent upgrade does not restart them; only
// an unassignment stops them. It is safe to call more than once.
func (a *Agent) Stop() {
	a.stopOnce.Do(func() {
		a.stopping.Store(true)
		a.cancel()
		a.wg.Wait() // the reconcile loop stops all pods on its way out
		a.closeContainerd()
		a.net.stop()
		a.logCancel()
		a.logWG.Wait()
		a.probeClient.CloseIdleConnections()
		if err := a.rt.Close(context.Background()); err != nil {
			a.log.Warn("close wasm runtime", "err", err)
		}
		a.closeConn()
		a.log.Info("agent stopped")
	})
}

// Pods lists the pods the agent runs now as "namespace/name", sorted.
func (a *Agent) Pods() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.running))
	for _, r := range a.running {
		out = append(out, r.pod.Namespace+"/"+r.pod.Name)
	}
	sort.Strings(out)
	return out
}

// heartbeatLoop keeps the node Ready, registering first if start-up could
// not.
func (a *Agent) heartbeatLoop(ctx context.Context, registered bool) {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, min(max(a.cfg.HeartbeatInterval, time.Second), 10*time.Second))
		var err error
		if registered {
			err = a.heartbeat(hctx)
		} else if err = a.register(hctx); err == nil {
			registered = true
			a.log.Info("node registered", "address", a.cfg.Address)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			a.log.Warn("heartbeat", "err", err)
		}
	}
}
