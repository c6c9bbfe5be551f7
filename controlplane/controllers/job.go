package controllers

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// jobController runs a Job's pods until spec.completions of them succeed,
// failing the job when its failures pass spec.backoffLimit or its run time
// passes spec.activeDeadlineSeconds, and deleting it ttlSecondsAfterFinished
// after it ends. Pods are never adopted: a job owns exactly the pods whose
// controller reference carries its uid.
type jobController struct {
	m     *Manager
	jobs  *Cache
	queue *Queue
	now   func() time.Time
}

func newJobController(m *Manager) *controller {
	c := &jobController{m: m, jobs: m.cache("Job"), queue: newQueue(), now: time.Now}
	m.pods.OnChange(enqueueOwner(c.queue, "Job"))
	c.jobs.OnChange(enqueueSelf(c.queue))
	return &controller{name: "job", workers: 2, queue: c.queue, reconcile: c.reconcile, all: m.keysOf("Job")}
}

// jobPods is a job's pods by what they tell about its progress.
type jobPods struct {
	active            []*api.Pod
	succeeded, failed int32
	restarts          int32 // container restarts of pods not yet failed
}

func classify(pods []*api.Pod) jobPods {
	var jp jobPods
	for _, p := range pods {
		switch p.Status.Phase {
		case api.PodSucceeded:
			jp.succeeded++
		case api.PodFailed:
			jp.failed++
		default:
			jp.active = append(jp.active, p)
			// Kubernetes counts restarts of the pods still running: a
			// failed pod already counts once.
			for _, cs := range p.Status.ContainerStatuses {
				jp.restarts += cs.RestartCount
			}
		}
	}
	return jp
}

func (c *jobController) reconcile(ctx context.Context, key string) error {
	obj := c.jobs.Get(key)
	if obj == nil {
		return nil // gone: the garbage collector removes its pods
	}
	orig := obj.(*api.Job)
	job := deepCopyJob(orig)
	now := c.now()
	if _, done := job.Finished(); done {
		return c.expire(ctx, key, job, now)
	}
	jp := classify(c.m.ownedPods(job.Namespace, job.UID))
	st := &job.Status
	// Counts never go down: a finished pod deleted by hand still counted.
	st.Succeeded = max(st.Succeeded, jp.succeeded)
	st.Failed = max(st.Failed, jp.failed)
	if st.StartTime.IsZero() {
		st.StartTime = api.Time{Time: now.UTC().Truncate(time.Second)}
	}
	completions, parallelism, backoff := *job.Spec.Completions, *job.Spec.Parallelism, *job.Spec.BackoffLimit

	finish := func(typ, reason, msg string) error {
		// A finished job leaves nothing running (Kubernetes does the same).
		for _, p := range jp.active {
			if err := c.m.deletePod(ctx, p); err != nil {
				return err
			}
		}
		jp.active = nil
		api.SetCondition(&st.Conditions, api.Condition{Type: typ, Status: api.ConditionTrue, Reason: reason, Message: msg})
		if typ == api.JobComplete {
			st.CompletionTime = api.Now()
			c.m.events.Eventf(job, api.EventNormal, "Completed", "Job completed")
		} else {
			c.m.events.Eventf(job, api.EventWarning, reason, "%s", msg)
		}
		return nil
	}

	var err error
	deadline := time.Duration(0)
	if ads := job.Spec.ActiveDeadlineSeconds; ads != nil {
		deadline = st.StartTime.Add(time.Duration(*ads) * time.Second).Sub(now)
	}
	switch {
	case st.Succeeded >= completions:
		err = finish(api.JobComplete, "", "")
	case st.Failed+jp.restarts > backoff:
		err = finish(api.JobFailed, api.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
	case job.Spec.ActiveDeadlineSeconds != nil && deadline <= 0:
		err = finish(api.JobFailed, api.JobReasonDeadlineExceeded, "Job was active longer than specified deadline")
	default:
		err = c.scale(ctx, job, jp, min(parallelism, completions-st.Succeeded))
		if deadline > 0 {
			c.queue.AddAfter(key, deadline)
		}
	}
	if err != nil {
		return err
	}
	st.Active = int32(len(c.m.ownedActive(job)))
	if _, done := job.Finished(); done {
		st.Active = 0
		c.expireLater(key, job, now)
	}
	return c.writeStatus(ctx, orig, job)
}

// scale creates or deletes pods until want are active.
func (c *jobController) scale(ctx context.Context, job *api.Job, jp jobPods, want int32) error {
	active := int32(len(jp.active))
	for ; active < want; active++ {
		if err := c.createPod(ctx, job); err != nil {
			return err
		}
	}
	if active > want {
		// Parallelism went down: stop the newest, not yet running first.
		sort.Slice(jp.active, func(i, j int) bool {
			ri, rj := deletionRank(jp.active[i]), deletionRank(jp.active[j])
			return ri < rj || (ri == rj && jp.active[i].CreationTimestamp.After(jp.active[j].CreationTimestamp.Time))
		})
		for _, p := range jp.active[:active-want] {
			if err := c.m.deletePod(ctx, p); err != nil {
				return err
			}
			c.m.events.Eventf(job, api.EventNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		}
	}
	return nil
}

func (c *jobController) createPod(ctx context.Context, job *api.Job) error {
	tpl := job.Spec.Template
	labels := copyMap(tpl.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[api.JobNameLabel] = job.Name
	labels[api.ControllerUIDLabel] = job.UID
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{
			GenerateName: job.Name + "-",
			Namespace:    job.Namespace,
			Labels:       labels,
			Annotations:  copyMap(tpl.Annotations),
			OwnerReferences: []api.OwnerReference{{
				APIVersion: api.Version, Kind: "Job", Name: job.Name, UID: job.UID, Controller: true,
			}},
		},
		Spec: tpl.Spec,
	}
	pod.Spec.NodeName = ""
	pod.Spec.Containers = append([]api.Container(nil), tpl.Spec.Containers...)
	created, err := c.m.st.Create(ctx, pod)
	if err != nil {
		return fmt.Errorf("create pod for job %s/%s: %w", job.Namespace, job.Name, err)
	}
	c.m.pods.Assume(created)
	c.m.events.Eventf(job, api.EventNormal, "SuccessfulCreate", "Created pod: %s", created.GetMeta().Name)
	return nil
}

// ownedActive lists the job's pods that have not finished, as the cache
// holds them after this reconcile's own writes.
func (m *Manager) ownedActive(job *api.Job) []*api.Pod {
	var out []*api.Pod
	for _, p := range m.ownedPods(job.Namespace, job.UID) {
		if !p.IsTerminal() {
			out = append(out, p)
		}
	}
	return out
}

// finishedAt is when a finished job ended: its completion time, or when
// its Failed condition turned True.
func finishedAt(job *api.Job) time.Time {
	if !job.Status.CompletionTime.IsZero() {
		return job.Status.CompletionTime.Time
	}
	if c := api.FindCondition(job.Status.Conditions, api.JobFailed); c != nil {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

// expire deletes a finished job whose ttlSecondsAfterFinished has passed.
func (c *jobController) expire(ctx context.Context, key string, job *api.Job, now time.Time) error {
	ttl := job.Spec.TTLSecondsAfterFinished
	if ttl == nil {
		return nil
	}
	at := finishedAt(job).Add(time.Duration(*ttl) * time.Second)
	if now.Before(at) {
		c.queue.AddAfter(key, at.Sub(now))
		return nil
	}
	err := c.m.st.Delete(ctx, "Job", job.Namespace, job.Name, job.ResourceVersion)
	if err != nil && !errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("delete expired job %s/%s: %w", job.Namespace, job.Name, err)
	}
	c.jobs.AssumeDeleted(job)
	c.m.log.Info("deleted finished job after its TTL", "ns", job.Namespace, "job", job.Name)
	return nil
}

// expireLater requeues a job that just finished for its TTL.
func (c *jobController) expireLater(key string, job *api.Job, now time.Time) {
	if ttl := job.Spec.TTLSecondsAfterFinished; ttl != nil {
		c.queue.AddAfter(key, finishedAt(job).Add(time.Duration(*ttl)*time.Second).Sub(now)+10*time.Millisecond)
	}
}

func (c *jobController) writeStatus(ctx context.Context, orig, job *api.Job) error {
	if reflect.DeepEqual(orig.Status, job.Status) {
		return nil
	}
	updated, err := c.m.st.Update(ctx, job)
	if err != nil {
		return fmt.Errorf("update job %s/%s status: %w", job.Namespace, job.Name, err)
	}
	c.jobs.Assume(updated)
	return nil
}

// deepCopyJob copies the parts of a cached job a reconcile changes, so the
// cache's object is never written to.
func deepCopyJob(j *api.Job) *api.Job {
	cp := *j
	cp.Status.Conditions = append([]api.Condition(nil), j.Status.Conditions...)
	return &cp
}
