package printers

import (
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

func init() {
	register("Job", KindPrinter{
		Columns: func(o Options) []string {
			h := []string{"NAME", "COMPLETIONS", "DURATION", "AGE"}
			if o.Wide {
				h = append(h, "CONTAINERS", "IMAGES", "SELECTOR")
			}
			return h
		},
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.Job)
			r := []string{x.Name, x.CompletionsString(), JobDuration(x, o.now()), Age(x.CreationTimestamp, o.now())}
			if o.Wide {
				r = append(r, templateColumns(x.Spec.Template.Spec, x.Spec.Selector)...)
			}
			return r
		},
		Describe: func(d *describer, obj api.Object) { d.job(obj.(*api.Job)) },
	})
	register("CronJob", KindPrinter{
		Columns: func(o Options) []string {
			h := []string{"NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"}
			if o.Wide {
				h = append(h, "CONTAINERS", "IMAGES", "SELECTOR")
			}
			return h
		},
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.CronJob)
			last := "<none>"
			if !x.Status.LastScheduleTime.IsZero() {
				last = Age(x.Status.LastScheduleTime, o.now())
			}
			r := []string{x.Name, x.Spec.Schedule, orNone(x.Spec.TimeZone), titleBool(x.Suspended()),
				strconv.Itoa(len(x.Status.Active)), last, Age(x.CreationTimestamp, o.now())}
			if o.Wide {
				t := x.Spec.JobTemplate.Spec
				r = append(r, templateColumns(t.Template.Spec, t.Selector)...)
			}
			return r
		},
		Describe: func(d *describer, obj api.Object) { d.cronJob(obj.(*api.CronJob)) },
	})
}

// JobDuration is kubectl's DURATION: start to completion, or start to now
// while the job runs; empty before it starts. Unlike kubectl, a failed job
// stops counting when it failed, rather than growing forever.
func JobDuration(j *api.Job, now time.Time) string {
	start := j.Status.StartTime
	if start.IsZero() {
		return ""
	}
	end := now
	if !j.Status.CompletionTime.IsZero() {
		end = j.Status.CompletionTime.Time
	} else if c := api.FindCondition(j.Status.Conditions, api.JobFailed); c != nil && c.Status == api.ConditionTrue {
		end = c.LastTransitionTime.Time
	}
	return HumanDuration(end.Sub(start.Time))
}

func (d *describer) job(x *api.Job) {
	d.meta(&x.ObjectMeta, true)
	d.line(0, "Selector:\t%s", SelectorString(x.Spec.Selector))
	d.controlledBy(&x.ObjectMeta)
	d.line(0, "Parallelism:\t%d", replicas(x.Spec.Parallelism))
	d.line(0, "Completions:\t%d", replicas(x.Spec.Completions))
	if x.Spec.BackoffLimit != nil {
		d.line(0, "Backoff Limit:\t%d", *x.Spec.BackoffLimit)
	}
	if ads := x.Spec.ActiveDeadlineSeconds; ads != nil {
		d.line(0, "Active Deadline Seconds:\t%ds", *ads)
	}
	if ttl := x.Spec.TTLSecondsAfterFinished; ttl != nil {
		d.line(0, "TTL Seconds After Finished:\t%d", *ttl)
	}
	if !x.Status.StartTime.IsZero() {
		d.line(0, "Start Time:\t%s", stamp(x.Status.StartTime))
	}
	if !x.Status.CompletionTime.IsZero() {
		d.line(0, "Completed At:\t%s", stamp(x.Status.CompletionTime))
	}
	if dur := JobDuration(x, d.now); dur != "" {
		d.line(0, "Duration:\t%s", dur)
	}
	d.line(0, "Pods Statuses:\t%d Active / %d Succeeded / %d Failed", x.Status.Active, x.Status.Succeeded, x.Status.Failed)
	d.template(x.Spec.Template)
	if len(x.Status.Conditions) > 0 {
		d.conditions(x.Status.Conditions, true)
	}
}

func (d *describer) cronJob(x *api.CronJob) {
	d.meta(&x.ObjectMeta, true)
	d.line(0, "Schedule:\t%s", x.Spec.Schedule)
	d.line(0, "Time Zone:\t%s", orNone(x.Spec.TimeZone))
	d.line(0, "Concurrency Policy:\t%s", x.Spec.ConcurrencyPolicy)
	d.line(0, "Suspend:\t%s", titleBool(x.Suspended()))
	if h := x.Spec.SuccessfulJobsHistoryLimit; h != nil {
		d.line(0, "Successful Job History Limit:\t%d", *h)
	}
	if h := x.Spec.FailedJobsHistoryLimit; h != nil {
		d.line(0, "Failed Job History Limit:\t%d", *h)
	}
	if s := x.Spec.StartingDeadlineSeconds; s != nil {
		d.line(0, "Starting Deadline Seconds:\t%ds", *s)
	} else {
		d.line(0, "Starting Deadline Seconds:\t<unset>")
	}
	t := x.Spec.JobTemplate.Spec
	d.line(0, "Parallelism:\t%d", replicas(t.Parallelism))
	d.line(0, "Completions:\t%d", replicas(t.Completions))
	d.template(t.Template)
	d.line(0, "Last Schedule Time:\t%s", stamp(x.Status.LastScheduleTime))
	var active []string
	for _, r := range x.Status.Active {
		active = append(active, r.Name)
	}
	if len(active) == 0 {
		d.line(0, "Active Jobs:\t<none>")
	} else {
		d.line(0, "Active Jobs:\t%s", strings.Join(active, ", "))
	}
}
