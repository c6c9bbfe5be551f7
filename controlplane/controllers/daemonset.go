package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/scheduler"
)

// daemonSetController keeps one pod of a DaemonSet on every node that
// matches its template's nodeSelector and whose NoSchedule/NoExecute
// taints the template tolerates. Pods are created already bound (like
// Kubernetes since 1.12 binds them through node affinity, without a
// scheduling round-trip): the assignment controller hands them straight
// to the agent. Node readiness and cordons are not considered, as in
// Kubernetes: a daemon belongs on every matching board.
type daemonSetController struct {
	m     *Manager
	dss   *Cache
	queue *Queue
}

func newDaemonSetController(m *Manager) *controller {
	c := &daemonSetController{m: m, dss: m.cache("DaemonSet"), queue: newQueue()}
	c.dss.OnChange(enqueueSelf(c.queue))
	m.pods.OnChange(enqueueOwner(c.queue, "DaemonSet"))
	// A node joining, leaving, or changing labels or taints may change
	// where every DaemonSet belongs; there are few DaemonSets.
	m.nodes.OnChange(func(old, cur api.Object) {
		if old != nil && cur != nil && !nodePlacementChanged(old.(*api.Node), cur.(*api.Node)) {
			return
		}
		for _, o := range c.dss.List(nil) {
			c.queue.Add(Key(o))
		}
	})
	return &controller{name: "daemonset", workers: 2, queue: c.queue, reconcile: c.reconcile, all: m.keysOf("DaemonSet")}
}

// nodePlacementChanged ignores heartbeats, which change nodes every few
// seconds but never where a daemon belongs.
func nodePlacementChanged(a, b *api.Node) bool {
	return api.FormatLabels(a.Labels) != api.FormatLabels(b.Labels) || fmt.Sprint(a.Spec.Taints) != fmt.Sprint(b.Spec.Taints)
}

// daemonShouldRun reports whether the template belongs on node n.
func daemonShouldRun(spec *api.PodSpec, n *api.Node) bool {
	for k, v := range spec.NodeSelector {
		if got, ok := n.Labels[k]; !ok || got != v {
			return false
		}
	}
	return scheduler.FirstUntolerated(spec.Tolerations, n.Spec.Taints, api.TaintNoSchedule, api.TaintNoExecute) == nil
}

func (c *daemonSetController) reconcile(ctx context.Context, key string) error {
	obj := c.dss.Get(key)
	if obj == nil {
		return nil // the garbage collector removes its pods
	}
	ds := obj.(*api.DaemonSet)
	hash := revisionHash(&ds.Spec.Template)
	byNode := map[string][]*api.Pod{}
	for _, p := range c.m.ownedPods(ds.Namespace, ds.UID) {
		if p.IsTerminal() {
			// Daemons run for good: a finished one is replaced.
			if err := c.m.deletePod(ctx, p); err != nil {
				return err
			}
			continue
		}
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}
	var nodes []*api.Node
	for _, o := range c.m.nodes.List(nil) {
		nodes = append(nodes, o.(*api.Node))
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })

	now := time.Now()
	var errs []error
	var st api.DaemonSetStatus
	st.ObservedGeneration = ds.Generation
	var oldReady, oldNotReady []*api.Pod
	unavailable := 0
	var recheck time.Duration
	want := map[string]bool{}
	for _, n := range nodes {
		pods := byNode[n.Name]
		if !daemonShouldRun(&ds.Spec.Template.Spec, n) {
			if len(pods) > 0 {
				st.NumberMisscheduled++
			}
			for _, p := range pods {
				errs = append(errs, c.deleteDaemon(ctx, ds, p, "node no longer matches"))
			}
			continue
		}
		want[n.Name] = true
		st.DesiredNumberScheduled++
		if len(pods) == 0 {
			unavailable++
			errs = append(errs, c.createDaemon(ctx, ds, n, hash))
			continue
		}
		// Keep the newest revision, then the oldest pod; extras go.
		sort.Slice(pods, func(i, j int) bool {
			ui, uj := pods[i].Labels[ControllerRevisionHashLabel] == hash, pods[j].Labels[ControllerRevisionHashLabel] == hash
			if ui != uj {
				return ui
			}
			return pods[i].CreationTimestamp.Before(pods[j].CreationTimestamp.Time)
		})
		for _, p := range pods[1:] {
			errs = append(errs, c.deleteDaemon(ctx, ds, p, "more than one daemon on the node"))
		}
		p := pods[0]
		st.CurrentNumberScheduled++
		if p.IsReady() {
			st.NumberReady++
		}
		avail, wait := podAvailable(p, ds.Spec.MinReadySeconds, now)
		if avail {
			st.NumberAvailable++
		} else {
			unavailable++
			if wait > 0 && (recheck == 0 || wait < recheck) {
				recheck = wait
			}
		}
		if p.Labels[ControllerRevisionHashLabel] == hash {
			st.UpdatedNumberScheduled++
		} else if avail {
			oldReady = append(oldReady, p)
		} else {
			oldNotReady = append(oldNotReady, p)
		}
	}
	// Pods on nodes that are gone, or not bound at all, are misscheduled.
	for node, pods := range byNode {
		if want[node] || c.m.nodes.Get(node) != nil {
			continue
		}
		for _, p := range pods {
			errs = append(errs, c.deleteDaemon(ctx, ds, p, "node is gone"))
		}
	}
	if ds.Spec.UpdateStrategy.Type == api.RollingUpdateStrategy {
		errs = append(errs, c.rollingUpdate(ctx, ds, int(st.DesiredNumberScheduled), unavailable, oldReady, oldNotReady))
	}
	if recheck > 0 {
		c.queue.AddAfter(key, recheck)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.updateStatus(ctx, ds, st)
}

// rollingUpdate replaces pods of old revisions while at most
// maxUnavailable nodes lack an available daemon. An old pod that is not
// available anyway is replaced at once: removing it costs nothing.
func (c *daemonSetController) rollingUpdate(ctx context.Context, ds *api.DaemonSet, desired, unavailable int, oldReady, oldNotReady []*api.Pod) error {
	maxUnavailable := 1
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		v, err := ru.MaxUnavailable.ScaledValue(desired, true)
		if err != nil {
			return fmt.Errorf("daemonset %s/%s: maxUnavailable: %w", ds.Namespace, ds.Name, err)
		}
		maxUnavailable = max(1, v)
	}
	var errs []error
	for _, p := range oldNotReady {
		errs = append(errs, c.deleteDaemon(ctx, ds, p, "rolling update"))
	}
	sort.Slice(oldReady, func(i, j int) bool { return oldReady[i].Spec.NodeName < oldReady[j].Spec.NodeName })
	for _, p := range oldReady {
		if unavailable >= maxUnavailable {
			break
		}
		unavailable++
		errs = append(errs, c.deleteDaemon(ctx, ds, p, "rolling update"))
	}
	// The replacements are created by the reconcile that the deletions
	// trigger, once the node has no daemon.
	return errors.Join(errs...)
}

func (c *daemonSetController) createDaemon(ctx context.Context, ds *api.DaemonSet, n *api.Node, hash string) error {
	pod := newWorkloadPod(&ds.Spec.Template, ds.Namespace, "DaemonSet", ds.Name, ds.UID, hash)
	pod.GenerateName = ds.Name + "-"
	pod.Spec.NodeName = n.Name
	pod.Status.HostIP = n.InternalIP()
	api.SetCondition(&pod.Status.Conditions, api.Condition{Type: api.PodScheduled, Status: api.ConditionTrue})
	created, err := c.m.st.Create(ctx, pod)
	if err != nil {
		return fmt.Errorf("create daemon pod of %s/%s on %s: %w", ds.Namespace, ds.Name, n.Name, err)
	}
	c.m.pods.Assume(created)
	c.m.events.Eventf(ds, api.EventNormal, "SuccessfulCreate", "Created pod: %s on node %s", created.GetMeta().Name, n.Name)
	return nil
}

func (c *daemonSetController) deleteDaemon(ctx context.Context, ds *api.DaemonSet, p *api.Pod, why string) error {
	if err := c.m.deletePod(ctx, p); err != nil {
		return err
	}
	c.m.events.Eventf(ds, api.EventNormal, "SuccessfulDelete", "Deleted pod: %s (%s)", p.Name, why)
	return nil
}

func (c *daemonSetController) updateStatus(ctx context.Context, ds *api.DaemonSet, st api.DaemonSetStatus) error {
	if st == ds.Status {
		return nil
	}
	cp := *ds
	cp.Status = st
	updated, err := c.m.st.Update(ctx, &cp)
	if errors.Is(err, api.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update daemonset %s/%s status: %w", ds.Namespace, ds.Name, err)
	}
	c.dss.Assume(updated)
	return nil
}
