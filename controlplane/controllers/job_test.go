package controllers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/server"
)

func batchJob(name string, completions, parallelism, backoff int32, policy string) *api.Job {
	return &api.Job{
		ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.JobSpec{
			Completions: api.Int32(completions), Parallelism: api.Int32(parallelism), BackoffLimit: api.Int32(backoff),
			Template: api.PodTemplateSpec{Spec: api.PodSpec{
				RestartPolicy: policy,
				Containers:    []api.Container{{Name: "batch", Image: "batch:v1", Args: []string{"100"}}},
			}},
		},
	}
}

func getJob(t *testing.T, s *server.Server, name string) *api.Job {
	t.Helper()
	o, err := s.Store.Get(context.Background(), "Job", "default", name)
	if err != nil {
		return nil
	}
	return o.(*api.Job)
}

// finish plays the agent: it writes a terminal phase (or, with phase "",
// a restart count) into the pod's status.
func finish(t *testing.T, s *server.Server, p *api.Pod, phase string, restarts int32) {
	t.Helper()
	ctx := context.Background()
	for attempt := 0; attempt < 20; attempt++ {
		o, err := s.Store.Get(ctx, "Pod", p.Namespace, p.Name)
		if err != nil {
			t.Fatalf("read pod %s: %v", p.Name, err)
		}
		cur := o.(*api.Pod)
		if phase != "" {
			cur.Status.Phase = phase
		} else {
			cur.Status.Phase = api.PodRunning
		}
		cur.Status.ContainerStatuses = []api.ContainerStatus{{Name: "batch", Image: "batch:v1", RestartCount: restarts}}
		if _, err := s.Store.Update(ctx, cur); err == nil {
			return
		} else if !errors.Is(err, api.ErrConflict) {
			t.Fatalf("update pod %s: %v", p.Name, err)
		}
	}
	t.Fatalf("pod %s: too many conflicts", p.Name)
}

func activePods(t *testing.T, s *server.Server, selector string) []*api.Pod {
	var out []*api.Pod
	for _, p := range pods(t, s, selector) {
		if !p.IsTerminal() {
			out = append(out, p)
		}
	}
	return out
}

func jobCondition(j *api.Job, typ, reason string) bool {
	if j == nil {
		return false
	}
	c := api.FindCondition(j.Status.Conditions, typ)
	return c != nil && c.Status == api.ConditionTrue && c.Reason == reason
}

func hasEvent(t *testing.T, s *server.Server, object, reason string) bool {
	t.Helper()
	evs, _, _ := s.Store.List(context.Background(), "Event", storeList(nil))
	for _, o := range evs {
		e := o.(*api.Event)
		if e.InvolvedObject.Name == object && e.Reason == reason {
			return true
		}
	}
	return false
}

func TestJobKeepsParallelismPodsRunningUntilCompletionsSucceed(t *testing.T) {
	s := startServer(t, server.Config{})
	if _, err := s.Store.Create(context.Background(), batchJob("primes", 3, 2, 6, api.RestartNever)); err != nil {
		t.Fatal(err)
	}
	succeeded := 0
	for succeeded < 3 {
		want := min(2, 3-succeeded)
		waitFor(t, "parallelism pods active", 10*time.Second, func() bool { return len(activePods(t, s, "job-name=primes")) == want })
		time.Sleep(100 * time.Millisecond) // room for a wrong extra pod to show up
		act := activePods(t, s, "job-name=primes")
		if len(act) != want {
			t.Fatalf("%d pods active with %d succeeded, want %d", len(act), succeeded, want)
		}
		job := getJob(t, s, "primes")
		if act[0].Labels[api.ControllerUIDLabel] != job.UID || !api.IsControlledBy(&act[0].ObjectMeta, job.UID) {
			t.Fatalf("pod %s not labelled and owned by the job: %v", act[0].Name, act[0].Labels)
		}
		finish(t, s, act[0], api.PodSucceeded, 0)
		succeeded++
	}
	waitFor(t, "job Complete with 3 succeeded", 10*time.Second, func() bool {
		j := getJob(t, s, "primes")
		return jobCondition(j, api.JobComplete, "") && j.Status.Succeeded == 3 && j.Status.Active == 0 && !j.Status.CompletionTime.IsZero()
	})
	if n := len(pods(t, s, "job-name=primes")); n != 3 {
		t.Fatalf("%d pods made for 3 completions, want 3", n)
	}
	waitFor(t, "Completed and SuccessfulCreate events", 10*time.Second, func() bool {
		return hasEvent(t, s, "primes", "Completed") && hasEvent(t, s, "primes", "SuccessfulCreate")
	})
}

func TestJobFailsPastItsBackoffLimit(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		// fail makes the next failure happen to pod p.
		fail func(t *testing.T, s *server.Server, p *api.Pod, n int)
	}{
		{"failed pods count with restartPolicy Never", api.RestartNever, func(t *testing.T, s *server.Server, p *api.Pod, _ int) {
			finish(t, s, p, api.PodFailed, 0)
		}},
		{"container restarts count with restartPolicy OnFailure", api.RestartOnFailure, func(t *testing.T, s *server.Server, p *api.Pod, n int) {
			finish(t, s, p, "", int32(n))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, server.Config{})
			if _, err := s.Store.Create(context.Background(), batchJob("crash", 1, 1, 1, tt.policy)); err != nil {
				t.Fatal(err)
			}
			// backoffLimit 1: the first failure is survived, the second is not.
			for n := 1; n <= 2; n++ {
				var p *api.Pod
				waitFor(t, "an active pod", 10*time.Second, func() bool {
					act := activePods(t, s, "job-name=crash")
					if len(act) == 1 {
						p = act[0]
					}
					return p != nil
				})
				if n == 2 && jobCondition(getJob(t, s, "crash"), api.JobFailed, api.JobReasonBackoffLimitExceeded) {
					t.Fatal("job failed after one failure with backoffLimit 1")
				}
				tt.fail(t, s, p, n)
			}
			waitFor(t, "job Failed with BackoffLimitExceeded and nothing running", 10*time.Second, func() bool {
				j := getJob(t, s, "crash")
				return jobCondition(j, api.JobFailed, api.JobReasonBackoffLimitExceeded) && j.Status.Active == 0 &&
					len(activePods(t, s, "job-name=crash")) == 0
			})
			waitFor(t, "a BackoffLimitExceeded event", 10*time.Second, func() bool { return hasEvent(t, s, "crash", "BackoffLimitExceeded") })
		})
	}
}

func TestJobPastActiveDeadlineFailsAndStopsItsPods(t *testing.T) {
	s := startServer(t, server.Config{})
	j := batchJob("slow", 1, 2, 6, api.RestartNever)
	j.Spec.Completions = api.Int32(4)
	j.Spec.ActiveDeadlineSeconds = api.Int64(1)
	if _, err := s.Store.Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "2 pods active", 10*time.Second, func() bool { return len(activePods(t, s, "job-name=slow")) == 2 })
	waitFor(t, "job Failed with DeadlineExceeded and its pods deleted", 10*time.Second, func() bool {
		j := getJob(t, s, "slow")
		return jobCondition(j, api.JobFailed, api.JobReasonDeadlineExceeded) && len(pods(t, s, "job-name=slow")) == 0
	})
	waitFor(t, "a DeadlineExceeded event", 10*time.Second, func() bool { return hasEvent(t, s, "slow", "DeadlineExceeded") })
}

func TestFinishedJobIsDeletedAfterItsTTLWithItsPods(t *testing.T) {
	s := startServer(t, server.Config{})
	j := batchJob("once", 1, 1, 6, api.RestartNever)
	j.Spec.TTLSecondsAfterFinished = api.Int32(1)
	if _, err := s.Store.Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a pod", 10*time.Second, func() bool { return len(activePods(t, s, "job-name=once")) == 1 })
	finish(t, s, activePods(t, s, "job-name=once")[0], api.PodSucceeded, 0)
	waitFor(t, "job Complete", 10*time.Second, func() bool { return jobCondition(getJob(t, s, "once"), api.JobComplete, "") })
	waitFor(t, "job and pod deleted after the TTL", 10*time.Second, func() bool {
		return getJob(t, s, "once") == nil && len(pods(t, s, "job-name=once")) == 0
	})
}

func TestBadJobsAndCronJobsAreRejectedNamingTheFieldAndNothingIsStored(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx := context.Background()
	cronJob := func(mut func(*api.CronJob)) *api.CronJob {
		cj := &api.CronJob{
			ObjectMeta: api.ObjectMeta{Name: "bad"},
			Spec:       api.CronJobSpec{Schedule: "*/5 * * * *", JobTemplate: api.JobTemplateSpec{Spec: batchJob("", 1, 1, 1, api.RestartNever).Spec}},
		}
		mut(cj)
		return cj
	}
	job := func(mut func(*api.Job)) *api.Job {
		j := batchJob("bad", 1, 1, 1, api.RestartNever)
		mut(j)
		return j
	}
	tests := []struct {
		name string
		obj  api.Object
		want string
	}{
		{"minute out of range", cronJob(func(c *api.CronJob) { c.Spec.Schedule = "61 * * * *" }), `spec.schedule: "61 * * * *": minute 61 out of range 0-59`},
		{"hour out of range", cronJob(func(c *api.CronJob) { c.Spec.Schedule = "0 25 * * *" }), "spec.schedule: \"0 25 * * *\": hour 25 out of range 0-23"},
		{"day of month out of range", cronJob(func(c *api.CronJob) { c.Spec.Schedule = "0 0 32 * *" }), "day-of-month 32 out of range 1-31"},
		{"month out of range", cronJob(func(c *api.CronJob) { c.Spec.Schedule = "0 0 1 0 *" }), "month 0 out of range 1-12"},
		{"day of week out of range", cronJob(func(c *api.CronJob) { c.Spec.Schedule = "0 0 * * 9" }), "day-of-week 9 out of range 0-7"},
		{"unknown macro", cronJob(func(c *api.CronJob) { c.Spec.Schedule = "@fortnightly" }), "spec.schedule: \"@fortnightly\": unknown macro @fortnightly"},
		{"unknown time zone", cronJob(func(c *api.CronJob) { c.Spec.TimeZone = "Mars/Olympus_Mons" }), `spec.timeZone: "Mars/Olympus_Mons" is not a known IANA time zone`},
		{"unknown concurrency policy", cronJob(func(c *api.CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" }), `spec.concurrencyPolicy: "Sometimes" is not Allow, Forbid or Replace`},
		{"restartPolicy Always in a cron job's template", cronJob(func(c *api.CronJob) { c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = api.RestartAlways }), `spec.jobTemplate.spec.template.spec.restartPolicy: "Always" is not allowed in a job`},
		{"negative history limit", cronJob(func(c *api.CronJob) { c.Spec.FailedJobsHistoryLimit = api.Int32(-1) }), "spec.failedJobsHistoryLimit: must be >= 0"},
		{"restartPolicy Always", job(func(j *api.Job) { j.Spec.Template.Spec.RestartPolicy = api.RestartAlways }), `spec.template.spec.restartPolicy: "Always" is not allowed in a job: want Never or OnFailure`},
		{"negative parallelism", job(func(j *api.Job) { j.Spec.Parallelism = api.Int32(-1) }), "spec.parallelism: must be >= 0, got -1"},
		{"negative completions", job(func(j *api.Job) { j.Spec.Completions = api.Int32(-2) }), "spec.completions: must be >= 0, got -2"},
		{"negative backoffLimit", job(func(j *api.Job) { j.Spec.BackoffLimit = api.Int32(-3) }), "spec.backoffLimit: must be >= 0, got -3"},
		{"zero activeDeadlineSeconds", job(func(j *api.Job) { j.Spec.ActiveDeadlineSeconds = api.Int64(0) }), "spec.activeDeadlineSeconds: must be > 0"},
		{"selector not matching the template", job(func(j *api.Job) {
			j.Spec.Selector = &api.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
		}), "spec.selector: selector \"app=x\" does not match template labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Store.Create(ctx, tt.obj)
			if err == nil || !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("create: %v, want an Invalid error containing %q", err, tt.want)
			}
			kind := tt.obj.GetType().Kind
			if _, err := s.Store.Get(ctx, kind, "default", "bad"); !errors.Is(err, api.ErrNotFound) {
				t.Fatalf("a rejected %s was stored (get: %v)", kind, err)
			}
		})
	}
}

func TestJobDefaults(t *testing.T) {
	j := &api.Job{ObjectMeta: api.ObjectMeta{Name: "pi"}, Spec: api.JobSpec{Template: api.PodTemplateSpec{Spec: api.PodSpec{
		Containers: []api.Container{{Name: "c", Image: "batch:v1"}},
	}}}}
	api.Defaults(j)
	if *j.Spec.Completions != 1 || *j.Spec.Parallelism != 1 || *j.Spec.BackoffLimit != 6 {
		t.Fatalf("completions/parallelism/backoffLimit = %d/%d/%d, want 1/1/6", *j.Spec.Completions, *j.Spec.Parallelism, *j.Spec.BackoffLimit)
	}
	if j.Spec.Template.Spec.RestartPolicy != api.RestartNever {
		t.Fatalf("restartPolicy = %q, want Never", j.Spec.Template.Spec.RestartPolicy)
	}
	if got := j.Spec.Selector.MatchLabels[api.JobNameLabel]; got != "pi" || j.Spec.Template.Labels[api.JobNameLabel] != "pi" {
		t.Fatalf("generated selector %v / template labels %v, want job-name=pi", j.Spec.Selector, j.Spec.Template.Labels)
	}
	if err := api.Validate(j); err != nil {
		t.Fatal(err)
	}
}
