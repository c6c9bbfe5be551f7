package controllers_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/server"
)

func everySecond(name, policy string) *api.CronJob {
	spec := batchJob("", 1, 1, 0, api.RestartNever).Spec
	// Job labels do not reach pods (as in Kubernetes); label both.
	spec.Template.Labels = map[string]string{"cron": name}
	return &api.CronJob{
		ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.CronJobSpec{
			// Six fields: Flotilla's seconds extension.
			Schedule:          "* * * * * *",
			ConcurrencyPolicy: policy,
			JobTemplate: api.JobTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"cron": name}},
				Spec:       spec,
			},
		},
	}
}

func cronJobs(t *testing.T, s *server.Server, cron string) []*api.Job {
	t.Helper()
	sel, _ := api.ParseSelector("cron=" + cron)
	objs, _, err := s.Store.List(context.Background(), "Job", storeList(sel))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*api.Job, len(objs))
	for i, o := range objs {
		out[i] = o.(*api.Job)
	}
	return out
}

func unfinished(jobs []*api.Job) int {
	n := 0
	for _, j := range jobs {
		if _, done := j.Finished(); !done {
			n++
		}
	}
	return n
}

func getCronJob(t *testing.T, s *server.Server, name string) *api.CronJob {
	t.Helper()
	o, err := s.Store.Get(context.Background(), "CronJob", "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.CronJob)
}

func TestCronJobRunsOnScheduleWithDeterministicNamesAndPrunesHistory(t *testing.T) {
	s := startServer(t, server.Config{})
	cj := everySecond("tick", api.ConcurrencyAllow)
	cj.Spec.SuccessfulJobsHistoryLimit = api.Int32(2)
	if _, err := s.Store.Create(context.Background(), cj); err != nil {
		t.Fatal(err)
	}
	// Play the agent: every pod of the cron job's jobs succeeds.
	seen := map[string]bool{}
	waitFor(t, "5 jobs to have run", 20*time.Second, func() bool {
		for _, p := range activePods(t, s, "cron=tick") {
			finish(t, s, p, api.PodSucceeded, 0)
		}
		for _, j := range cronJobs(t, s, "tick") {
			seen[j.Name] = true
		}
		return len(seen) >= 5
	})
	for name := range seen {
		suffix, ok := strings.CutPrefix(name, "tick-")
		if _, err := strconv.ParseInt(suffix, 10, 64); !ok || err != nil {
			t.Fatalf("job %q is not named tick-<scheduled time>", name)
		}
	}
	waitFor(t, "history pruned to 2 successful jobs", 10*time.Second, func() bool {
		done := 0
		for _, j := range cronJobs(t, s, "tick") {
			if typ, ok := j.Finished(); ok && typ == api.JobComplete {
				done++
			}
		}
		return done <= 2
	})
	got := getCronJob(t, s, "tick")
	if got.Status.LastScheduleTime.IsZero() || got.Status.LastSuccessfulTime.IsZero() {
		t.Fatalf("status lastScheduleTime %v lastSuccessfulTime %v, want both set", got.Status.LastScheduleTime, got.Status.LastSuccessfulTime)
	}
	if !hasEvent(t, s, "tick", "SuccessfulCreate") || !hasEvent(t, s, "tick", "SawCompletedJob") {
		t.Fatal("missing SuccessfulCreate or SawCompletedJob events")
	}
	// Deleting the cron job takes its jobs and their pods.
	if err := s.Store.Delete(context.Background(), "CronJob", "default", "tick", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "jobs and pods collected", 10*time.Second, func() bool {
		return len(cronJobs(t, s, "tick")) == 0 && len(pods(t, s, "cron=tick")) == 0
	})
}

func TestCronJobConcurrencyPolicies(t *testing.T) {
	t.Run("Forbid keeps one job and skips overlapping runs with an event", func(t *testing.T) {
		s := startServer(t, server.Config{})
		if _, err := s.Store.Create(context.Background(), everySecond("solo", api.ConcurrencyForbid)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a JobAlreadyActive event", 10*time.Second, func() bool { return hasEvent(t, s, "solo", "JobAlreadyActive") })
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if n := len(cronJobs(t, s, "solo")); n != 1 {
				t.Fatalf("%d jobs with Forbid and the first still running, want 1", n)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if a := getCronJob(t, s, "solo").Status.Active; len(a) != 1 {
			t.Fatalf("status.active = %v, want the one running job", a)
		}
	})
	t.Run("Replace deletes the running job and starts the new run", func(t *testing.T) {
		s := startServer(t, server.Config{})
		if _, err := s.Store.Create(context.Background(), everySecond("fresh", api.ConcurrencyReplace)); err != nil {
			t.Fatal(err)
		}
		var first string
		waitFor(t, "a first job", 10*time.Second, func() bool {
			js := cronJobs(t, s, "fresh")
			if len(js) == 1 {
				first = js[0].Name
			}
			return first != ""
		})
		waitFor(t, "the first job replaced by a later one", 10*time.Second, func() bool {
			js := cronJobs(t, s, "fresh")
			return len(js) == 1 && js[0].Name != first
		})
		if !hasEvent(t, s, "fresh", "SuccessfulDelete") {
			t.Fatal("no SuccessfulDelete event for the replaced job")
		}
	})
	t.Run("Allow lets runs overlap", func(t *testing.T) {
		s := startServer(t, server.Config{})
		if _, err := s.Store.Create(context.Background(), everySecond("crowd", api.ConcurrencyAllow)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "3 jobs running at once", 10*time.Second, func() bool { return unfinished(cronJobs(t, s, "crowd")) >= 3 })
	})
}

func TestSuspendedCronJobCreatesNothing(t *testing.T) {
	s := startServer(t, server.Config{})
	cj := everySecond("paused", api.ConcurrencyAllow)
	yes := true
	cj.Spec.Suspend = &yes
	if _, err := s.Store.Create(context.Background(), cj); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if n := len(cronJobs(t, s, "paused")); n != 0 {
		t.Fatalf("a suspended cron job made %d jobs", n)
	}
}
