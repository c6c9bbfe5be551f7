package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/wire"
)

// assignmentController mirrors bound pods into the assignments bucket, one
// key per pod under its node, so that each agent watches only its own
// work. A key whose pod is gone is deleted, which stops the pod.
type assignmentController struct {
	m     *Manager
	kv    jetstream.KeyValue
	queue *Queue

	loadOnce sync.Once
	mu       sync.Mutex
	placed   map[string]string // ns/name -> node of the key we wrote
}

func newAssignmentController(m *Manager) *controller {
	c := &assignmentController{m: m, kv: m.assign, queue: newQueue(), placed: map[string]string{}}
	m.pods.OnChange(enqueueSelf(c.queue))
	return &controller{name: "assignments", workers: 2, queue: c.queue, reconcile: c.reconcile, all: c.allKeys}
}

// loadPlaced reads the keys already in the bucket, so keys left by a
// previous leader are cleaned up too.
func (c *assignmentController) loadPlaced(ctx context.Context) error {
	lister, err := c.kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return fmt.Errorf("list assignments: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range lister.Keys() {
		parts := strings.SplitN(k, ".", 3)
		if len(parts) == 3 {
			c.placed[parts[1]+"/"+parts[2]] = parts[0]
		}
	}
	return nil
}

func (c *assignmentController) allKeys() []string {
	c.loadOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.loadPlaced(ctx); err != nil {
			c.m.log.Warn("read assignments", "err", err)
		}
	})
	c.mu.Lock()
	keys := make([]string, 0, len(c.placed))
	for k := range c.placed {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for _, o := range c.m.pods.List(func(o api.Object) bool { return o.(*api.Pod).Spec.NodeName != "" }) {
		keys = append(keys, Key(o))
	}
	return keys
}

func (c *assignmentController) reconcile(ctx context.Context, key string) error {
	ns, name := splitKey(key)
	c.mu.Lock()
	placedOn, wasPlaced := c.placed[key]
	c.mu.Unlock()
	var pod *api.Pod
	if o := c.m.pods.Get(key); o != nil {
		pod = o.(*api.Pod)
	}
	want := ""
	if pod != nil {
		want = pod.Spec.NodeName
	}
	if wasPlaced && placedOn != want {
		err := c.kv.Delete(ctx, wire.AssignmentKey(placedOn, ns, name))
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("unassign %s from %s: %w", key, placedOn, err)
		}
		c.mu.Lock()
		delete(c.placed, key)
		c.mu.Unlock()
	}
	if want == "" {
		return nil
	}
	akey := wire.AssignmentKey(want, ns, name)
	// Rewrite only when the pod behind the key changed identity: the agent
	// reacts to every put.
	if e, err := c.kv.Get(ctx, akey); err == nil {
		var cur api.Pod
		if json.Unmarshal(e.Value(), &cur) == nil && cur.UID == pod.UID {
			c.mu.Lock()
			c.placed[key] = want
			c.mu.Unlock()
			return nil
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("read assignment %s: %w", akey, err)
	}
	b, err := json.Marshal(pod)
	if err != nil {
		return err
	}
	if _, err := c.kv.Put(ctx, akey, b); err != nil {
		return fmt.Errorf("assign %s to %s: %w", key, want, err)
	}
	c.mu.Lock()
	c.placed[key] = want
	c.mu.Unlock()
	return nil
}
