package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/cron"
)

// ScheduledTimestampAnnotation records, on a job a cron job made, the
// schedule time it ran for (as Kubernetes' batch.kubernetes.io one does).
const ScheduledTimestampAnnotation = "cronjob.kubernetes.io/scheduled-timestamp"

// cronJobController creates a CronJob's jobs. It is level-triggered: every
// reconcile works out the most recent schedule time since the last one it
// acted on, and job names are derived from that time, so two reconciles
// (or two leaders) can never create the same run twice.
type cronJobController struct {
	m        *Manager
	cronjobs *Cache
	jobs     *Cache
	queue    *Queue
	now      func() time.Time
}

func newCronJobController(m *Manager) *controller {
	c := &cronJobController{m: m, cronjobs: m.cache("CronJob"), jobs: m.cache("Job"), queue: newQueue(), now: time.Now}
	c.jobs.OnChange(enqueueOwner(c.queue, "CronJob"))
	c.cronjobs.OnChange(enqueueSelf(c.queue))
	return &controller{name: "cronjob", workers: 2, queue: c.queue, reconcile: c.reconcile, all: m.keysOf("CronJob")}
}

// ownedJobs returns the jobs the cron job with uid controls, oldest first.
func (c *cronJobController) ownedJobs(ns, uid string) []*api.Job {
	var out []*api.Job
	for _, o := range c.jobs.List(func(o api.Object) bool {
		return o.GetMeta().Namespace == ns && api.IsControlledBy(o.GetMeta(), uid)
	}) {
		out = append(out, o.(*api.Job))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].CreationTimestamp.Time, out[j].CreationTimestamp.Time
		return a.Before(b) || (a.Equal(b) && out[i].Name < out[j].Name)
	})
	return out
}

func (c *cronJobController) reconcile(ctx context.Context, key string) error {
	obj := c.cronjobs.Get(key)
	if obj == nil {
		return nil // gone: the garbage collector removes its jobs
	}
	orig := obj.(*api.CronJob)
	cj := *orig
	cj.Status.Active = nil
	now := c.now()

	if err := c.observe(ctx, &cj, orig); err != nil {
		return err
	}
	sched, loc, err := c.schedule(&cj)
	if err != nil {
		return c.writeStatus(ctx, orig, &cj) // reported as an event; retrying will not help
	}
	if next := sched.Next(now.In(loc)); !next.IsZero() {
		// Wake exactly at the next run instead of waiting for a resync.
		c.queue.AddAfter(key, next.Sub(now)+10*time.Millisecond)
	}
	if cj.Suspended() {
		return c.writeStatus(ctx, orig, &cj)
	}

	scheduled, missed := mostRecent(sched, c.earliest(&cj).In(loc), now.In(loc))
	if scheduled.IsZero() {
		return c.writeStatus(ctx, orig, &cj)
	}
	if missed > 100 {
		c.m.events.Eventf(&cj, api.EventWarning, "TooManyMissedTimes", "too many missed start times: %d; starting the most recent", missed)
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(now) {
		c.m.events.Eventf(&cj, api.EventWarning, "MissSchedule", "Missed scheduled time to start a job: %s", scheduled.UTC().Format(time.RFC1123Z))
		// Recorded as handled, so the skip is reported once.
		cj.Status.LastScheduleTime = api.Time{Time: scheduled.UTC()}
		return c.writeStatus(ctx, orig, &cj)
	}
	name := jobNameFor(cj.Name, scheduled)
	if len(cj.Status.Active) > 0 && !hasRef(cj.Status.Active, name) {
		switch cj.Spec.ConcurrencyPolicy {
		case api.ConcurrencyForbid:
			// The run is not recorded as handled: it starts when the
			// active job ends, if still within startingDeadlineSeconds.
			c.m.events.Eventf(&cj, api.EventNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return c.writeStatus(ctx, orig, &cj)
		case api.ConcurrencyReplace:
			for _, ref := range cj.Status.Active {
				if err := c.deleteJob(ctx, &cj, ref.Namespace, ref.Name); err != nil {
					return err
				}
			}
			cj.Status.Active = nil
		}
	}
	if !hasRef(cj.Status.Active, name) {
		job, err := c.createJob(ctx, &cj, name, scheduled)
		if err != nil {
			return err
		}
		cj.Status.Active = append(cj.Status.Active, jobRef(job))
	}
	cj.Status.LastScheduleTime = api.Time{Time: scheduled.UTC()}
	return c.writeStatus(ctx, orig, &cj)
}

// observe fills the status from the cron job's jobs (active ones, last
// success), reports jobs that finished since the last look, and prunes
// finished jobs beyond the history limits.
func (c *cronJobController) observe(ctx context.Context, cj, orig *api.CronJob) error {
	var succeeded, failed []*api.Job
	for _, j := range c.ownedJobs(cj.Namespace, cj.UID) {
		typ, done := j.Finished()
		switch {
		case !done:
			cj.Status.Active = append(cj.Status.Active, jobRef(j))
			continue
		case typ == api.JobComplete:
			succeeded = append(succeeded, j)
			if t := j.Status.CompletionTime; t.After(cj.Status.LastSuccessfulTime.Time) {
				cj.Status.LastSuccessfulTime = t
			}
		default:
			failed = append(failed, j)
		}
		if hasRef(orig.Status.Active, j.Name) {
			c.m.events.Eventf(cj, api.EventNormal, "SawCompletedJob", "Saw completed job: %s, status: %s", j.Name, typ)
		}
	}
	for _, h := range []struct {
		jobs  []*api.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if h.limit == nil {
			continue
		}
		for i := 0; i < len(h.jobs)-int(*h.limit); i++ {
			if err := c.deleteJob(ctx, cj, h.jobs[i].Namespace, h.jobs[i].Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// schedule parses the cron job's schedule and zone. Validation checked
// both on write, but a server with an older zone database may disagree.
func (c *cronJobController) schedule(cj *api.CronJob) (cron.Schedule, *time.Location, error) {
	loc, err := cj.Location()
	if err != nil {
		c.m.events.Eventf(cj, api.EventWarning, "UnknownTimeZone", "invalid timeZone %q: %v", cj.Spec.TimeZone, err)
		return nil, nil, err
	}
	s, err := cron.Parse(cj.Spec.Schedule)
	if err != nil {
		c.m.events.Eventf(cj, api.EventWarning, "UnparseableSchedule", "unparseable schedule: %v", err)
		return nil, nil, err
	}
	return s, loc, nil
}

// earliest is where the search for missed runs starts.
func (c *cronJobController) earliest(cj *api.CronJob) time.Time {
	if !cj.Status.LastScheduleTime.IsZero() {
		return cj.Status.LastScheduleTime.Time
	}
	return cj.CreationTimestamp.Time
}

// mostRecent returns the latest activation in (earliest, now] and how many
// there were.
func mostRecent(s cron.Schedule, earliest, now time.Time) (time.Time, int) {
	var last time.Time
	n := 0
	for t := s.Next(earliest); !t.IsZero() && !t.After(now); t = s.Next(t) {
		last = t
		n++
	}
	return last, n
}

// jobNameFor is <cronjob>-<scheduled time in unix minutes>, as in
// Kubernetes; a sub-minute run (six-field schedules) uses unix seconds so
// runs within one minute get distinct names.
func jobNameFor(cronJob string, t time.Time) string {
	if t.Second() != 0 {
		return fmt.Sprintf("%s-%d", cronJob, t.Unix())
	}
	return fmt.Sprintf("%s-%d", cronJob, t.Unix()/60)
}

func (c *cronJobController) createJob(ctx context.Context, cj *api.CronJob, name string, scheduled time.Time) (*api.Job, error) {
	tpl, err := deepCopy(cj.Spec.JobTemplate)
	if err != nil {
		return nil, fmt.Errorf("copy job template of cronjob %s/%s: %w", cj.Namespace, cj.Name, err)
	}
	ann := tpl.Annotations
	if ann == nil {
		ann = map[string]string{}
	}
	ann[ScheduledTimestampAnnotation] = scheduled.UTC().Format(time.RFC3339)
	job := &api.Job{
		ObjectMeta: api.ObjectMeta{
			Name: name, Namespace: cj.Namespace, Labels: tpl.Labels, Annotations: ann,
			OwnerReferences: []api.OwnerReference{{APIVersion: api.Version, Kind: "CronJob", Name: cj.Name, UID: cj.UID, Controller: true}},
		},
		Spec: tpl.Spec,
	}
	created, err := c.m.st.Create(ctx, job)
	if errors.Is(err, api.ErrAlreadyExists) {
		// An earlier reconcile made it and our cache has not seen it yet.
		existing, gerr := c.m.st.Get(ctx, "Job", cj.Namespace, name)
		if gerr != nil {
			return nil, fmt.Errorf("read existing job %s/%s: %w", cj.Namespace, name, gerr)
		}
		return existing.(*api.Job), nil
	}
	if err != nil {
		c.m.events.Eventf(cj, api.EventWarning, "FailedCreate", "Error creating job: %v", err)
		return nil, fmt.Errorf("create job %s/%s for cronjob: %w", cj.Namespace, name, err)
	}
	c.jobs.Assume(created)
	c.m.events.Eventf(cj, api.EventNormal, "SuccessfulCreate", "Created job %s", name)
	return created.(*api.Job), nil
}

func (c *cronJobController) deleteJob(ctx context.Context, cj *api.CronJob, ns, name string) error {
	err := c.m.st.Delete(ctx, "Job", ns, name, "")
	if err != nil && !errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("delete job %s/%s of cronjob %s: %w", ns, name, cj.Name, err)
	}
	if o := c.jobs.Get(ns + "/" + name); o != nil {
		c.jobs.AssumeDeleted(o)
	}
	c.m.events.Eventf(cj, api.EventNormal, "SuccessfulDelete", "Deleted job %s", name)
	return nil
}

func (c *cronJobController) writeStatus(ctx context.Context, orig, cj *api.CronJob) error {
	sort.Slice(cj.Status.Active, func(i, j int) bool { return cj.Status.Active[i].Name < cj.Status.Active[j].Name })
	if reflect.DeepEqual(orig.Status, cj.Status) || (len(orig.Status.Active) == 0 && len(cj.Status.Active) == 0 &&
		orig.Status.LastScheduleTime == cj.Status.LastScheduleTime && orig.Status.LastSuccessfulTime == cj.Status.LastSuccessfulTime) {
		return nil
	}
	updated, err := c.m.st.Update(ctx, cj)
	if err != nil {
		return fmt.Errorf("update cronjob %s/%s status: %w", cj.Namespace, cj.Name, err)
	}
	c.cronjobs.Assume(updated)
	return nil
}

func jobRef(j *api.Job) api.ObjectReference {
	return api.ObjectReference{Kind: "Job", Namespace: j.Namespace, Name: j.Name, UID: j.UID}
}

func hasRef(refs []api.ObjectReference, name string) bool {
	for _, r := range refs {
		if r.Name == name {
			return true
		}
	}
	return false
}

// deepCopy copies v through JSON, so maps and pointers are not shared
// with the cache (the store's defaulting writes into what it is given).
func deepCopy[T any](v T) (T, error) {
	var out T
	b, err := json.Marshal(v)
	if err != nil {
		return out, err
	}
	err = json.Unmarshal(b, &out)
	return out, err
}
