package api

import (
	"fmt"
	"strings"
)

// StatefulSet runs replicas with stable names (NAME-0..N-1), stable
// storage (one PersistentVolumeClaim per replica and claim template) and,
// by default, ordered start and stop.
type StatefulSet struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       StatefulSetSpec   `json:"spec"`
	Status     StatefulSetStatus `json:"status,omitempty"`
}

// StatefulSetSpec is the desired state of a stateful set.
type StatefulSetSpec struct {
	Replicas    *int32          `json:"replicas,omitempty"`
	Selector    *LabelSelector  `json:"selector"`
	Template    PodTemplateSpec `json:"template"`
	ServiceName string          `json:"serviceName,omitempty"`
	// PodManagementPolicy: OrderedReady (default) or Parallel.
	PodManagementPolicy  string                    `json:"podManagementPolicy,omitempty"`
	UpdateStrategy       StatefulSetUpdateStrategy `json:"updateStrategy,omitempty"`
	VolumeClaimTemplates []PersistentVolumeClaim   `json:"volumeClaimTemplates,omitempty"`
	MinReadySeconds      int32                     `json:"minReadySeconds,omitempty"`
	RevisionHistoryLimit *int32                    `json:"revisionHistoryLimit,omitempty"`
}

// Pod management policies.
const (
	OrderedReadyPodManagement = "OrderedReady"
	ParallelPodManagement     = "Parallel"
)

// StatefulSetUpdateStrategy says how pods move to a new template.
type StatefulSetUpdateStrategy struct {
	Type          string                            `json:"type,omitempty"` // RollingUpdate (default) or OnDelete
	RollingUpdate *RollingUpdateStatefulSetStrategy `json:"rollingUpdate,omitempty"`
}

// RollingUpdateStatefulSetStrategy: only ordinals >= Partition are updated.
type RollingUpdateStatefulSetStrategy struct {
	Partition *int32 `json:"partition,omitempty"`
}

// StatefulSetStatus is the observed state of a stateful set.
type StatefulSetStatus struct {
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
	Replicas           int32  `json:"replicas"`
	ReadyReplicas      int32  `json:"readyReplicas"`
	CurrentReplicas    int32  `json:"currentReplicas"`
	UpdatedReplicas    int32  `json:"updatedReplicas"`
	AvailableReplicas  int32  `json:"availableReplicas"`
	CurrentRevision    string `json:"currentRevision,omitempty"`
	UpdateRevision     string `json:"updateRevision,omitempty"`
}

func defaultStatefulSet(o *StatefulSet) {
	if o.Spec.Replicas == nil {
		o.Spec.Replicas = Int32(1)
	}
	defaultSelector(&o.Spec.Selector, o.Spec.Template.Labels)
	defaultPodSpec(&o.Spec.Template.Spec)
	if o.Spec.PodManagementPolicy == "" {
		o.Spec.PodManagementPolicy = OrderedReadyPodManagement
	}
	if o.Spec.UpdateStrategy.Type == "" {
		o.Spec.UpdateStrategy.Type = RollingUpdateStrategy
	}
	if o.Spec.UpdateStrategy.Type == RollingUpdateStrategy {
		if o.Spec.UpdateStrategy.RollingUpdate == nil {
			o.Spec.UpdateStrategy.RollingUpdate = &RollingUpdateStatefulSetStrategy{}
		}
		if o.Spec.UpdateStrategy.RollingUpdate.Partition == nil {
			o.Spec.UpdateStrategy.RollingUpdate.Partition = Int32(0)
		}
	}
	if o.Spec.RevisionHistoryLimit == nil {
		o.Spec.RevisionHistoryLimit = Int32(10)
	}
	for i := range o.Spec.VolumeClaimTemplates {
		defaultPVCSpec(&o.Spec.VolumeClaimTemplates[i].Spec)
	}
}

func validateStatefulSet(fe *FieldErrors, o *StatefulSet) {
	// Containers may mount the claim templates: validate the pod the
	// controller will make, with one claim volume per template.
	tpl := o.Spec.Template
	tpl.Spec.Volumes = append([]Volume(nil), tpl.Spec.Volumes...)
	for _, ct := range o.Spec.VolumeClaimTemplates {
		tpl.Spec.Volumes = append(tpl.Spec.Volumes, Volume{Name: ct.Name, PersistentVolumeClaim: &PersistentVolumeClaimVolumeSource{ClaimName: ct.Name + "-" + o.Name + "-0"}})
	}
	validateReplicated(fe, o.Spec.Replicas, o.Spec.Selector, &tpl)
	switch o.Spec.PodManagementPolicy {
	case "", OrderedReadyPodManagement, ParallelPodManagement:
	default:
		fe.add("spec.podManagementPolicy", "%q is not OrderedReady or Parallel", o.Spec.PodManagementPolicy)
	}
	if o.Spec.ServiceName != "" {
		if err := ValidDNSLabel(o.Spec.ServiceName); err != nil {
			fe.add("spec.serviceName", "%v", err)
		}
	}
	// Pod names NAME-<ordinal> become hostnames, so the name must leave
	// room for the ordinal inside one DNS label.
	if n := o.Name; len(n) > 52 || strings.Contains(n, ".") {
		fe.add("metadata.name", "%q must be at most 52 characters without dots: pod names NAME-<ordinal> are hostnames", n)
	}
	us := o.Spec.UpdateStrategy
	switch us.Type {
	case "", RollingUpdateStrategy:
		if ru := us.RollingUpdate; ru != nil && ru.Partition != nil {
			p := *ru.Partition
			switch {
			case p < 0:
				fe.add("spec.updateStrategy.rollingUpdate.partition", "must be >= 0, got %d", p)
			case o.Spec.Replicas != nil && p > *o.Spec.Replicas:
				fe.add("spec.updateStrategy.rollingUpdate.partition", "%d is above replicas %d", p, *o.Spec.Replicas)
			}
		}
	case OnDeleteStrategy:
		if us.RollingUpdate != nil {
			fe.add("spec.updateStrategy.rollingUpdate", "may only be set with type RollingUpdate")
		}
	default:
		fe.add("spec.updateStrategy.type", "%q is not RollingUpdate or OnDelete", us.Type)
	}
	names := map[string]bool{}
	vols := map[string]bool{}
	for _, v := range o.Spec.Template.Spec.Volumes {
		vols[v.Name] = true
	}
	for i := range o.Spec.VolumeClaimTemplates {
		t := &o.Spec.VolumeClaimTemplates[i]
		p := fmt.Sprintf("spec.volumeClaimTemplates[%d]", i)
		if err := ValidDNSLabel(t.Name); err != nil {
			fe.add(p+".metadata.name", "%v", err)
		} else if names[t.Name] {
			fe.add(p+".metadata.name", "duplicate claim template %q", t.Name)
		} else if vols[t.Name] {
			fe.add(p+".metadata.name", "%q is also a volume of the pod template", t.Name)
		}
		names[t.Name] = true
		validatePVCSpec(fe, p+".spec", &t.Spec)
	}
	if o.Spec.MinReadySeconds < 0 {
		fe.add("spec.minReadySeconds", "must be >= 0, got %d", o.Spec.MinReadySeconds)
	}
	if o.Spec.RevisionHistoryLimit != nil && *o.Spec.RevisionHistoryLimit < 0 {
		fe.add("spec.revisionHistoryLimit", "must be >= 0, got %d", *o.Spec.RevisionHistoryLimit)
	}
}
