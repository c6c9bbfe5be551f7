package printers

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func sampleJob(succeeded int32, started, completed time.Duration) *api.Job {
	j := &api.Job{
		ObjectMeta: api.ObjectMeta{Name: "primes", Namespace: "default", CreationTimestamp: api.Time{Time: t0.Add(-10 * time.Minute)}},
		Spec: api.JobSpec{Completions: api.Int32(3), Parallelism: api.Int32(2),
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"job-name": "primes"}},
			Template: api.PodTemplateSpec{Spec: api.PodSpec{Containers: []api.Container{{Name: "batch", Image: "batch:v1"}}}}},
		Status: api.JobStatus{Succeeded: succeeded, Active: 3 - succeeded},
	}
	if started != 0 {
		j.Status.StartTime = api.Time{Time: t0.Add(-started)}
	}
	if completed != 0 {
		j.Status.CompletionTime = api.Time{Time: t0.Add(-completed)}
	}
	return j
}

func failedJob() *api.Job {
	j := sampleJob(0, 50*time.Second, 0)
	j.Status.Conditions = []api.Condition{{Type: api.JobFailed, Status: api.ConditionTrue, LastTransitionTime: api.Time{Time: t0.Add(-30 * time.Second)}}}
	return j
}

func TestJobAndCronJobRows(t *testing.T) {
	cj := &api.CronJob{
		ObjectMeta: api.ObjectMeta{Name: "nightly", CreationTimestamp: api.Time{Time: t0.Add(-2 * time.Hour)}},
		Spec:       api.CronJobSpec{Schedule: "0 3 * * *", TimeZone: "Europe/Berlin", Suspend: new(bool)},
		Status: api.CronJobStatus{Active: []api.ObjectReference{{Name: "nightly-1"}},
			LastScheduleTime: api.Time{Time: t0.Add(-90 * time.Second)}},
	}
	never := &api.CronJob{ObjectMeta: api.ObjectMeta{Name: "fresh", CreationTimestamp: api.Time{Time: t0.Add(-5 * time.Second)}},
		Spec: api.CronJobSpec{Schedule: "@hourly"}}
	tests := []struct {
		name string
		obj  api.Object
		wide bool
		want []string
	}{
		{"a running job counts duration up to now", sampleJob(2, 123*time.Second, 0), false, []string{"primes", "2/3", "2m3s", "10m"}},
		{"a finished job's duration ends at completion", sampleJob(3, 65*time.Second, 60*time.Second), false, []string{"primes", "3/3", "5s", "10m"}},
		{"a failed job's duration ends when it failed", failedJob(), false, []string{"primes", "0/3", "20s", "10m"}},
		{"a job not started has no duration", sampleJob(0, 0, 0), false, []string{"primes", "0/3", "", "10m"}},
		{"wide adds containers, images and selector", sampleJob(0, 0, 0), true, []string{"primes", "0/3", "", "10m", "batch", "batch:v1", "job-name=primes"}},
		{"a cron job with a zone and an active job", cj, false, []string{"nightly", "0 3 * * *", "Europe/Berlin", "False", "1", "90s", "120m"}},
		{"a cron job never scheduled", never, false, []string{"fresh", "@hourly", "<none>", "False", "0", "<none>", "5s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind := "Job"
			if _, ok := tt.obj.(*api.CronJob); ok {
				kind = "CronJob"
			}
			tt.obj.GetType().Kind = kind
			o := Options{Now: t0, Wide: tt.wide}
			if h := Columns(kind, o); len(h) != len(tt.want) {
				t.Fatalf("header %v has %d columns, row wants %d", h, len(h), len(tt.want))
			}
			if got := Row(tt.obj, o); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("row = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDescribeJobShowsProgress(t *testing.T) {
	j := sampleJob(2, 65*time.Second, 0)
	j.Kind = "Job"
	j.Status.Active, j.Status.Failed = 1, 0
	var b bytes.Buffer
	if err := Describe(&b, j, nil, nil, t0); err != nil {
		t.Fatal(err)
	}
	// Alignment aside, the lines read like kubectl's.
	got := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{"Parallelism: 2", "Completions: 3", "Start Time:", "Duration: 65s", "Pods Statuses: 1 Active / 2 Succeeded / 0 Failed", "Pod Template:", "Image: batch:v1"} {
		if !strings.Contains(got, want) {
			t.Errorf("describe lacks %q:\n%s", want, b.String())
		}
	}
}
