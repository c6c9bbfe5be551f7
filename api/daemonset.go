package api

import "fmt"

// DaemonSet runs one pod of its template on every node that matches the
// template's nodeSelector and whose taints the template tolerates.
type DaemonSet struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       DaemonSetSpec   `json:"spec"`
	Status     DaemonSetStatus `json:"status,omitempty"`
}

// DaemonSetSpec is the desired state of a daemon set.
type DaemonSetSpec struct {
	Selector             *LabelSelector          `json:"selector"`
	Template             PodTemplateSpec         `json:"template"`
	UpdateStrategy       DaemonSetUpdateStrategy `json:"updateStrategy,omitempty"`
	MinReadySeconds      int32                   `json:"minReadySeconds,omitempty"`
	RevisionHistoryLimit *int32                  `json:"revisionHistoryLimit,omitempty"`
}

// DaemonSetUpdateStrategy says how pods move to a new template.
type DaemonSetUpdateStrategy struct {
	Type          string                  `json:"type,omitempty"` // RollingUpdate (default) or OnDelete
	RollingUpdate *RollingUpdateDaemonSet `json:"rollingUpdate,omitempty"`
}

// RollingUpdateDaemonSet bounds how many nodes lack a ready pod during an
// update.
type RollingUpdateDaemonSet struct {
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"` // default 1
}

// DaemonSetStatus is the observed state of a daemon set.
type DaemonSetStatus struct {
	ObservedGeneration     int64 `json:"observedGeneration,omitempty"`
	DesiredNumberScheduled int32 `json:"desiredNumberScheduled"`
	CurrentNumberScheduled int32 `json:"currentNumberScheduled"`
	NumberReady            int32 `json:"numberReady"`
	NumberAvailable        int32 `json:"numberAvailable"`
	UpdatedNumberScheduled int32 `json:"updatedNumberScheduled"`
	NumberMisscheduled     int32 `json:"numberMisscheduled"`
}

func defaultDaemonSet(o *DaemonSet) {
	defaultSelector(&o.Spec.Selector, o.Spec.Template.Labels)
	defaultPodSpec(&o.Spec.Template.Spec)
	if o.Spec.UpdateStrategy.Type == "" {
		o.Spec.UpdateStrategy.Type = RollingUpdateStrategy
	}
	if o.Spec.UpdateStrategy.Type == RollingUpdateStrategy {
		if o.Spec.UpdateStrategy.RollingUpdate == nil {
			o.Spec.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{}
		}
		if o.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable == nil {
			one := FromInt(1)
			o.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &one
		}
	}
	if o.Spec.RevisionHistoryLimit == nil {
		o.Spec.RevisionHistoryLimit = Int32(10)
	}
}

func validateDaemonSet(fe *FieldErrors, o *DaemonSet) {
	validateReplicated(fe, nil, o.Spec.Selector, &o.Spec.Template)
	us := o.Spec.UpdateStrategy
	switch us.Type {
	case "", RollingUpdateStrategy:
		if us.RollingUpdate != nil && us.RollingUpdate.MaxUnavailable != nil {
			validateMaxUnavailable(fe, "spec.updateStrategy.rollingUpdate.maxUnavailable", *us.RollingUpdate.MaxUnavailable)
		}
	case OnDeleteStrategy:
		if us.RollingUpdate != nil {
			fe.add("spec.updateStrategy.rollingUpdate", "may only be set with type RollingUpdate")
		}
	default:
		fe.add("spec.updateStrategy.type", "%q is not RollingUpdate or OnDelete", us.Type)
	}
	if o.Spec.MinReadySeconds < 0 {
		fe.add("spec.minReadySeconds", "must be >= 0, got %d", o.Spec.MinReadySeconds)
	}
	if o.Spec.RevisionHistoryLimit != nil && *o.Spec.RevisionHistoryLimit < 0 {
		fe.add("spec.revisionHistoryLimit", "must be >= 0, got %d", *o.Spec.RevisionHistoryLimit)
	}
}

// validateMaxUnavailable accepts a positive integer or a percentage in
// 1%-100%: zero would stall every update.
func validateMaxUnavailable(fe *FieldErrors, path string, v IntOrString) {
	if !v.IsString {
		if v.IntVal < 1 {
			fe.add(path, "must be at least 1, got %d", v.IntVal)
		}
		return
	}
	n, err := v.ScaledValue(100, true)
	if err != nil {
		fe.add(path, "%v", err)
		return
	}
	if n < 1 || n > 100 {
		fe.add(path, "%s must be a percentage in 1%%-100%%", fmt.Sprint(v.StrVal))
	}
}
