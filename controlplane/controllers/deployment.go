package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	"github.com/flotilla-edge/flotilla/api"
)

// Labels and annotations the deployment controller maintains.
const (
	PodTemplateHashLabel = "pod-template-hash"
	RevisionAnnotation   = "deployment.flotilla.dev/revision"
)

// deploymentController turns a Deployment into ReplicaSets, one per pod
// template, named by the template's hash; the current one gets the
// replicas, older ones are scaled to zero and pruned to
// revisionHistoryLimit.
type deploymentController struct {
	m     *Manager
	queue *Queue
}

func newDeploymentController(m *Manager) *controller {
	c := &deploymentController{m: m, queue: newQueue()}
	m.rs.OnChange(enqueueOwner(c.queue, "Deployment"))
	m.deploys.OnChange(enqueueSelf(c.queue))
	return &controller{name: "deployment", workers: 2, queue: c.queue, reconcile: c.reconcile, all: m.keysOf("Deployment")}
}

// TemplateHash names a pod template: equal templates, equal names.
func TemplateHash(t *api.PodTemplateSpec) string {
	b, _ := json.Marshal(t)
	h := fnv.New32a()
	_, _ = h.Write(b)
	v := h.Sum32()
	out := make([]byte, 0, 10)
	for v > 0 || len(out) == 0 {
		out = append(out, suffixAlphabet[v%uint32(len(suffixAlphabet))])
		v /= uint32(len(suffixAlphabet))
	}
	return string(out)
}

// suffixAlphabet avoids vowels so generated names never spell words.
const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func (c *deploymentController) reconcile(ctx context.Context, key string) error {
	obj := c.m.deploys.Get(key)
	if obj == nil {
		return nil
	}
	d := obj.(*api.Deployment)
	var owned []*api.ReplicaSet
	for _, o := range c.m.rs.List(func(o api.Object) bool {
		return o.GetMeta().Namespace == d.Namespace && api.IsControlledBy(o.GetMeta(), d.UID)
	}) {
		owned = append(owned, o.(*api.ReplicaSet))
	}
	hash := TemplateHash(&d.Spec.Template)
	var current *api.ReplicaSet
	var old []*api.ReplicaSet
	for _, rs := range owned {
		if rs.Labels[PodTemplateHashLabel] == hash {
			current = rs
		} else {
			old = append(old, rs)
		}
	}
	want := *d.Spec.Replicas
	if current == nil && !d.Spec.Paused {
		rs, err := c.createReplicaSet(ctx, d, hash, nextRevision(owned), want)
		if err != nil {
			return err
		}
		current = rs
	}
	if current != nil && *current.Spec.Replicas != want {
		if err := c.scale(ctx, current, want); err != nil {
			return err
		}
	}
	if current != nil {
		for _, rs := range old {
			if *rs.Spec.Replicas != 0 {
				if err := c.scale(ctx, rs, 0); err != nil {
					return err
				}
			}
		}
	}
	if err := c.prune(ctx, d, old); err != nil {
		return err
	}
	return c.updateStatus(ctx, d, current, owned)
}

func nextRevision(rss []*api.ReplicaSet) int {
	max := 0
	for _, rs := range rss {
		if n, err := strconv.Atoi(rs.Annotations[RevisionAnnotation]); err == nil && n > max {
			max = n
		}
	}
	return max + 1
}

func (c *deploymentController) createReplicaSet(ctx context.Context, d *api.Deployment, hash string, revision int, replicas int32) (*api.ReplicaSet, error) {
	tpl := d.Spec.Template
	tpl.Labels = copyMap(tpl.Labels)
	if tpl.Labels == nil {
		tpl.Labels = map[string]string{}
	}
	tpl.Labels[PodTemplateHashLabel] = hash
	sel := &api.LabelSelector{MatchLabels: copyMap(d.Spec.Selector.MatchLabels), MatchExpressions: d.Spec.Selector.MatchExpressions}
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[PodTemplateHashLabel] = hash
	labels := copyMap(tpl.Labels)
	rs := &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{
			Name:        d.Name + "-" + hash,
			Namespace:   d.Namespace,
			Labels:      labels,
			Annotations: map[string]string{RevisionAnnotation: strconv.Itoa(revision)},
			OwnerReferences: []api.OwnerReference{{
				APIVersion: api.Version, Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: true,
			}},
		},
		Spec: api.ReplicaSetSpec{Replicas: api.Int32(replicas), Selector: sel, Template: tpl},
	}
	created, err := c.m.st.Create(ctx, rs)
	if errors.Is(err, api.ErrAlreadyExists) {
		return nil, fmt.Errorf("replicaset %s/%s exists but is not in the cache yet: %w", d.Namespace, rs.Name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("create replicaset for deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	c.m.rs.Assume(created)
	c.m.events.Eventf(d, api.EventNormal, "ScalingReplicaSet", "Scaled up replica set %s to %d", rs.Name, replicas)
	return created.(*api.ReplicaSet), nil
}

func (c *deploymentController) scale(ctx context.Context, rs *api.ReplicaSet, n int32) error {
	cp := *rs
	cp.Spec.Replicas = api.Int32(n)
	updated, err := c.m.st.Update(ctx, &cp)
	if err != nil {
		return fmt.Errorf("scale replicaset %s/%s to %d: %w", rs.Namespace, rs.Name, n, err)
	}
	c.m.rs.Assume(updated)
	if d := c.m.deploys.Get(rs.Namespace + "/" + api.ControllerOf(&rs.ObjectMeta).Name); d != nil {
		verb := "up"
		if n < *rs.Spec.Replicas {
			verb = "down"
		}
		c.m.events.Eventf(d, api.EventNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", verb, rs.Name, *rs.Spec.Replicas, n)
	}
	return nil
}

// prune deletes the oldest scaled-down ReplicaSets beyond the history limit.
func (c *deploymentController) prune(ctx context.Context, d *api.Deployment, old []*api.ReplicaSet) error {
	limit := 10
	if d.Spec.RevisionHistoryLimit != nil {
		limit = int(*d.Spec.RevisionHistoryLimit)
	}
	var idle []*api.ReplicaSet
	for _, rs := range old {
		if *rs.Spec.Replicas == 0 && rs.Status.Replicas == 0 {
			idle = append(idle, rs)
		}
	}
	if len(idle) <= limit {
		return nil
	}
	sort.Slice(idle, func(i, j int) bool { return revisionOf(idle[i]) < revisionOf(idle[j]) })
	for _, rs := range idle[:len(idle)-limit] {
		if err := c.m.st.Delete(ctx, "ReplicaSet", rs.Namespace, rs.Name, ""); err != nil && !errors.Is(err, api.ErrNotFound) {
			return fmt.Errorf("prune replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
		}
		c.m.rs.AssumeDeleted(rs)
	}
	return nil
}

func revisionOf(rs *api.ReplicaSet) int {
	n, _ := strconv.Atoi(rs.Annotations[RevisionAnnotation])
	return n
}

func (c *deploymentController) updateStatus(ctx context.Context, d *api.Deployment, current *api.ReplicaSet, owned []*api.ReplicaSet) error {
	st := d.Status
	st.ObservedGeneration = d.Generation
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas, st.UpdatedReplicas = 0, 0, 0, 0
	for _, rs := range owned {
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if current != nil {
		st.UpdatedReplicas = current.Status.Replicas
	}
	st.UnavailableReplicas = max(0, *d.Spec.Replicas-st.AvailableReplicas)
	st.Conditions = append([]api.Condition(nil), d.Status.Conditions...)
	avail := api.Condition{Type: "Available", Status: api.ConditionTrue, Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability."}
	if st.AvailableReplicas < *d.Spec.Replicas {
		avail = api.Condition{Type: "Available", Status: api.ConditionFalse, Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability."}
	}
	changed := api.SetCondition(&st.Conditions, avail)
	if !changed && statusEqual(st, d.Status) {
		return nil
	}
	cp := *d
	cp.Status = st
	updated, err := c.m.st.Update(ctx, &cp)
	if err != nil {
		return fmt.Errorf("update deployment %s/%s status: %w", d.Namespace, d.Name, err)
	}
	c.m.deploys.Assume(updated)
	return nil
}

func statusEqual(a, b api.DeploymentStatus) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
