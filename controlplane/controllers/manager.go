// Package controllers holds the control loops that drive observed state to
// desired state: one level-triggered Reconcile per kind over a shared
// cache and queue. They run only on the leader-lease holder.
package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/events"
	"github.com/flotilla-edge/flotilla/api/wire"
	"github.com/flotilla-edge/flotilla/controlplane/store"
)

// Options tune the controllers.
type Options struct {
	Log *slog.Logger
	// NodeMonitorGracePeriod: a node whose heartbeat is older goes
	// Ready=Unknown (default 40s, as in Kubernetes).
	NodeMonitorGracePeriod time.Duration
	// EventTTL is how long an event is kept after its last occurrence
	// (default 1h).
	EventTTL time.Duration
	// Resync re-reconciles every object this often (default 30s), so a
	// missed event costs latency, never correctness.
	Resync time.Duration
}

// Manager owns the caches and runs every controller.
type Manager struct {
	st     *store.Store
	js     jetstream.JetStream
	opts   Options
	log    *slog.Logger
	assign jetstream.KeyValue

	events                   *events.Recorder
	caches                   map[string]*Cache
	pods, rs, deploys, nodes *Cache

	// background are loops controllers need besides their queue (e.g. a
	// watch of a non-object bucket); Run starts them with the controllers.
	background []func(context.Context)
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
	if opts.EventTTL == 0 {
		opts.EventTTL = time.Hour
	}
	host, _ := os.Hostname()
	m := &Manager{st: st, js: js, opts: opts, log: opts.Log, caches: map[string]*Cache{}, events: events.New(st, "flotilla-controllers", host, opts.Log)}
	m.pods, m.rs, m.deploys, m.nodes = m.cache("Pod"), m.cache("ReplicaSet"), m.cache("Deployment"), m.cache("Node")
	return m
}

// cache returns the informer of a kind, creating it on first use. All
// caches are made while controllers are set up, before Run starts them.
func (m *Manager) cache(kind string) *Cache {
	c, ok := m.caches[kind]
	if !ok {
		c = newCache(kind)
		m.caches[kind] = c
	}
	return c
}

// controller is one control loop.
type controller struct {
	name      string
	workers   int
	queue     *Queue
	reconcile func(context.Context, string) error
	// all lists every key for the periodic resync.
	all func() []string
	// resync overrides Options.Resync for this controller.
	resync time.Duration
}

// setups builds every controller; each registers its own cache handlers.
// A new kind's controller is one more line here.
var setups = []func(m *Manager) *controller{
	newReplicaSetController,
	newDeploymentController,
	newSchedulingController,
	newAssignmentController,
	newNodeLifecycleController,
	newEventTTLController,
	newTaintEvictionController,
	newDaemonSetController,
	newStatefulSetController,
	newPVCBindingController,
	newJobController,
	newCronJobController,
	newEndpointsController,
	newServiceLBStatusController,
	// Last: it watches every cache the others asked for.
	newGarbageCollector,
}

// keysOf lists the cache keys of a kind, for resyncs.
func (m *Manager) keysOf(kind string) func() []string {
	c := m.cache(kind)
	return func() []string {
		var out []string
		for _, o := range c.List(nil) {
			out = append(out, Key(o))
		}
		return out
	}
}

// enqueueSelf returns a handler that enqueues the changed object's key.
func enqueueSelf(q *Queue) func(old, cur api.Object) {
	return func(old, cur api.Object) {
		if cur != nil {
			q.Add(Key(cur))
		} else if old != nil {
			q.Add(Key(old))
		}
	}
}

// enqueueOwner returns a handler that enqueues the key of the changed
// object's controlling owner when that owner is of the given kind.
func enqueueOwner(q *Queue, kind string) func(old, cur api.Object) {
	return func(old, cur api.Object) {
		for _, o := range []api.Object{old, cur} {
			if o == nil {
				continue
			}
			if ref := api.ControllerOf(o.GetMeta()); ref != nil && ref.Kind == kind {
				q.Add(o.GetMeta().Namespace + "/" + ref.Name)
			}
		}
	}
}

// Run starts the caches and controllers and blocks until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	assign, err := m.js.KeyValue(ctx, wire.AssignmentsBucket)
	if err != nil {
		return fmt.Errorf("controllers: assignments bucket: %w", err)
	}
	m.assign = assign
	m.background = nil // the setups below register this run's loops
	var ctrls []*controller
	for _, setup := range setups {
		ctrls = append(ctrls, setup(m))
	}

	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.events.Run(cctx)
	}()
	errs := make(chan error, len(m.caches))
	for _, c := range m.caches {
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
	for _, c := range m.caches {
		select {
		case <-c.Synced():
		case err := <-errs:
			return err
		case <-ctx.Done():
			return nil
		}
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
			every := m.opts.Resync
			if c.resync > 0 {
				every = c.resync
			}
			t := time.NewTicker(every)
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
	for _, f := range m.background {
		wg.Go(func() { f(cctx) })
	}
	m.log.Info("controllers running", "controllers", len(ctrls))
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
