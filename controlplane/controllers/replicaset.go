package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// replicaSetController keeps spec.replicas pods of a ReplicaSet alive:
// it replaces deleted and failed pods and removes extras.
type replicaSetController struct {
	m     *Manager
	queue *Queue
}

// ownedPods returns the pods a controller owner with uid controls.
func newReplicaSetController(m *Manager) *controller {
	c := &replicaSetController{m: m, queue: newQueue()}
	m.pods.OnChange(enqueueOwner(c.queue, "ReplicaSet"))
	m.rs.OnChange(enqueueSelf(c.queue))
	return &controller{name: "replicaset", workers: 2, queue: c.queue, reconcile: c.reconcile, all: m.keysOf("ReplicaSet")}
}

func (m *Manager) ownedPods(ns, uid string) []*api.Pod {
	var out []*api.Pod
	for _, o := range m.pods.List(func(o api.Object) bool {
		return o.GetMeta().Namespace == ns && api.IsControlledBy(o.GetMeta(), uid)
	}) {
		out = append(out, o.(*api.Pod))
	}
	return out
}

func (c *replicaSetController) reconcile(ctx context.Context, key string) error {
	obj := c.m.rs.Get(key)
	if obj == nil {
		return nil // gone: the garbage collector removes its pods
	}
	rs := obj.(*api.ReplicaSet)
	pods := c.m.ownedPods(rs.Namespace, rs.UID)
	var active []*api.Pod
	for _, p := range pods {
		if p.IsTerminal() {
			// A finished pod of a ReplicaSet does not count; make room for
			// its replacement.
			if err := c.m.deletePod(ctx, p); err != nil {
				return err
			}
			continue
		}
		active = append(active, p)
	}
	want := int(*rs.Spec.Replicas)
	switch diff := want - len(active); {
	case diff > 0:
		for i := 0; i < diff; i++ {
			if err := c.createPod(ctx, rs); err != nil {
				return err
			}
		}
	case diff < 0:
		sort.Slice(active, func(i, j int) bool {
			return deletionRank(active[i]) < deletionRank(active[j]) || (deletionRank(active[i]) == deletionRank(active[j]) && active[i].CreationTimestamp.After(active[j].CreationTimestamp.Time))
		})
		for _, p := range active[:-diff] {
			if err := c.m.deletePod(ctx, p); err != nil {
				return err
			}
			c.m.events.Eventf(rs, api.EventNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		}
		active = active[-diff:]
	}
	return c.updateStatus(ctx, rs, active)
}

// deletionRank orders pods for scale-down: unscheduled first, then pending,
// then not ready, then ready.
func deletionRank(p *api.Pod) int {
	switch {
	case p.Spec.NodeName == "":
		return 0
	case p.Status.Phase == api.PodPending:
		return 1
	case !p.IsReady():
		return 2
	}
	return 3
}

func (c *replicaSetController) createPod(ctx context.Context, rs *api.ReplicaSet) error {
	tpl := rs.Spec.Template
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{
			GenerateName: rs.Name + "-",
			Namespace:    rs.Namespace,
			Labels:       copyMap(tpl.Labels),
			Annotations:  copyMap(tpl.Annotations),
			OwnerReferences: []api.OwnerReference{{
				APIVersion: api.Version, Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: true,
			}},
		},
		Spec: tpl.Spec,
	}
	pod.Spec.NodeName = ""
	pod.Spec.Containers = append([]api.Container(nil), tpl.Spec.Containers...)
	created, err := c.m.st.Create(ctx, pod)
	if err != nil {
		return fmt.Errorf("create pod for replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	c.m.pods.Assume(created)
	c.m.events.Eventf(rs, api.EventNormal, "SuccessfulCreate", "Created pod: %s", created.GetMeta().Name)
	return nil
}

// deletePod deletes a pod; one already gone is not an error.
func (m *Manager) deletePod(ctx context.Context, p *api.Pod) error {
	err := m.st.Delete(ctx, "Pod", p.Namespace, p.Name, "")
	if err != nil && !errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	m.pods.AssumeDeleted(p)
	return nil
}

func (c *replicaSetController) updateStatus(ctx context.Context, rs *api.ReplicaSet, active []*api.Pod) error {
	st := api.ReplicaSetStatus{ObservedGeneration: rs.Generation, Replicas: int32(len(active))}
	now := time.Now()
	for _, p := range active {
		if p.IsReady() {
			st.ReadyReplicas++
		}
		// A pod turning available after minReadySeconds makes no event.
		if ok, wait := p.AvailableAt(rs.Spec.MinReadySeconds, now); ok {
			st.AvailableReplicas++
		} else if wait > 0 {
			c.queue.AddAfter(Key(rs), wait)
		}
	}
	if st == rs.Status {
		return nil
	}
	cp := *rs
	cp.Status = st
	updated, err := c.m.st.Update(ctx, &cp)
	if err != nil {
		return fmt.Errorf("update replicaset %s/%s status: %w", rs.Namespace, rs.Name, err)
	}
	c.m.rs.Assume(updated)
	return nil
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
