package controllers

import (
	"context"
	"errors"
	"fmt"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/scheduler"
)

// schedulingController binds pending pods to nodes with the scheduler's
// filter and score chain. An unschedulable pod stays Pending with a
// PodScheduled=False condition that says why, and is retried when nodes
// or pods change.
type schedulingController struct {
	m     *Manager
	sched *scheduler.Scheduler
	queue *Queue
}

func newSchedulingController(m *Manager) *controller {
	claims := m.cache("PersistentVolumeClaim")
	imgs := &imageCache{platforms: map[string][]string{}}
	c := &schedulingController{m: m, sched: scheduler.New(scheduler.WithClaimNodes(func(ns, name string) string {
		if o := claims.Get(ns + "/" + name); o != nil {
			return o.(*api.PersistentVolumeClaim).Status.NodeName
		}
		return ""
	}), scheduler.WithImagePlatforms(imgs.lookup)), queue: newQueue()}
	imgs.onChange = c.nodesChanged
	m.background = append(m.background, func(ctx context.Context) { imgs.run(ctx, m.js) })
	m.pods.OnChange(func(old, cur api.Object) {
		if cur != nil && needsScheduling(cur) {
			c.queue.Add(Key(cur))
		}
		if cur == nil {
			c.nodesChanged() // freed capacity may fit a pending pod
		}
	})
	m.nodes.OnChange(func(old, cur api.Object) { c.nodesChanged() })
	return &controller{name: "scheduler", workers: 1, queue: c.queue, reconcile: c.reconcile, all: c.pendingKeys}
}

func needsScheduling(o api.Object) bool {
	p := o.(*api.Pod)
	return p.Spec.NodeName == "" && !p.IsTerminal()
}

func (c *schedulingController) pendingKeys() []string {
	var out []string
	for _, o := range c.m.pods.List(needsScheduling) {
		out = append(out, Key(o))
	}
	return out
}

// nodesChanged retries every pending pod: a node joined, left or freed room.
func (c *schedulingController) nodesChanged() {
	for _, k := range c.pendingKeys() {
		c.queue.Add(k)
	}
}

// nodeInfos builds the scheduler's view: every node with the requests of
// the pods already bound to it.
func (c *schedulingController) nodeInfos() []*scheduler.NodeInfo {
	byName := map[string]*scheduler.NodeInfo{}
	var out []*scheduler.NodeInfo
	for _, o := range c.m.nodes.List(nil) {
		ni := scheduler.NewNodeInfo(o.(*api.Node))
		byName[o.GetMeta().Name] = ni
		out = append(out, ni)
	}
	for _, o := range c.m.pods.List(nil) {
		p := o.(*api.Pod)
		if p.Spec.NodeName == "" || p.IsTerminal() {
			continue
		}
		if ni := byName[p.Spec.NodeName]; ni != nil {
			ni.AddPod(p)
		}
	}
	return out
}

func (c *schedulingController) reconcile(ctx context.Context, key string) error {
	obj := c.m.pods.Get(key)
	if obj == nil || !needsScheduling(obj) {
		return nil
	}
	pod := obj.(*api.Pod)
	target, err := c.sched.Schedule(pod, c.nodeInfos())
	cp := *pod
	cp.Status.Conditions = append([]api.Condition(nil), pod.Status.Conditions...)
	var fit *scheduler.FitError
	if errors.As(err, &fit) {
		changed := api.SetCondition(&cp.Status.Conditions, api.Condition{
			Type: api.PodScheduled, Status: api.ConditionFalse, Reason: "Unschedulable", Message: fit.Error(),
		})
		if changed {
			if updated, err := c.m.st.Update(ctx, &cp); err == nil {
				c.m.pods.Assume(updated)
			} else if !errors.Is(err, api.ErrNotFound) {
				return fmt.Errorf("mark %s unschedulable: %w", key, err)
			}
			c.m.events.Eventf(pod, api.EventWarning, "FailedScheduling", "%s", fit.Error())
		}
		return nil // retried when nodes or pods change
	}
	if err != nil {
		return fmt.Errorf("schedule %s: %w", key, err)
	}
	node := target.Node.Name
	cp.Spec.NodeName = node
	cp.Status.HostIP = target.Node.InternalIP()
	api.SetCondition(&cp.Status.Conditions, api.Condition{Type: api.PodScheduled, Status: api.ConditionTrue})
	updated, err := c.m.st.Update(ctx, &cp)
	if errors.Is(err, api.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bind %s to %s: %w", key, node, err)
	}
	c.m.pods.Assume(updated)
	c.m.events.Eventf(pod, api.EventNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
	return nil
}
