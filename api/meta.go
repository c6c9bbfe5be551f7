// Package api holds Flotilla's resource types in the Kubernetes shape
// (apiVersion, kind, metadata, spec, status), with their defaults,
// validation and strict manifest decoding.
package api

import (
	"encoding/json"
	"time"
)

// Version is the API group version every object carries.
const Version = "flotilla.dev/v1"

// TypeMeta names an object's schema.
type TypeMeta struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// ObjectMeta is the metadata every object has.
type ObjectMeta struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// GenerateName asks the server for a unique name with this prefix.
	GenerateName string            `json:"generateName,omitempty"`
	UID          string            `json:"uid,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	// ResourceVersion is the revision of the object's key in the store;
	// an update must carry the one it read (compare-and-set).
	ResourceVersion   string           `json:"resourceVersion,omitempty"`
	Generation        int64            `json:"generation,omitempty"`
	CreationTimestamp Time             `json:"creationTimestamp,omitzero"`
	OwnerReferences   []OwnerReference `json:"ownerReferences,omitempty"`
}

// OwnerReference points at the object that owns this one; the garbage
// collector deletes an object whose owner is gone.
type OwnerReference struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	UID        string `json:"uid"`
	Controller bool   `json:"controller,omitempty"`
}

// Time is a timestamp that encodes as RFC 3339 and as nothing when zero.
type Time struct{ time.Time }

// Now returns the current time truncated to seconds, as Kubernetes does.
func Now() Time { return Time{time.Now().UTC().Truncate(time.Second)} }

// MarshalJSON encodes the zero time as null.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339))
}

// UnmarshalJSON accepts null or an RFC 3339 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return err
	}
	t.Time = p
	return nil
}

// Object is implemented by every resource type.
type Object interface {
	GetMeta() *ObjectMeta
	GetType() *TypeMeta
}

// GetMeta returns the object's metadata.
func (m *ObjectMeta) GetMeta() *ObjectMeta { return m }

// GetType returns the object's type metadata.
func (t *TypeMeta) GetType() *TypeMeta { return t }

// Condition is a typed observation about an object.
type Condition struct {
	Type               string `json:"type"`
	Status             string `json:"status"` // True, False, Unknown
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
	LastTransitionTime Time   `json:"lastTransitionTime,omitzero"`
	LastHeartbeatTime  Time   `json:"lastHeartbeatTime,omitzero"`
	// LastUpdateTime moves whenever a workload makes progress, even with no
	// status change (a deployment's progress deadline counts from it).
	LastUpdateTime Time `json:"lastUpdateTime,omitzero"`
}

// Condition status values.
const (
	ConditionTrue    = "True"
	ConditionFalse   = "False"
	ConditionUnknown = "Unknown"
)

// SetCondition adds or replaces the condition of c's type and reports
// whether anything changed; the transition time moves only when the status
// does.
func SetCondition(conds *[]Condition, c Condition) bool {
	for i := range *conds {
		old := &(*conds)[i]
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
			if !c.LastHeartbeatTime.IsZero() {
				old.LastHeartbeatTime = c.LastHeartbeatTime
			}
			return false
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = Now()
		}
		*old = c
		return true
	}
	if c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = Now()
	}
	*conds = append(*conds, c)
	return true
}

// FindCondition returns the condition of type t, or nil.
func FindCondition(conds []Condition, t string) *Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// IsControlledBy reports whether obj's controller owner has the given uid.
func IsControlledBy(m *ObjectMeta, uid string) bool {
	for _, r := range m.OwnerReferences {
		if r.Controller && r.UID == uid {
			return true
		}
	}
	return false
}

// ControllerOf returns obj's controlling owner reference, or nil.
func ControllerOf(m *ObjectMeta) *OwnerReference {
	for i := range m.OwnerReferences {
		if m.OwnerReferences[i].Controller {
			return &m.OwnerReferences[i]
		}
	}
	return nil
}
