// Package controllers holds the control loops that drive observed state to
// desired state: one level-triggered Reconcile per kind over a shared
// cache and queue. They run only on the leader-lease holder.
package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/wire"
	"github.com/flotilla-edge/flotilla/controlplane/store"
)

// Options tune the controllers.
type Options struct {
	Log *slog.Logger
	// NodeMonitorGracePeriod: a node whose heartbeat is older goes
	// Ready=Unknown (default 40s, as in Kubernetes).
	NodeMonitorGracePeriod time.Duration
	// Resync re-reconciles every object this often (default 30s), so a
	// missed event costs latency, never correctness.
	Resync time.Duration
}

// Manager owns the caches and runs every controller.
type Manager struct {
	st   *store.Store
	js   jetstream.JetStream
	opts Options
	log  *slog.Logger

	pods, rs, deploys, nodes *Cache
}

// NewManager wires the controllers to a store.
func NewManager(st *store.Store, js jetstream.JetStream, opts Options) *Manager {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.NodeMonitorGracePeriod == 0 {
		opts.NodeMonitorGracePeriod = 40 * time.Second
	}
	if opts.Resync == 0 {
		opts.Resync = 30 * time.Second
	}
	return &Manager{
		st: st, js: js, opts: opts, log: opts.Log,
		pods: newCache("Pod"), rs: newCache("ReplicaSet"), deploys: newCache("Deployment"), nodes: newCache("Node"),
	}
}

// controller is one control loop.
type controller struct {
	name      string
	workers   int
	queue     *Queue
	reconcile func(context.Context, string) error
	// all lists every key for the periodic resync.
	all func() []string
}

// Run starts the caches and controllers and blocks until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	assign, err := m.js.KeyValue(ctx, wire.AssignmentsBucket)
	if err != nil {
		return fmt.Errorf("controllers: assignments bucket: %w", err)
	}
	rsc := &replicaSetController{m: m, queue: newQueue()}
	dc := &deploymentController{m: m, queue: newQueue()}
	gc := &garbageCollector{m: m, queue: newQueue()}
	sc := newSchedulingController(m, assign)
	ac := &assignmentController{m: m, kv: assign, queue: newQueue(), placed: map[string]string{}}
	nc := &nodeLifecycleController{m: m, queue: newQueue()}

	m.pods.OnChange(func(old, cur api.Object) {
		for _, o := range []api.Object{old, cur} {
			if o == nil {
				continue
			}
			if ref := api.ControllerOf(o.GetMeta()); ref != nil && ref.Kind == "ReplicaSet" {
				rsc.queue.Add(o.GetMeta().Namespace + "/" + ref.Name)
			}
			ac.queue.Add(Key(o))
			sc.queue.Add(Key(o))
		}
		if cur == nil {
			gc.queue.Add("pods")
			sc.nodesChanged() // freed capacity may fit a pending pod
		}
	})
	m.rs.OnChange(func(old, cur api.Object) {
		for _, o := range []api.Object{old, cur} {
			if o == nil {
				continue
			}
			rsc.queue.Add(Key(o))
			if ref := api.ControllerOf(o.GetMeta()); ref != nil && ref.Kind == "Deployment" {
				dc.queue.Add(o.GetMeta().Namespace + "/" + ref.Name)
			}
		}
		if cur == nil {
			gc.queue.Add("pods")
		}
	})
	m.deploys.OnChange(func(old, cur api.Object) {
		if cur != nil {
			dc.queue.Add(Key(cur))
		} else {
			gc.queue.Add("replicasets")
		}
	})
	m.nodes.OnChange(func(old, cur api.Object) {
		if cur != nil {
			nc.queue.Add(Key(cur))
		}
		sc.nodesChanged()
	})

	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	errs := make(chan error, 4)
	for _, c := range []*Cache{m.pods, m.rs, m.deploys, m.nodes} {
		c := c
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.run(cctx, m.st); err != nil {
				errs <- fmt.Errorf("watch %s: %w", c.kind, err)
			}
		}()
	}
	// Controllers act only on a complete picture: a partial cache would make
	// the garbage collector delete children whose owner it has not read yet.
	for _, c := range []*Cache{m.pods, m.rs, m.deploys, m.nodes} {
		select {
		case <-c.Synced():
		case err := <-errs:
			return err
		case <-ctx.Done():
			return nil
		}
	}
	if err := ac.loadPlaced(ctx); err != nil {
		return err
	}
	keysOf := func(c *Cache) func() []string {
		return func() []string {
			var out []string
			for _, o := range c.List(nil) {
				out = append(out, Key(o))
			}
			return out
		}
	}
	ctrls := []*controller{
		{name: "replicaset", workers: 2, queue: rsc.queue, reconcile: rsc.reconcile, all: keysOf(m.rs)},
		{name: "deployment", workers: 2, queue: dc.queue, reconcile: dc.reconcile, all: keysOf(m.deploys)},
		{name: "garbagecollector", workers: 1, queue: gc.queue, reconcile: gc.reconcile, all: func() []string { return []string{"replicasets", "pods"} }},
		{name: "scheduler", workers: 1, queue: sc.queue, reconcile: sc.reconcile, all: sc.pendingKeys},
		{name: "assignments", workers: 2, queue: ac.queue, reconcile: ac.reconcile, all: ac.allKeys},
		{name: "nodelifecycle", workers: 1, queue: nc.queue, reconcile: nc.reconcile, all: keysOf(m.nodes)},
	}
	for _, c := range ctrls {
		c := c
		for _, k := range c.all() {
			c.queue.Add(k)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			c.queue.Run(cctx, c.name, c.workers, m.log, c.reconcile)
		}()
		go func() {
			defer wg.Done()
			t := time.NewTicker(m.opts.Resync)
			defer t.Stop()
			for {
				select {
				case <-cctx.Done():
					return
				case <-t.C:
					for _, k := range c.all() {
						c.queue.Add(k)
					}
				}
			}
		}()
	}
	// Heartbeat staleness is a matter of time passing, not of events.
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(m.opts.NodeMonitorGracePeriod / 4)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
				for _, k := range keysOf(m.nodes)() {
					nc.queue.Add(k)
				}
			}
		}
	}()
	m.log.Info("controllers running")
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

func splitKey(key string) (ns, name string) {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}
