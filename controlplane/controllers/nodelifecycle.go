package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// nodeLifecycleController marks a node Ready=Unknown when its agent stops
// heartbeating, and its pods not ready, so that nothing is scheduled there
// and readers see the outage.
type nodeLifecycleController struct {
	m     *Manager
	queue *Queue
}

func newNodeLifecycleController(m *Manager) *controller {
	c := &nodeLifecycleController{m: m, queue: newQueue()}
	m.nodes.OnChange(enqueueSelf(c.queue))
	// Heartbeat staleness is a matter of time passing, not of events.
	return &controller{name: "nodelifecycle", workers: 1, queue: c.queue, reconcile: c.reconcile, all: m.keysOf("Node"), resync: m.opts.NodeMonitorGracePeriod / 4}
}

func (c *nodeLifecycleController) reconcile(ctx context.Context, key string) error {
	obj := c.m.nodes.Get(key)
	if obj == nil {
		return nil
	}
	n := obj.(*api.Node)
	if err := c.markUnknown(ctx, n); err != nil {
		return err
	}
	if o := c.m.nodes.Get(key); o != nil {
		return c.syncUnreachableTaints(ctx, o.(*api.Node))
	}
	return nil
}

// markUnknown sets Ready=Unknown once heartbeats are older than the grace
// period, and marks the node's pods not ready.
func (c *nodeLifecycleController) markUnknown(ctx context.Context, n *api.Node) error {
	ready := api.FindCondition(n.Status.Conditions, api.NodeReady)
	if ready == nil || ready.Status == api.ConditionUnknown {
		return nil
	}
	last := ready.LastHeartbeatTime.Time
	if last.IsZero() {
		last = ready.LastTransitionTime.Time
	}
	if time.Since(last) < c.m.opts.NodeMonitorGracePeriod {
		return nil
	}
	cp := *n
	cp.Status.Conditions = append([]api.Condition(nil), n.Status.Conditions...)
	api.SetCondition(&cp.Status.Conditions, api.Condition{
		Type: api.NodeReady, Status: api.ConditionUnknown, Reason: "NodeStatusUnknown",
		Message: "Agent stopped posting node status.", LastHeartbeatTime: ready.LastHeartbeatTime,
	})
	updated, err := c.m.st.Update(ctx, &cp)
	if errors.Is(err, api.ErrConflict) {
		return nil // a fresh heartbeat won the race
	}
	if err != nil {
		return fmt.Errorf("mark node %s unknown: %w", n.Name, err)
	}
	c.m.nodes.Assume(updated)
	c.m.log.Warn("node stopped heartbeating", "node", n.Name, "last", last)
	c.m.events.Eventf(n, api.EventNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", n.Name)
	for _, o := range c.m.pods.List(func(o api.Object) bool { return o.(*api.Pod).Spec.NodeName == n.Name }) {
		p := o.(*api.Pod)
		if !p.IsReady() {
			continue
		}
		pc := *p
		pc.Status.Conditions = append([]api.Condition(nil), p.Status.Conditions...)
		api.SetCondition(&pc.Status.Conditions, api.Condition{Type: api.PodReady, Status: api.ConditionFalse, Reason: "NodeNotReady"})
		if up, err := c.m.st.Update(ctx, &pc); err == nil {
			c.m.pods.Assume(up)
		}
	}
	return nil
}

// syncUnreachableTaints keeps the unreachable taints on a node exactly
// while it is not Ready: NoSchedule keeps new pods away, NoExecute lets the
// taint eviction controller move pods after their toleration (300s by
// default) so their controllers replace them elsewhere.
func (c *nodeLifecycleController) syncUnreachableTaints(ctx context.Context, n *api.Node) error {
	ready := api.FindCondition(n.Status.Conditions, api.NodeReady)
	want := ready != nil && ready.Status != api.ConditionTrue
	var kept []api.Taint
	has := map[string]bool{}
	for _, t := range n.Spec.Taints {
		if t.Key == api.TaintNodeUnreachable {
			if !want {
				continue
			}
			has[t.Effect] = true
		}
		kept = append(kept, t)
	}
	if want {
		for _, eff := range []string{api.TaintNoSchedule, api.TaintNoExecute} {
			if !has[eff] {
				kept = append(kept, api.Taint{Key: api.TaintNodeUnreachable, Effect: eff, TimeAdded: api.Now()})
			}
		}
	}
	if len(kept) == len(n.Spec.Taints) {
		return nil
	}
	cp := *n
	cp.Spec.Taints = kept
	updated, err := c.m.st.Update(ctx, &cp)
	if errors.Is(err, api.ErrConflict) {
		c.queue.AddAfter(Key(n), 100*time.Millisecond)
		return nil
	}
	if err != nil {
		return fmt.Errorf("taint node %s: %w", n.Name, err)
	}
	c.m.nodes.Assume(updated)
	return nil
}
