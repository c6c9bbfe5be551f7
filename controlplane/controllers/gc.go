package controllers

import (
	"context"
	"errors"
	"fmt"

	"github.com/flotilla-edge/flotilla/api"
)

// garbageCollector deletes objects whose controlling owner no longer
// exists: a deleted Deployment takes its ReplicaSets, and they their pods.
type garbageCollector struct {
	m     *Manager
	queue *Queue
}

// reconcile sweeps one dependent kind ("replicasets" or "pods").
func (g *garbageCollector) reconcile(ctx context.Context, key string) error {
	var dependents, owners *Cache
	var kind string
	switch key {
	case "replicasets":
		dependents, owners, kind = g.m.rs, g.m.deploys, "ReplicaSet"
	case "pods":
		dependents, owners, kind = g.m.pods, g.m.rs, "Pod"
	default:
		return nil
	}
	alive := map[string]bool{}
	for _, o := range owners.List(nil) {
		alive[o.GetMeta().UID] = true
	}
	var errs []error
	for _, o := range dependents.List(func(o api.Object) bool {
		ref := api.ControllerOf(o.GetMeta())
		return ref != nil && ref.Kind == owners.kind && !alive[ref.UID]
	}) {
		m := o.GetMeta()
		err := g.m.st.Delete(ctx, kind, m.Namespace, m.Name, "")
		if err != nil && !errors.Is(err, api.ErrNotFound) {
			errs = append(errs, fmt.Errorf("collect %s %s/%s: %w", kind, m.Namespace, m.Name, err))
			continue
		}
		dependents.AssumeDeleted(o)
		g.m.log.Info("garbage collected", "kind", kind, "ns", m.Namespace, "name", m.Name)
	}
	return errors.Join(errs...)
}
