package api

// Event records something that happened to an object: a pod scheduled, a
// module that could not be pulled, a replica set scaled. Repeats of the
// same event bump Count and LastTimestamp instead of adding objects.
type Event struct {
	TypeMeta       `json:",inline"`
	ObjectMeta     `json:"metadata"`
	InvolvedObject ObjectReference `json:"involvedObject"`
	Reason         string          `json:"reason,omitempty"`
	Message        string          `json:"message,omitempty"`
	Source         EventSource     `json:"source,omitempty"`
	FirstTimestamp Time            `json:"firstTimestamp,omitzero"`
	LastTimestamp  Time            `json:"lastTimestamp,omitzero"`
	Count          int32           `json:"count,omitempty"`
	Type           string          `json:"type,omitempty"` // Normal, Warning
}

// ObjectReference names the object an event is about.
type ObjectReference struct {
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	UID       string `json:"uid,omitempty"`
	FieldPath string `json:"fieldPath,omitempty"`
}

// EventSource says who reported an event.
type EventSource struct {
	Component string `json:"component,omitempty"`
	Host      string `json:"host,omitempty"`
}

// Event types.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)
