package api

import "fmt"

// PersistentVolumeClaim asks for node-local storage that outlives pods.
// Flotilla has no network storage: a claim is a directory on one node
// (the agent's DataDir/volumes/<namespace>/<claim>), so once bound to a
// node it keeps every pod using it on that node.
type PersistentVolumeClaim struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       PersistentVolumeClaimSpec   `json:"spec"`
	Status     PersistentVolumeClaimStatus `json:"status,omitempty"`
}

// PersistentVolumeClaimSpec is the storage asked for.
type PersistentVolumeClaimSpec struct {
	AccessModes []string             `json:"accessModes,omitempty"` // ReadWriteOnce (default)
	Resources   ResourceRequirements `json:"resources,omitempty"`   // requests.storage
}

// PersistentVolumeClaimStatus says where the claim lives.
type PersistentVolumeClaimStatus struct {
	Phase string `json:"phase,omitempty"` // Pending, Bound
	// NodeName is the node whose disk holds the volume; set when the
	// first pod using the claim is scheduled.
	NodeName string `json:"nodeName,omitempty"`
}

// Claim phases and access modes.
const (
	ClaimPending  = "Pending"
	ClaimBound    = "Bound"
	ReadWriteOnce = "ReadWriteOnce"
	ReadOnlyMany  = "ReadOnlyMany"
	ReadWriteMany = "ReadWriteMany"
)

func defaultPVCSpec(s *PersistentVolumeClaimSpec) {
	if len(s.AccessModes) == 0 {
		s.AccessModes = []string{ReadWriteOnce}
	}
}

func defaultPVC(o *PersistentVolumeClaim) {
	defaultPVCSpec(&o.Spec)
	if o.Status.Phase == "" {
		o.Status.Phase = ClaimPending
	}
}

func validatePVCSpec(fe *FieldErrors, path string, s *PersistentVolumeClaimSpec) {
	for i, m := range s.AccessModes {
		switch m {
		case ReadWriteOnce, ReadOnlyMany, ReadWriteMany:
		default:
			fe.add(fmt.Sprintf("%s.accessModes[%d]", path, i), "%q is not ReadWriteOnce, ReadOnlyMany or ReadWriteMany", m)
		}
	}
	for name, q := range s.Resources.Requests {
		if name != "storage" {
			fe.add(path+".resources.requests."+name, "unknown resource; want storage")
		} else if q.Value() <= 0 {
			fe.add(path+".resources.requests.storage", "must be > 0")
		}
	}
	if _, ok := s.Resources.Requests["storage"]; !ok {
		fe.add(path+".resources.requests.storage", "is required")
	}
}

func validatePVC(fe *FieldErrors, o *PersistentVolumeClaim) {
	validatePVCSpec(fe, "spec", &o.Spec)
	switch o.Status.Phase {
	case "", ClaimPending, ClaimBound:
	default:
		fe.add("status.phase", "%q is not Pending or Bound", o.Status.Phase)
	}
	if o.Status.NodeName != "" {
		if err := ValidDNSLabel(o.Status.NodeName); err != nil {
			fe.add("status.nodeName", "%v", err)
		}
	}
}
