package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

func moduleJob(name, image string, args ...string) *api.Job {
	return &api.Job{
		ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.JobSpec{Template: api.PodTemplateSpec{Spec: api.PodSpec{
			RestartPolicy: api.RestartNever,
			Containers:    []api.Container{{Name: "main", Image: image, Args: args}},
		}}},
	}
}

func fetchJob(ctx context.Context, f *testfleet.Fleet, name string) *api.Job {
	o, err := f.Client.Get(ctx, "job", "default", name)
	if err != nil {
		return nil
	}
	return o.(*api.Job)
}

func jobEnded(j *api.Job, typ, reason string) bool {
	if j == nil {
		return false
	}
	c := api.FindCondition(j.Status.Conditions, typ)
	return c != nil && c.Status == api.ConditionTrue && c.Reason == reason
}

func jobsOf(t *testing.T, f *testfleet.Fleet, cronJob string) []*api.Job {
	t.Helper()
	objs, err := f.Client.List(context.Background(), "jobs", "default", "cron="+cronJob)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*api.Job, len(objs))
	for i, o := range objs {
		out[i] = o.(*api.Job)
	}
	return out
}

func eventSeen(t *testing.T, f *testfleet.Fleet, object, reason string) bool {
	objs, _ := f.Client.List(context.Background(), "events", "default", "")
	for _, o := range objs {
		if e := o.(*api.Event); e.InvolvedObject.Name == object && e.Reason == reason {
			return true
		}
	}
	return false
}

// cronOf runs image every second (Flotilla's six-field schedule), its
// jobs and pods labelled cron=NAME.
func cronOf(name, policy, image string, args ...string) *api.CronJob {
	spec := moduleJob("", image, args...).Spec
	spec.Template.Labels = map[string]string{"cron": name}
	return &api.CronJob{
		ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.CronJobSpec{
			Schedule: "* * * * * *", ConcurrencyPolicy: policy,
			SuccessfulJobsHistoryLimit: api.Int32(10),
			JobTemplate:                api.JobTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: map[string]string{"cron": name}}, Spec: spec},
		},
	}
}

func TestJobsAndCronJobsOnRealAgents(t *testing.T) {
	f := testfleet.Start(t, testfleet.AgentSpec{Name: "pi-1"})
	ctx := context.Background()
	f.Push(t, "examples/batch", "batch:v1")
	f.Push(t, "internal/e2e/testdata/sleeper", "sleeper:v1")

	t.Run("a job with completions 3 and parallelism 2 completes", func(t *testing.T) {
		j := moduleJob("primes", "batch:v1", "500")
		j.Spec.Completions, j.Spec.Parallelism = api.Int32(3), api.Int32(2)
		if _, err := f.Client.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		testfleet.WaitFor(t, "job primes Complete at 3/3", 60*time.Second, func() bool {
			j := fetchJob(ctx, f, "primes")
			return jobEnded(j, api.JobComplete, "") && j.CompletionsString() == "3/3" && !j.Status.CompletionTime.IsZero()
		})
		succeeded := 0
		for _, p := range listPods(t, f, "job-name=primes") {
			if p.Status.Phase == api.PodSucceeded {
				succeeded++
			}
		}
		if succeeded != 3 {
			t.Fatalf("%d pods Succeeded, want 3", succeeded)
		}
	})

	t.Run("a job whose module exits 2 fails past its backoff limit", func(t *testing.T) {
		j := moduleJob("crash", "batch:v1", "not-a-number")
		j.Spec.BackoffLimit = api.Int32(1)
		if _, err := f.Client.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		testfleet.WaitFor(t, "job crash Failed with BackoffLimitExceeded", 60*time.Second, func() bool {
			j := fetchJob(ctx, f, "crash")
			return jobEnded(j, api.JobFailed, api.JobReasonBackoffLimitExceeded) && j.Status.Failed == 2
		})
		for _, p := range listPods(t, f, "job-name=crash") {
			cs := p.Status.ContainerStatuses
			if p.Status.Phase != api.PodFailed || len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 2 {
				t.Fatalf("pod %s: phase %s, statuses %+v; want Failed with exit code 2", p.Name, p.Status.Phase, cs)
			}
		}
	})

	t.Run("activeDeadlineSeconds fails a long job and stops its pod", func(t *testing.T) {
		j := moduleJob("forever", "sleeper:v1", "1h")
		j.Spec.ActiveDeadlineSeconds = api.Int64(5)
		if _, err := f.Client.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		ran := false
		testfleet.WaitFor(t, "job forever Failed with DeadlineExceeded, pod gone", 30*time.Second, func() bool {
			for _, p := range listPods(t, f, "job-name=forever") {
				ran = ran || p.Status.Phase == api.PodRunning
			}
			return jobEnded(fetchJob(ctx, f, "forever"), api.JobFailed, api.JobReasonDeadlineExceeded) &&
				len(listPods(t, f, "job-name=forever")) == 0
		})
		j = fetchJob(ctx, f, "forever")
		c := api.FindCondition(j.Status.Conditions, api.JobFailed)
		if lived := c.LastTransitionTime.Sub(j.Status.StartTime.Time); lived < 5*time.Second {
			t.Fatalf("job failed %s after it started, before its 5s deadline", lived)
		}
		if !ran {
			t.Log("the pod was not seen Running before the deadline (slow first compile); the deadline still held")
		}
	})

	t.Run("a cron job fires on a seconds schedule and its jobs complete", func(t *testing.T) {
		if _, err := f.Client.Create(ctx, cronOf("tick", api.ConcurrencyAllow, "batch:v1", "100")); err != nil {
			t.Fatal(err)
		}
		testfleet.WaitFor(t, "3 completed jobs of cron job tick", 60*time.Second, func() bool {
			done := 0
			for _, j := range jobsOf(t, f, "tick") {
				if jobEnded(j, api.JobComplete, "") {
					done++
				}
			}
			return done >= 3
		})
		if _, err := f.Client.Delete(ctx, "cronjob", "default", "tick"); err != nil {
			t.Fatal(err)
		}
		testfleet.WaitFor(t, "tick's jobs and pods collected", 30*time.Second, func() bool {
			return len(jobsOf(t, f, "tick")) == 0 && len(listPods(t, f, "cron=tick")) == 0
		})
	})

	t.Run("Forbid keeps one run at a time and reports the skip", func(t *testing.T) {
		if _, err := f.Client.Create(ctx, cronOf("solo", api.ConcurrencyForbid, "sleeper:v1", "4s")); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(12 * time.Second)
		runs := map[string]bool{}
		for time.Now().Before(deadline) {
			active := 0
			for _, j := range jobsOf(t, f, "solo") {
				runs[j.Name] = true
				if _, done := j.Finished(); !done {
					active++
				}
			}
			if active > 1 {
				t.Fatalf("%d jobs of a Forbid cron job active at once", active)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(runs) < 2 {
			t.Fatalf("%d runs in 12s of 4s jobs, want the next run after the first ends", len(runs))
		}
		if !eventSeen(t, f, "solo", "JobAlreadyActive") {
			t.Fatal("no JobAlreadyActive event for the skipped runs")
		}
	})
}
