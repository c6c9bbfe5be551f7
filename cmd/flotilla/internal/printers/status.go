package printers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// NodeStatus is Ready, NotReady or Unknown, plus ",SchedulingDisabled"
// for a cordoned node.
func NodeStatus(n *api.Node) string {
	s := "Unknown"
	if c := api.FindCondition(n.Status.Conditions, api.NodeReady); c != nil {
		switch c.Status {
		case api.ConditionTrue:
			s = "Ready"
		case api.ConditionFalse:
			s = "NotReady"
		}
	}
	if n.Spec.Unschedulable {
		s += ",SchedulingDisabled"
	}
	return s
}

// nodeRolePrefix marks role labels, as in Kubernetes.
const nodeRolePrefix = "node-role.kubernetes.io/"

// NodeRoles lists node-role.kubernetes.io/<role> labels, or <none>.
func NodeRoles(n *api.Node) string {
	var roles []string
	for k := range n.Labels {
		if r, ok := strings.CutPrefix(k, nodeRolePrefix); ok && r != "" {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return "<none>"
	}
	sort.Strings(roles)
	return strings.Join(roles, ",")
}

// PodReady counts ready containers against the containers in the spec.
func PodReady(p *api.Pod) (ready, total int) {
	total = len(p.Spec.Containers)
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Ready {
			ready++
		}
	}
	return ready, total
}

// PodStatus is kubectl's STATUS column: the most telling container reason
// (a waiting reason such as CrashLoopBackOff or ErrImagePull, else a
// terminated reason such as Completed or Error), else the pod's reason,
// else its phase.
func PodStatus(p *api.Pod) string {
	reason := p.Status.Phase
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	running := false
	// kubectl walks containers in order and the last one with something to
	// say wins; a waiting reason beats a terminated one of the same
	// container because a container has one state at a time.
	for _, cs := range p.Status.ContainerStatuses {
		switch st := cs.State; {
		case st.Waiting != nil && st.Waiting.Reason != "":
			reason = st.Waiting.Reason
		case st.Terminated != nil && st.Terminated.Reason != "":
			reason = st.Terminated.Reason
		case st.Terminated != nil:
			reason = fmt.Sprintf("ExitCode:%d", st.Terminated.ExitCode)
		case st.Running != nil && cs.Ready:
			running = true
		}
	}
	// A finished sidecar must not hide a pod that still serves.
	if reason == "Completed" && running {
		reason = api.PodRunning
	}
	if reason == "" {
		reason = api.PodPending
	}
	return reason
}

// PodRestarts is the RESTARTS column: the total, with how long ago the
// last restart happened when known ("3 (2m ago)").
func PodRestarts(p *api.Pod, now time.Time) string {
	var n int32
	var last time.Time
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
		if t := cs.LastState.Terminated; t != nil && t.FinishedAt.After(last) {
			last = t.FinishedAt.Time
		}
	}
	if n > 0 && !last.IsZero() {
		return fmt.Sprintf("%d (%s ago)", n, HumanDuration(now.Sub(last)))
	}
	return fmt.Sprint(n)
}

// PodPorts lists the host endpoints the agent serves for the pod.
func PodPorts(p *api.Pod) []string {
	var out []string
	for _, cs := range p.Status.ContainerStatuses {
		for _, ps := range cs.Ports {
			out = append(out, fmt.Sprintf("%s:%d", ps.HostIP, ps.HostPort))
		}
	}
	return out
}
