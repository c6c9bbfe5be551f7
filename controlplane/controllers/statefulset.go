package controllers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// StatefulSetPodNameLabel carries a StatefulSet pod's own name, so a
// Service can select a single replica.
const StatefulSetPodNameLabel = "statefulset.kubernetes.io/pod-name"

// statefulSetController keeps pods NAME-0..NAME-(N-1) with stable names,
// hostnames and claims. With OrderedReady it creates ordinal i only once
// 0..i-1 are Running and Ready and removes the highest ordinal first, one
// at a time; with Parallel it does both at once. A rolling update replaces
// ordinals >= partition from the highest down, one at a time, each after
// the previous is Ready again.
//
// Claims (<template>-<set>-<ordinal>) are created before the pod and never
// deleted, as in Kubernetes: a scaled-down replica finds its data again
// when it comes back. Where the data lives is the pvcBinding controller's
// and the scheduler's VolumeNode filter's business.
type statefulSetController struct {
	m     *Manager
	sets  *Cache
	pvcs  *Cache
	revs  *Cache
	queue *Queue
}

func newStatefulSetController(m *Manager) *controller {
	c := &statefulSetController{m: m, sets: m.cache("StatefulSet"), pvcs: m.cache("PersistentVolumeClaim"), revs: m.cache("ControllerRevision"), queue: newQueue()}
	c.sets.OnChange(enqueueSelf(c.queue))
	m.pods.OnChange(enqueueOwner(c.queue, "StatefulSet"))
	return &controller{name: "statefulset", workers: 2, queue: c.queue, reconcile: c.reconcile, all: m.keysOf("StatefulSet")}
}

// ordinalOf parses NAME-<ordinal>; -1 when the pod is not named so.
func ordinalOf(set, pod string) int {
	s, ok := strings.CutPrefix(pod, set+"-")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || strconv.Itoa(i) != s {
		return -1
	}
	return i
}

func claimName(tpl, set string, ordinal int) string {
	return fmt.Sprintf("%s-%s-%d", tpl, set, ordinal)
}

func runningAndReady(p *api.Pod) bool { return p.Status.Phase == api.PodRunning && p.IsReady() }

func (c *statefulSetController) reconcile(ctx context.Context, key string) error {
	obj := c.sets.Get(key)
	if obj == nil {
		return nil // the garbage collector removes its pods, never its claims
	}
	set := obj.(*api.StatefulSet)
	replicas := int(*set.Spec.Replicas)
	updateRev := set.Name + "-" + revisionHash(&set.Spec.Template)
	currentRev := set.Status.CurrentRevision
	if currentRev == "" {
		currentRev = updateRev
	}
	ordered := set.Spec.PodManagementPolicy != api.ParallelPodManagement
	if err := c.ensureRevision(ctx, set, updateRev); err != nil {
		return err
	}

	byOrdinal := map[int]*api.Pod{}
	var condemned []*api.Pod // ordinal >= replicas, highest first
	for _, p := range c.m.ownedPods(set.Namespace, set.UID) {
		i := ordinalOf(set.Name, p.Name)
		switch {
		case i < 0:
			// Not a name this controller makes: not one of ours to keep.
			if err := c.m.deletePod(ctx, p); err != nil {
				return err
			}
		case p.IsTerminal():
			// A replica that exited is made again under the same name.
			if err := c.m.deletePod(ctx, p); err != nil {
				return err
			}
			c.m.events.Eventf(set, api.EventWarning, "RecreatingFailedPod", "StatefulSet %s/%s is recreating %s pod %s", set.Namespace, set.Name, p.Status.Phase, p.Name)
		case i >= replicas:
			condemned = append(condemned, p)
		default:
			byOrdinal[i] = p
		}
	}
	sortByOrdinalDesc(set.Name, condemned)

	// Scale up (and replace missing replicas).
	for i := 0; i < replicas; i++ {
		p := byOrdinal[i]
		if p == nil {
			rev := updateRev
			if i < partition(set) {
				rev = currentRev
			}
			created, err := c.createReplica(ctx, set, i, rev, updateRev, byOrdinal)
			if err != nil {
				return err
			}
			byOrdinal[i] = created
			if ordered {
				return c.updateStatus(ctx, set, byOrdinal, condemned, currentRev, updateRev)
			}
			continue
		}
		if ordered && !runningAndReady(p) {
			// Ordinal i+1 waits for i.
			return c.updateStatus(ctx, set, byOrdinal, condemned, currentRev, updateRev)
		}
	}

	// Scale down, highest ordinal first.
	if len(condemned) > 0 {
		victims := condemned
		if ordered {
			victims = condemned[:1]
		}
		for _, p := range victims {
			if err := c.m.deletePod(ctx, p); err != nil {
				return err
			}
			c.m.events.Eventf(set, api.EventNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful", p.Name, set.Name)
		}
		if ordered {
			// The next one goes when this deletion's event comes back.
			return c.updateStatus(ctx, set, byOrdinal, condemned[1:], currentRev, updateRev)
		}
		condemned = nil
	}

	if set.Spec.UpdateStrategy.Type == api.RollingUpdateStrategy {
		if err := c.rollingUpdate(ctx, set, byOrdinal, replicas, updateRev); err != nil {
			return err
		}
	}
	return c.updateStatus(ctx, set, byOrdinal, condemned, currentRev, updateRev)
}

func partition(set *api.StatefulSet) int {
	if ru := set.Spec.UpdateStrategy.RollingUpdate; set.Spec.UpdateStrategy.Type == api.RollingUpdateStrategy && ru != nil && ru.Partition != nil {
		return int(*ru.Partition)
	}
	return 0
}

// rollingUpdate deletes the highest ordinal >= partition still on an old
// revision, but only while every replica is Running and Ready: the
// replacement is made by the next reconcile, and the one after waits for it.
func (c *statefulSetController) rollingUpdate(ctx context.Context, set *api.StatefulSet, byOrdinal map[int]*api.Pod, replicas int, updateRev string) error {
	for i := 0; i < replicas; i++ {
		if p := byOrdinal[i]; p == nil || !runningAndReady(p) {
			return nil
		}
	}
	for i := replicas - 1; i >= partition(set); i-- {
		p := byOrdinal[i]
		if p.Labels[ControllerRevisionHashLabel] == updateRev {
			continue
		}
		if err := c.m.deletePod(ctx, p); err != nil {
			return err
		}
		delete(byOrdinal, i)
		c.m.events.Eventf(set, api.EventNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s for update to revision %s", p.Name, set.Name, updateRev)
		return nil
	}
	return nil
}

// createReplica makes the claims of ordinal i, then its pod at revision
// rev. An ordinal below the partition keeps the current revision, whose
// template comes from its ControllerRevision (or, were that gone, a
// sibling still on it); failing both it gets the update revision.
func (c *statefulSetController) createReplica(ctx context.Context, set *api.StatefulSet, i int, rev, updateRev string, byOrdinal map[int]*api.Pod) (*api.Pod, error) {
	tpl := set.Spec.Template
	if rev != updateRev {
		found := false
		if o := c.revs.Get(set.Namespace + "/" + rev); o != nil {
			tpl, found = o.(*api.ControllerRevision).Template, true
		}
		for _, sib := range byOrdinal {
			if !found && sib != nil && sib.Labels[ControllerRevisionHashLabel] == rev {
				tpl, found = templateFromPod(sib), true
			}
		}
		if !found {
			rev = updateRev
		}
	}
	for _, ct := range set.Spec.VolumeClaimTemplates {
		if err := c.ensureClaim(ctx, set, &ct, i); err != nil {
			return nil, err
		}
	}
	name := fmt.Sprintf("%s-%d", set.Name, i)
	pod := newWorkloadPod(&tpl, set.Namespace, "StatefulSet", set.Name, set.UID, rev)
	pod.Name = name
	pod.Labels[StatefulSetPodNameLabel] = name
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = set.Spec.ServiceName
	// Volumes named after a claim template are (re)pointed at this
	// ordinal's claim; a sibling's template carries the sibling's claims.
	for _, ct := range set.Spec.VolumeClaimTemplates {
		v := api.Volume{Name: ct.Name, PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: claimName(ct.Name, set.Name, i)}}
		replaced := false
		for j := range pod.Spec.Volumes {
			if pod.Spec.Volumes[j].Name == ct.Name {
				pod.Spec.Volumes[j], replaced = v, true
			}
		}
		if !replaced {
			pod.Spec.Volumes = append(pod.Spec.Volumes, v)
		}
	}
	created, err := c.m.st.Create(ctx, pod)
	if err != nil {
		// AlreadyExists means our cache lags; the retry sees the pod.
		return nil, fmt.Errorf("create pod %s/%s: %w", set.Namespace, name, err)
	}
	c.m.pods.Assume(created)
	c.m.events.Eventf(set, api.EventNormal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", name, set.Name)
	return created.(*api.Pod), nil
}

// templateFromPod recovers the template a pod was stamped from.
func templateFromPod(p *api.Pod) api.PodTemplateSpec {
	labels := copyMap(p.Labels)
	delete(labels, StatefulSetPodNameLabel)
	delete(labels, ControllerRevisionHashLabel)
	spec := p.Spec
	spec.NodeName, spec.Hostname, spec.Subdomain = "", "", ""
	spec.Containers = append([]api.Container(nil), p.Spec.Containers...)
	spec.Volumes = append([]api.Volume(nil), p.Spec.Volumes...)
	return api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: labels, Annotations: copyMap(p.Annotations)}, Spec: spec}
}

func (c *statefulSetController) ensureClaim(ctx context.Context, set *api.StatefulSet, ct *api.PersistentVolumeClaim, i int) error {
	name := claimName(ct.Name, set.Name, i)
	if c.pvcs.Get(set.Namespace+"/"+name) != nil {
		return nil
	}
	labels := copyMap(set.Spec.Template.Labels)
	pvc := &api.PersistentVolumeClaim{
		// No owner reference: claims outlive scale-down and deletion.
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: set.Namespace, Labels: labels, Annotations: copyMap(ct.Annotations)},
		Spec:       ct.Spec,
	}
	created, err := c.m.st.Create(ctx, pvc)
	if errors.Is(err, api.ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create claim %s/%s: %w", set.Namespace, name, err)
	}
	c.pvcs.Assume(created)
	c.m.events.Eventf(set, api.EventNormal, "SuccessfulCreate", "create Claim %s for Pod %s-%d in StatefulSet %s success", name, set.Name, i, set.Name)
	return nil
}

func sortByOrdinalDesc(set string, pods []*api.Pod) {
	for i := 1; i < len(pods); i++ {
		for j := i; j > 0 && ordinalOf(set, pods[j].Name) > ordinalOf(set, pods[j-1].Name); j-- {
			pods[j], pods[j-1] = pods[j-1], pods[j]
		}
	}
}

func (c *statefulSetController) updateStatus(ctx context.Context, set *api.StatefulSet, byOrdinal map[int]*api.Pod, condemned []*api.Pod, currentRev, updateRev string) error {
	st := api.StatefulSetStatus{ObservedGeneration: set.Generation, CurrentRevision: currentRev, UpdateRevision: updateRev}
	now := time.Now()
	var recheck time.Duration
	all := append([]*api.Pod(nil), condemned...)
	for _, p := range byOrdinal {
		if p != nil {
			all = append(all, p)
		}
	}
	for _, p := range all {
		st.Replicas++
		if p.IsReady() {
			st.ReadyReplicas++
		}
		if ok, wait := podAvailable(p, set.Spec.MinReadySeconds, now); ok {
			st.AvailableReplicas++
		} else if wait > 0 && (recheck == 0 || wait < recheck) {
			recheck = wait
		}
		if p.Labels[ControllerRevisionHashLabel] == currentRev {
			st.CurrentReplicas++
		}
		if p.Labels[ControllerRevisionHashLabel] == updateRev {
			st.UpdatedReplicas++
		}
	}
	// The update is complete when every replica runs the new revision and
	// is ready: it becomes the current one.
	if int(st.UpdatedReplicas) == int(*set.Spec.Replicas) && st.ReadyReplicas == st.UpdatedReplicas && len(condemned) == 0 {
		st.CurrentRevision = updateRev
		st.CurrentReplicas = st.UpdatedReplicas
	}
	if recheck > 0 {
		c.queue.AddAfter(Key(set), recheck)
	}
	if st == set.Status {
		return nil
	}
	cp := *set
	cp.Status = st
	updated, err := c.m.st.Update(ctx, &cp)
	if errors.Is(err, api.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update statefulset %s/%s status: %w", set.Namespace, set.Name, err)
	}
	c.sets.Assume(updated)
	return nil
}
