package api

import (
	"time"

	"github.com/flotilla-edge/flotilla/controlplane/cron"
)

// CronJob creates Jobs on a schedule.
type CronJob struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       CronJobSpec   `json:"spec"`
	Status     CronJobStatus `json:"status,omitempty"`
}

// CronJobSpec is the desired state of a cron job.
type CronJobSpec struct {
	// Schedule is a cron expression; see package controlplane/cron (five
	// fields, macros, @every, and a Flotilla-only leading seconds field).
	Schedule string `json:"schedule"`
	// TimeZone is an IANA zone name the schedule is read in (default: the
	// control plane's local zone, as in Kubernetes).
	TimeZone string `json:"timeZone,omitempty"`
	// ConcurrencyPolicy: Allow (default), Forbid or Replace.
	ConcurrencyPolicy string `json:"concurrencyPolicy,omitempty"`
	// StartingDeadlineSeconds: a run missed by more than this is skipped.
	StartingDeadlineSeconds    *int64          `json:"startingDeadlineSeconds,omitempty"`
	Suspend                    *bool           `json:"suspend,omitempty"`
	SuccessfulJobsHistoryLimit *int32          `json:"successfulJobsHistoryLimit,omitempty"`
	FailedJobsHistoryLimit     *int32          `json:"failedJobsHistoryLimit,omitempty"`
	JobTemplate                JobTemplateSpec `json:"jobTemplate"`
}

// JobTemplateSpec is the job a cron job stamps out.
type JobTemplateSpec struct {
	ObjectMeta `json:"metadata,omitempty"`
	Spec       JobSpec `json:"spec"`
}

// CronJobStatus is the observed state of a cron job.
type CronJobStatus struct {
	Active             []ObjectReference `json:"active,omitempty"`
	LastScheduleTime   Time              `json:"lastScheduleTime,omitzero"`
	LastSuccessfulTime Time              `json:"lastSuccessfulTime,omitzero"`
}

// Concurrency policies.
const (
	ConcurrencyAllow   = "Allow"
	ConcurrencyForbid  = "Forbid"
	ConcurrencyReplace = "Replace"
)

// Suspended reports whether spec.suspend is true.
func (c *CronJob) Suspended() bool { return c.Spec.Suspend != nil && *c.Spec.Suspend }

// Location is the zone the schedule is read in.
func (c *CronJob) Location() (*time.Location, error) {
	if c.Spec.TimeZone == "" {
		return time.Local, nil
	}
	return time.LoadLocation(c.Spec.TimeZone)
}

func defaultCronJob(c *CronJob) {
	if c.Spec.ConcurrencyPolicy == "" {
		c.Spec.ConcurrencyPolicy = ConcurrencyAllow
	}
	if c.Spec.Suspend == nil {
		c.Spec.Suspend = new(bool)
	}
	if c.Spec.SuccessfulJobsHistoryLimit == nil {
		c.Spec.SuccessfulJobsHistoryLimit = Int32(3)
	}
	if c.Spec.FailedJobsHistoryLimit == nil {
		c.Spec.FailedJobsHistoryLimit = Int32(1)
	}
	defaultJobSpec(&c.Spec.JobTemplate.Spec)
}

func validateCronJob(fe *FieldErrors, c *CronJob) {
	// Job names are <cronjob>-<up to 11 digits> and must fit a label value.
	if len(c.Name) > 52 {
		fe.add("metadata.name", "must be no more than 52 characters (its jobs are named <name>-<scheduled time>)")
	}
	if _, err := cron.Parse(c.Spec.Schedule); err != nil {
		fe.add("spec.schedule", "%v", err)
	}
	if c.Spec.TimeZone != "" {
		if _, err := time.LoadLocation(c.Spec.TimeZone); err != nil {
			fe.add("spec.timeZone", "%q is not a known IANA time zone: %v", c.Spec.TimeZone, err)
		}
	}
	switch c.Spec.ConcurrencyPolicy {
	case "", ConcurrencyAllow, ConcurrencyForbid, ConcurrencyReplace:
	default:
		fe.add("spec.concurrencyPolicy", "%q is not Allow, Forbid or Replace", c.Spec.ConcurrencyPolicy)
	}
	if d := c.Spec.StartingDeadlineSeconds; d != nil && *d < 0 {
		fe.add("spec.startingDeadlineSeconds", "must be >= 0, got %d", *d)
	}
	for _, f := range []struct {
		name string
		v    *int32
	}{{"successfulJobsHistoryLimit", c.Spec.SuccessfulJobsHistoryLimit}, {"failedJobsHistoryLimit", c.Spec.FailedJobsHistoryLimit}} {
		if f.v != nil && *f.v < 0 {
			fe.add("spec."+f.name, "must be >= 0, got %d", *f.v)
		}
	}
	if err := ValidLabels(c.Spec.JobTemplate.Labels); err != nil {
		fe.add("spec.jobTemplate.metadata.labels", "%v", err)
	}
	validateJobSpec(fe, "spec.jobTemplate.spec", &c.Spec.JobTemplate.Spec, false)
}
