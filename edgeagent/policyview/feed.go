package policyview

import (
	"context"
	"log/slog"
	"sync"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
)

// Feed keeps v in step with the fleet until ctx ends. It blocks.
func Feed(ctx context.Context, c *client.Client, v *View, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "policyview")
	var wg sync.WaitGroup
	for _, kind := range Kinds {
		wg.Go(func() { c.Reflect(ctx, kind, mirror{v: v, kind: kind}, log) })
	}
	wg.Wait()
}

// mirror applies one kind's objects to the view.
type mirror struct {
	v    *View
	kind string
}

func (m mirror) Replace(objs []api.Object) {
	seen := map[string]bool{}
	for _, o := range objs {
		seen[key(o.GetMeta())] = true
		m.v.Set(o)
	}
	for _, k := range m.v.Keys(m.kind) {
		if !seen[k] {
			ns, name := splitKey(k)
			m.v.Delete(m.kind, ns, name)
		}
	}
	m.v.MarkSynced(m.kind)
}

func (m mirror) Apply(o api.Object, deleted bool) {
	if deleted {
		meta := o.GetMeta()
		m.v.Delete(m.kind, meta.Namespace, meta.Name)
		return
	}
	m.v.Set(o)
}

func splitKey(k string) (ns, name string) {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return "", k
}
