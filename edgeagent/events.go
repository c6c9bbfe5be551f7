package edgeagent

import (
	"github.com/flotilla-edge/flotilla/api"
)

// eventComponent is the source.component of the agent's events, as
// "kubelet" is in Kubernetes.
const eventComponent = "flotilla-agent"

// Event reasons the agent reports, named as the kubelet names them.
const (
	EventPulling   = "Pulling"
	EventPulled    = "Pulled"
	EventFailed    = "Failed"
	EventBackOff   = "BackOff"
	EventCreated   = "Created"
	EventStarted   = "Started"
	EventKilling   = "Killing"
	EventUnhealthy = "Unhealthy"
)

// event records an event about the pod; it never blocks (the recorder
// queues, deduplicates and drops when the store is unreachable).
func (r *podRunner) event(typ, reason, format string, args ...any) {
	if r.a.events == nil {
		return // unit tests build runners without an agent recorder
	}
	r.a.events.Eventf(podRef(r.pod), typ, reason, format, args...)
}

// podRef is the pod with the type set, so the event names its kind
// without relying on what the assignment carried.
func podRef(p *api.Pod) *api.Pod {
	cp := &api.Pod{ObjectMeta: p.ObjectMeta}
	cp.Kind = "Pod"
	return cp
}
