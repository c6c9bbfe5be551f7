package api

import "fmt"

// Job runs pods until a number of them succeed.
type Job struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       JobSpec   `json:"spec"`
	Status     JobStatus `json:"status,omitempty"`
}

// JobSpec is the desired state of a job.
type JobSpec struct {
	// Completions is how many pods must succeed (default 1).
	Completions *int32 `json:"completions,omitempty"`
	// Parallelism caps how many pods run at once (default 1).
	Parallelism *int32 `json:"parallelism,omitempty"`
	// BackoffLimit is how many failures (failed pods plus container
	// restarts under restartPolicy OnFailure) the job survives (default 6).
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`
	// ActiveDeadlineSeconds bounds the job's run time from its start; past
	// it the job fails and its running pods are deleted.
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
	// TTLSecondsAfterFinished deletes the job (and so its pods) this long
	// after it completes or fails.
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// Selector defaults to job-name=<name>; see defaultJob.
	Selector *LabelSelector  `json:"selector,omitempty"`
	Template PodTemplateSpec `json:"template"`
}

// JobStatus is the observed state of a job.
type JobStatus struct {
	Active         int32       `json:"active,omitempty"`
	Succeeded      int32       `json:"succeeded,omitempty"`
	Failed         int32       `json:"failed,omitempty"`
	StartTime      Time        `json:"startTime,omitzero"`
	CompletionTime Time        `json:"completionTime,omitzero"`
	Conditions     []Condition `json:"conditions,omitempty"`
}

// Job condition types and reasons.
const (
	JobComplete = "Complete"
	JobFailed   = "Failed"

	JobReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	JobReasonDeadlineExceeded     = "DeadlineExceeded"
)

// Labels the job controller puts on its pods, as Kubernetes' legacy ones.
const (
	JobNameLabel       = "job-name"
	ControllerUIDLabel = "controller-uid"
)

// Finished reports whether the job has a Complete or Failed condition
// that is True, and which.
func (j *Job) Finished() (string, bool) {
	for _, t := range []string{JobComplete, JobFailed} {
		if c := FindCondition(j.Status.Conditions, t); c != nil && c.Status == ConditionTrue {
			return t, true
		}
	}
	return "", false
}

// defaultJob fills in the counts and, when no selector is given, selects
// job-name=<name> and puts that label on the template. Kubernetes selects
// by controller-uid, but the store assigns the uid after defaulting; the
// controller still labels every pod with controller-uid and owns pods by
// uid, so a re-created job of the same name never adopts the old pods.
func defaultJob(j *Job) {
	defaultJobSpec(&j.Spec)
	if j.Spec.Selector == nil && j.Name != "" {
		if j.Spec.Template.Labels == nil {
			j.Spec.Template.Labels = map[string]string{}
		}
		j.Spec.Template.Labels[JobNameLabel] = j.Name
		j.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{JobNameLabel: j.Name}}
	}
}

// defaultJobSpec fills what a job (or a cron job's template) may leave out.
func defaultJobSpec(s *JobSpec) {
	if s.Completions == nil {
		s.Completions = Int32(1)
	}
	if s.Parallelism == nil {
		s.Parallelism = Int32(1)
	}
	if s.BackoffLimit == nil {
		s.BackoffLimit = Int32(6)
	}
	// A pod of a job must end; Never is what `kubectl create job` writes.
	// Without this, the pod default (Always) would reject every job that
	// leaves the field out.
	if s.Template.Spec.RestartPolicy == "" {
		s.Template.Spec.RestartPolicy = RestartNever
	}
	defaultPodSpec(&s.Template.Spec)
}

func validateJob(fe *FieldErrors, j *Job) {
	// The name becomes the job-name label value.
	if len(j.Name) > 63 {
		fe.add("metadata.name", "must be no more than 63 characters (it is the job-name label of the job's pods)")
	}
	validateJobSpec(fe, "spec", &j.Spec, true)
}

// validateJobSpec checks a job spec at path; a cron job's template has no
// selector yet (each job gets its own), so it is required only for jobs.
func validateJobSpec(fe *FieldErrors, path string, s *JobSpec, needSelector bool) {
	for _, f := range []struct {
		name string
		v    *int32
	}{{"completions", s.Completions}, {"parallelism", s.Parallelism}, {"backoffLimit", s.BackoffLimit}, {"ttlSecondsAfterFinished", s.TTLSecondsAfterFinished}} {
		if f.v != nil && *f.v < 0 {
			fe.add(path+"."+f.name, "must be >= 0, got %d", *f.v)
		}
	}
	if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds <= 0 {
		fe.add(path+".activeDeadlineSeconds", "must be > 0, got %d", *s.ActiveDeadlineSeconds)
	}
	tpl := path + ".template"
	switch s.Template.Spec.RestartPolicy {
	case RestartNever, RestartOnFailure:
	default:
		fe.add(tpl+".spec.restartPolicy", "%q is not allowed in a job: want Never or OnFailure", s.Template.Spec.RestartPolicy)
	}
	if err := ValidLabels(s.Template.Labels); err != nil {
		fe.add(tpl+".metadata.labels", "%v", err)
	}
	if sel := s.Selector; sel != nil || needSelector {
		if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
			fe.add(path+".selector", "is required and must not be empty")
		} else if err := ValidLabels(sel.MatchLabels); err != nil {
			fe.add(path+".selector.matchLabels", "%v", err)
		} else if ls, err := sel.AsSelector(); err != nil {
			fe.add(path+".selector", "%v", err)
		} else if !ls.Matches(s.Template.Labels) {
			fe.add(path+".selector", "selector %q does not match template labels %q", ls.String(), FormatLabels(s.Template.Labels))
		}
	}
	// Validate the pod spec without its restart policy, reported above in
	// job terms.
	ps := s.Template.Spec
	ps.RestartPolicy = RestartNever
	validatePodSpec(fe, tpl+".spec", &ps)
}

// CompletionsString is the COMPLETIONS column: succeeded/completions.
func (j *Job) CompletionsString() string {
	want := int32(1)
	if j.Spec.Completions != nil {
		want = *j.Spec.Completions
	}
	return fmt.Sprintf("%d/%d", j.Status.Succeeded, want)
}
