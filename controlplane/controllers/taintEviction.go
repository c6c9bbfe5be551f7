package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// taintEvictionController deletes pods from nodes with a NoExecute taint
// they do not tolerate: at once without a matching toleration, after the
// smallest tolerationSeconds of the matching ones otherwise (counted from
// the taint's timeAdded, or from when this process first saw it).
type taintEvictionController struct {
	m     *Manager
	queue *Queue

	mu sync.Mutex
	// firstSeen stands in for a taint's missing timeAdded. It is lost on
	// leader change, which only restarts a toleration period, never cuts
	// one short.
	firstSeen map[string]time.Time // node/key=value:effect -> first seen
}

func newTaintEvictionController(m *Manager) *controller {
	c := &taintEvictionController{m: m, queue: newQueue(), firstSeen: map[string]time.Time{}}
	m.nodes.OnChange(enqueueSelf(c.queue))
	m.pods.OnChange(func(old, cur api.Object) {
		// A pod bound to a tainted node must be judged too.
		if cur != nil {
			if n := cur.(*api.Pod).Spec.NodeName; n != "" {
				c.queue.Add(n)
			}
		}
	})
	return &controller{name: "taint-eviction", workers: 1, queue: c.queue, reconcile: c.reconcile, all: m.keysOf("Node")}
}

func (c *taintEvictionController) taintTime(node string, t api.Taint, now time.Time) time.Time {
	if !t.TimeAdded.IsZero() {
		return t.TimeAdded.Time
	}
	k := node + "/" + t.Key + "=" + t.Value + ":" + t.Effect
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.firstSeen[k]
	if !ok {
		at = now
		c.firstSeen[k] = at
	}
	return at
}

func (c *taintEvictionController) reconcile(ctx context.Context, key string) error {
	obj := c.m.nodes.Get(key)
	if obj == nil {
		return nil
	}
	n := obj.(*api.Node)
	var noExec []api.Taint
	for _, t := range n.Spec.Taints {
		if t.Effect == api.TaintNoExecute {
			noExec = append(noExec, t)
		}
	}
	if len(noExec) == 0 {
		return nil
	}
	now := time.Now()
	var next time.Duration
	var errs []error
	for _, o := range c.m.pods.List(func(o api.Object) bool {
		p := o.(*api.Pod)
		return p.Spec.NodeName == n.Name && !p.IsTerminal()
	}) {
		p := o.(*api.Pod)
		deadline, evict := c.evictionDeadline(n.Name, p, noExec, now)
		if !evict {
			continue
		}
		if wait := deadline.Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		if err := c.m.deletePod(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		c.m.log.Info("evicted pod from tainted node", "pod", Key(p), "node", n.Name)
		c.m.events.Eventf(p, api.EventNormal, "TaintManagerEviction", "Marking for deletion Pod %s/%s", p.Namespace, p.Name)
	}
	if next > 0 {
		c.queue.AddAfter(key, next)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("evict pods from node %s: %w", n.Name, err)
	}
	return nil
}

// evictionDeadline returns when p must leave a node with the given
// NoExecute taints, and false when it may stay for good.
func (c *taintEvictionController) evictionDeadline(node string, p *api.Pod, taints []api.Taint, now time.Time) (time.Time, bool) {
	var deadline time.Time
	evict := false
	for _, t := range taints {
		matched, forever := false, true
		var secs int64
		for _, tol := range p.Spec.Tolerations {
			if !tol.Tolerates(t) {
				continue
			}
			matched = true
			if tol.TolerationSeconds != nil {
				s := max(0, *tol.TolerationSeconds)
				if forever || s < secs {
					secs, forever = s, false
				}
			}
		}
		if !matched {
			return now, true
		}
		if forever {
			continue
		}
		d := c.taintTime(node, t, now).Add(time.Duration(secs) * time.Second)
		if !evict || d.Before(deadline) {
			deadline, evict = d, true
		}
	}
	return deadline, evict
}
