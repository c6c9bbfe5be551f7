package controllers

import (
	"context"
	"errors"
	"fmt"

	"github.com/flotilla-edge/flotilla/api"
)

// garbageCollector deletes objects whose controlling owner no longer
// exists: a deleted Deployment takes its ReplicaSets, and they their pods.
// It works for every kind with a cache, so a new workload kind needs no
// change here.
type garbageCollector struct {
	m     *Manager
	queue *Queue
}

const sweepKey = "sweep"

func newGarbageCollector(m *Manager) *controller {
	g := &garbageCollector{m: m, queue: newQueue()}
	for _, c := range m.caches {
		c.OnChange(func(old, cur api.Object) {
			if cur == nil {
				g.queue.Add(sweepKey)
			}
		})
	}
	return &controller{name: "garbagecollector", workers: 1, queue: g.queue, reconcile: g.reconcile, all: func() []string { return []string{sweepKey} }}
}

func (g *garbageCollector) reconcile(ctx context.Context, _ string) error {
	alive := map[string]bool{}
	for _, c := range g.m.caches {
		for _, o := range c.List(nil) {
			alive[o.GetMeta().UID] = true
		}
	}
	var errs []error
	for kind, c := range g.m.caches {
		for _, o := range c.List(func(o api.Object) bool {
			ref := api.ControllerOf(o.GetMeta())
			// Only owners of a kind this process watches can be judged gone.
			_, known := g.m.caches[refKind(ref)]
			return ref != nil && known && !alive[ref.UID]
		}) {
			m := o.GetMeta()
			err := g.m.st.Delete(ctx, kind, m.Namespace, m.Name, "")
			if err != nil && !errors.Is(err, api.ErrNotFound) {
				errs = append(errs, fmt.Errorf("collect %s %s/%s: %w", kind, m.Namespace, m.Name, err))
				continue
			}
			c.AssumeDeleted(o)
			g.m.log.Info("garbage collected", "kind", kind, "ns", m.Namespace, "name", m.Name)
		}
	}
	return errors.Join(errs...)
}

func refKind(ref *api.OwnerReference) string {
	if ref == nil {
		return ""
	}
	return ref.Kind
}
