package controllers

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/store"
)

// Cache is an informer: an in-memory copy of every object of one kind,
// fed by a store watch. Controllers read it instead of the store and write
// their own results back with Assume, so a reconcile that runs before the
// watch catches up still sees what it just did.
type Cache struct {
	kind string

	mu       sync.RWMutex
	objs     map[string]api.Object // ns/name -> object
	revs     map[string]uint64     // highest revision seen per key, kept after delete
	deleted  map[string]time.Time  // tombstones, so a late event does not resurrect
	handlers []func(old, cur api.Object)
	synced   chan struct{}
}

func newCache(kind string) *Cache {
	return &Cache{kind: kind, objs: map[string]api.Object{}, revs: map[string]uint64{}, deleted: map[string]time.Time{}, synced: make(chan struct{})}
}

// Key is the cache key of an object: namespace/name, or name.
func Key(obj api.Object) string {
	m := obj.GetMeta()
	if m.Namespace == "" {
		return m.Name
	}
	return m.Namespace + "/" + m.Name
}

func rev(obj api.Object) uint64 {
	r, _ := strconv.ParseUint(obj.GetMeta().ResourceVersion, 10, 64)
	return r
}

// OnChange registers a handler called after every change with the old and
// new object (either may be nil). Register before run.
func (c *Cache) OnChange(h func(old, cur api.Object)) { c.handlers = append(c.handlers, h) }

// run feeds the cache until ctx ends.
func (c *Cache) run(ctx context.Context, st *store.Store) error {
	events, err := st.Watch(ctx, c.kind, "")
	if err != nil {
		return err
	}
	gc := time.NewTicker(time.Minute)
	defer gc.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-gc.C:
			c.mu.Lock()
			for k, t := range c.deleted {
				if time.Since(t) > time.Minute {
					delete(c.deleted, k)
					delete(c.revs, k)
				}
			}
			c.mu.Unlock()
		case ev, ok := <-events:
			if !ok {
				return ctx.Err()
			}
			switch ev.Type {
			case store.Synced:
				select {
				case <-c.synced:
				default:
					close(c.synced)
				}
			case store.Added, store.Modified:
				c.put(ev.Object, false)
			case store.Deleted:
				c.remove(ev.Object)
			}
		}
	}
}

// put stores obj unless the cache already holds a newer revision.
func (c *Cache) put(obj api.Object, assumed bool) {
	k := Key(obj)
	c.mu.Lock()
	if r := rev(obj); r <= c.revs[k] {
		c.mu.Unlock()
		return
	} else {
		c.revs[k] = r
	}
	if _, gone := c.deleted[k]; gone && !assumed {
		// A write newer than a delete we saw is a re-creation.
		delete(c.deleted, k)
	}
	delete(c.deleted, k)
	old := c.objs[k]
	c.objs[k] = obj
	c.mu.Unlock()
	c.notify(old, obj)
}

func (c *Cache) remove(obj api.Object) {
	k := Key(obj)
	c.mu.Lock()
	old, ok := c.objs[k]
	if ok && rev(old) > rev(obj) {
		// We hold a newer incarnation (re-created under the same name).
		c.mu.Unlock()
		return
	}
	delete(c.objs, k)
	c.deleted[k] = time.Now()
	c.mu.Unlock()
	if ok {
		c.notify(old, nil)
	}
}

func (c *Cache) notify(old, cur api.Object) {
	for _, h := range c.handlers {
		h(old, cur)
	}
}

// Assume records the result of this process's own write at once.
func (c *Cache) Assume(obj api.Object) { c.put(obj, true) }

// AssumeDeleted records this process's own delete at once.
func (c *Cache) AssumeDeleted(obj api.Object) { c.remove(obj) }

// Get returns the cached object or nil.
func (c *Cache) Get(key string) api.Object {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.objs[key]
}

// List returns the cached objects that pass keep (nil keeps all).
func (c *Cache) List(keep func(api.Object) bool) []api.Object {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]api.Object, 0, len(c.objs))
	for _, o := range c.objs {
		if keep == nil || keep(o) {
			out = append(out, o)
		}
	}
	return out
}

// Synced is closed once the initial list has been read.
func (c *Cache) Synced() <-chan struct{} { return c.synced }
