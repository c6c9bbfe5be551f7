package api

// Update strategy types. RollingUpdate is shared by Deployments,
// DaemonSets and StatefulSets; OnDelete by the last two.
const (
	RollingUpdateStrategy = "RollingUpdate"
	OnDeleteStrategy      = "OnDelete"
)
