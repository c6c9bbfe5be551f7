package api

// ControllerRevision is an immutable snapshot of a workload's pod
// template. The StatefulSet controller keeps one per template revision so
// that a replica below the update partition is re-created from the
// template it ran, even when no pod of that revision is left to copy.
type ControllerRevision struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	// Template is the pod template of this revision (Kubernetes stores a
	// patch in `data`; a whole template is simpler and small).
	Template PodTemplateSpec `json:"template"`
	Revision int64           `json:"revision"`
}
