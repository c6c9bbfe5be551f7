package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// Labels and annotations the deployment controller maintains.
const (
	PodTemplateHashLabel = "pod-template-hash"
	RevisionAnnotation   = "deployment.flotilla.dev/revision"
)

// deploymentController turns a Deployment into ReplicaSets, one per pod
// template, named by the template's hash. The ReplicaSet of the current
// template (the "new" one) grows and the others shrink as the strategy
// allows (RollingUpdate or Recreate); scaled-down ones are kept as history
// up to revisionHistoryLimit, and a template that returns to an older one
// reuses its ReplicaSet, which is how undo works.
type deploymentController struct {
	m     *Manager
	queue *Queue
	now   func() time.Time
}

func newDeploymentController(m *Manager) *controller {
	c := &deploymentController{m: m, queue: newQueue(), now: time.Now}
	m.rs.OnChange(enqueueOwner(c.queue, "Deployment"))
	m.deploys.OnChange(enqueueSelf(c.queue))
	// Pod readiness drives a rollout; going through the ReplicaSet's status
	// would add a write and a watch round trip to every step.
	m.pods.OnChange(c.enqueuePodDeployment)
	return &controller{name: "deployment", workers: 2, queue: c.queue, reconcile: c.reconcile, all: m.keysOf("Deployment")}
}

// enqueuePodDeployment enqueues the deployment owning a changed pod's
// ReplicaSet.
func (c *deploymentController) enqueuePodDeployment(old, cur api.Object) {
	for _, o := range []api.Object{old, cur} {
		if o == nil {
			continue
		}
		ref := api.ControllerOf(o.GetMeta())
		if ref == nil || ref.Kind != "ReplicaSet" {
			continue
		}
		ns := o.GetMeta().Namespace
		rs := c.m.rs.Get(ns + "/" + ref.Name)
		if rs == nil {
			continue
		}
		if d := api.ControllerOf(rs.GetMeta()); d != nil && d.Kind == "Deployment" {
			c.queue.Add(ns + "/" + d.Name)
		}
	}
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

// TemplateWithoutHash is a ReplicaSet's pod template as its deployment had
// it: without the pod-template-hash label. Undo copies it back.
func TemplateWithoutHash(t api.PodTemplateSpec) api.PodTemplateSpec {
	t.Labels = copyMap(t.Labels)
	delete(t.Labels, PodTemplateHashLabel)
	if len(t.Labels) == 0 {
		t.Labels = nil
	}
	return t
}

// rolloutState is one reconcile's view of a deployment's ReplicaSets and
// their pods.
type rolloutState struct {
	d      *api.Deployment
	hash   string
	new    *api.ReplicaSet
	old    []*api.ReplicaSet // oldest revision first
	counts map[string]rsCount
	// wait is the soonest a ready pod becomes available (0: none pending).
	wait time.Duration
	// created is set when this reconcile created the new ReplicaSet.
	created bool
}

func (c *deploymentController) reconcile(ctx context.Context, key string) error {
	obj := c.m.deploys.Get(key)
	if obj == nil {
		return nil
	}
	d := obj.(*api.Deployment)
	s := c.observe(d)
	if s.new != nil {
		if err := c.syncNewReplicaSetMeta(ctx, s); err != nil {
			return err
		}
	}
	desired := int(*d.Spec.Replicas)
	var err error
	switch {
	case d.Spec.Paused:
		// A paused deployment does not roll out; scaling still applies.
		err = c.scalePaused(ctx, s, desired)
	case d.Spec.Strategy.Type == api.RecreateStrategy:
		err = c.recreate(ctx, s, desired)
	default:
		err = c.rolling(ctx, s, desired)
	}
	if err != nil {
		return err
	}
	if err := c.prune(ctx, s); err != nil {
		return err
	}
	after := c.observe(d)
	after.created = s.created
	return c.updateStatus(ctx, key, after)
}

// observe reads the deployment's ReplicaSets and pods from the caches.
func (c *deploymentController) observe(d *api.Deployment) *rolloutState {
	s := &rolloutState{d: d, hash: TemplateHash(&d.Spec.Template), counts: map[string]rsCount{}}
	now := c.now()
	for _, o := range c.m.rs.List(func(o api.Object) bool {
		return o.GetMeta().Namespace == d.Namespace && api.IsControlledBy(o.GetMeta(), d.UID)
	}) {
		rs := o.(*api.ReplicaSet)
		if s.new == nil && c.isCurrent(rs, s.hash) {
			s.new = rs
		} else {
			s.old = append(s.old, rs)
		}
		n := rsCount{spec: int(*rs.Spec.Replicas)}
		for _, p := range c.m.ownedPods(rs.Namespace, rs.UID) {
			if p.IsTerminal() {
				continue
			}
			n.pods++
			if p.IsReady() {
				n.ready++
			}
			ok, wait := p.AvailableAt(d.Spec.MinReadySeconds, now)
			if ok {
				n.available++
			} else if wait > 0 && (s.wait == 0 || wait < s.wait) {
				s.wait = wait
			}
		}
		s.counts[rs.UID] = n
	}
	sort.Slice(s.old, func(i, j int) bool { return revisionOf(s.old[i]) < revisionOf(s.old[j]) })
	return s
}

// isCurrent reports whether rs runs the deployment's current template.
func (c *deploymentController) isCurrent(rs *api.ReplicaSet, hash string) bool {
	if rs.Labels[PodTemplateHashLabel] == hash {
		return true
	}
	t := TemplateWithoutHash(rs.Spec.Template)
	return TemplateHash(&t) == hash
}

func (s *rolloutState) oldCounts() []rsCount {
	out := make([]rsCount, len(s.old))
	for i, rs := range s.old {
		out[i] = s.counts[rs.UID]
	}
	return out
}

func (s *rolloutState) all() []rsCount {
	out := s.oldCounts()
	if s.new != nil {
		out = append(out, s.counts[s.new.UID])
	}
	return out
}

// rolling takes one step of a rolling update: grow the new ReplicaSet within
// maxSurge, shrink old ones within maxUnavailable. Each step's writes change
// pods, whose events bring the next step.
func (c *deploymentController) rolling(ctx context.Context, s *rolloutState, desired int) error {
	surge, unavailable, err := s.d.Spec.Fenceposts()
	if err != nil {
		return fmt.Errorf("deployment %s/%s: %w", s.d.Namespace, s.d.Name, err)
	}
	if s.new == nil {
		n := newReplicaSetTarget(desired, surge, rsCount{}, s.all())
		if err := c.createReplicaSet(ctx, s, n); err != nil {
			return err
		}
	} else {
		cur := s.counts[s.new.UID]
		if n := newReplicaSetTarget(desired, surge, cur, s.all()); n != cur.spec {
			if err := c.scale(ctx, s.new, int32(n)); err != nil {
				return err
			}
			cur.spec = n
			s.counts[s.new.UID] = cur
		}
	}
	targets := oldReplicaSetTargets(desired, unavailable, s.counts[s.new.UID], s.oldCounts())
	for i, rs := range s.old {
		if targets[i] != int(*rs.Spec.Replicas) {
			if err := c.scale(ctx, rs, int32(targets[i])); err != nil {
				return err
			}
		}
	}
	return nil
}

// recreate scales every old ReplicaSet to zero, waits for their pods to be
// gone, then brings up the new one.
func (c *deploymentController) recreate(ctx context.Context, s *rolloutState, desired int) error {
	oldPods := 0
	for _, rs := range s.old {
		if *rs.Spec.Replicas != 0 {
			if err := c.scale(ctx, rs, 0); err != nil {
				return err
			}
		}
		oldPods += s.counts[rs.UID].pods
	}
	if oldPods > 0 {
		// Nothing new may start before the old pods are gone; their
		// deletion events bring the next reconcile.
		if s.new == nil {
			return c.createReplicaSet(ctx, s, 0)
		}
		return nil
	}
	if s.new == nil {
		return c.createReplicaSet(ctx, s, desired)
	}
	if int(*s.new.Spec.Replicas) != desired {
		return c.scale(ctx, s.new, int32(desired))
	}
	return nil
}

// scalePaused applies replica changes to a paused deployment without
// rolling out: one active ReplicaSet takes the new count; with several (a
// rollout paused midway) the newest grows to cover a shortfall and the
// oldest shrink to stay within desired+maxSurge.
func (c *deploymentController) scalePaused(ctx context.Context, s *rolloutState, desired int) error {
	rss := append([]*api.ReplicaSet(nil), s.old...)
	if s.new != nil {
		rss = append(rss, s.new) // newest last
	}
	var active []*api.ReplicaSet
	sum := 0
	for _, rs := range rss {
		if *rs.Spec.Replicas > 0 {
			active = append(active, rs)
			sum += int(*rs.Spec.Replicas)
		}
	}
	switch {
	case len(active) == 0 && s.new != nil && desired > 0:
		return c.scale(ctx, s.new, int32(desired))
	case len(active) == 1:
		if int(*active[0].Spec.Replicas) != desired {
			return c.scale(ctx, active[0], int32(desired))
		}
		return nil
	case len(active) == 0:
		return nil
	}
	surge, _, err := s.d.Spec.Fenceposts()
	if err != nil {
		return fmt.Errorf("deployment %s/%s: %w", s.d.Namespace, s.d.Name, err)
	}
	if sum < desired {
		newest := active[len(active)-1]
		return c.scale(ctx, newest, *newest.Spec.Replicas+int32(desired-sum))
	}
	excess := sum - desired - surge
	for _, rs := range active {
		if excess <= 0 {
			break
		}
		n := min(int(*rs.Spec.Replicas), excess)
		if err := c.scale(ctx, rs, *rs.Spec.Replicas-int32(n)); err != nil {
			return err
		}
		excess -= n
	}
	return nil
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

func (c *deploymentController) createReplicaSet(ctx context.Context, s *rolloutState, replicas int) error {
	d := s.d
	hash := s.hash
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
	annotations := map[string]string{RevisionAnnotation: strconv.Itoa(nextRevision(s.old))}
	if cause := d.Annotations[api.ChangeCauseAnnotation]; cause != "" {
		annotations[api.ChangeCauseAnnotation] = cause
	}
	rs := &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{
			Name:        d.Name + "-" + hash,
			Namespace:   d.Namespace,
			Labels:      copyMap(tpl.Labels),
			Annotations: annotations,
			OwnerReferences: []api.OwnerReference{{
				APIVersion: api.Version, Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: true,
			}},
		},
		Spec: api.ReplicaSetSpec{Replicas: api.Int32(int32(replicas)), Selector: sel, Template: tpl, MinReadySeconds: d.Spec.MinReadySeconds},
	}
	created, err := c.m.st.Create(ctx, rs)
	if errors.Is(err, api.ErrAlreadyExists) {
		return fmt.Errorf("replicaset %s/%s exists but is not in the cache yet: %w", d.Namespace, rs.Name, err)
	}
	if err != nil {
		return fmt.Errorf("create replicaset for deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	c.m.rs.Assume(created)
	c.m.events.Eventf(d, api.EventNormal, "ScalingReplicaSet", "Scaled up replica set %s to %d", rs.Name, replicas)
	s.new, s.created = created.(*api.ReplicaSet), true
	s.counts[s.new.UID] = rsCount{spec: replicas}
	return nil
}

// syncNewReplicaSetMeta keeps the new ReplicaSet's revision the highest (a
// reused old template becomes the latest revision again), its change-cause
// the deployment's, and its minReadySeconds the deployment's.
func (c *deploymentController) syncNewReplicaSetMeta(ctx context.Context, s *rolloutState) error {
	rs := s.new
	rev := revisionOf(rs)
	if next := nextRevision(s.old); rev < next {
		rev = next
	}
	cause := s.d.Annotations[api.ChangeCauseAnnotation]
	if strconv.Itoa(rev) == rs.Annotations[RevisionAnnotation] &&
		(cause == "" || cause == rs.Annotations[api.ChangeCauseAnnotation]) &&
		rs.Spec.MinReadySeconds == s.d.Spec.MinReadySeconds {
		return nil
	}
	cp := *rs
	cp.Annotations = copyMap(rs.Annotations)
	if cp.Annotations == nil {
		cp.Annotations = map[string]string{}
	}
	cp.Annotations[RevisionAnnotation] = strconv.Itoa(rev)
	if cause != "" {
		cp.Annotations[api.ChangeCauseAnnotation] = cause
	}
	cp.Spec.MinReadySeconds = s.d.Spec.MinReadySeconds
	updated, err := c.m.st.Update(ctx, &cp)
	if err != nil {
		return fmt.Errorf("update replicaset %s/%s revision: %w", rs.Namespace, rs.Name, err)
	}
	c.m.rs.Assume(updated)
	s.new = updated.(*api.ReplicaSet)
	return nil
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
func (c *deploymentController) prune(ctx context.Context, s *rolloutState) error {
	limit := 10
	if s.d.Spec.RevisionHistoryLimit != nil {
		limit = int(*s.d.Spec.RevisionHistoryLimit)
	}
	var idle []*api.ReplicaSet
	for _, rs := range s.old {
		if *rs.Spec.Replicas == 0 && s.counts[rs.UID].pods == 0 {
			idle = append(idle, rs)
		}
	}
	if len(idle) <= limit {
		return nil
	}
	// s.old is sorted by revision, oldest first.
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
