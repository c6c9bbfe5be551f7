package edgeagent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/store"
)

// podEvents lists the events about the pod named name.
func podEvents(t *testing.T, f *fleet, name string) []*api.Event {
	t.Helper()
	objs, _, err := f.st.List(context.Background(), "Event", store.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.Event
	for _, o := range objs {
		if ev := o.(*api.Event); ev.InvolvedObject.Name == name {
			out = append(out, ev)
		}
	}
	return out
}

func describeEvents(evs []*api.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %s x%d: %s\n", e.Type, e.Reason, e.Count, e.Message)
	}
	return b.String()
}

// waitEvent waits for an event about pod with typ and reason whose message
// starts with prefix.
func waitEvent(t *testing.T, f *fleet, pod, typ, reason, prefix string) *api.Event {
	t.Helper()
	var found *api.Event
	waitFor(t, 30*time.Second, "event "+reason+" "+prefix, func() bool {
		for _, e := range podEvents(t, f, pod) {
			if e.Type == typ && e.Reason == reason && strings.HasPrefix(e.Message, prefix) {
				found = e
				return true
			}
		}
		return false
	}, func() string { return describeEvents(podEvents(t, f, pod)) })
	return found
}

func TestAgentRecordsPodLifecycleEvents(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "hello:v1", guest(t, "hello"))
	startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	web := f.schedule(t, "edge-1", webPod("web", "hello:v1"))
	f.schedule(t, "edge-1", cmdPod("missing", "hello:v9", api.RestartNever))

	tests := []struct {
		pod, typ, reason, prefix string
	}{
		{"web", api.EventNormal, EventPulling, `Pulling module "hello:v1"`},
		{"web", api.EventNormal, EventPulled, "Successfully pulled module hello:v1 (sha256:"},
		{"web", api.EventNormal, EventCreated, "Created container web"},
		{"web", api.EventNormal, EventStarted, "Started container web"},
		{"missing", api.EventWarning, EventFailed, `Failed to pull module "hello:v9": module hello:v9 not found in the fleet's module store`},
		{"missing", api.EventWarning, ReasonErrImagePull, "Error: ErrImagePull"},
		{"missing", api.EventWarning, EventBackOff, `Back-off pulling module "hello:v9"`},
	}
	for _, tt := range tests {
		t.Run(tt.pod+" "+tt.reason, func(t *testing.T) {
			e := waitEvent(t, f, tt.pod, tt.typ, tt.reason, tt.prefix)
			if e.Source.Component != "flotilla-agent" || e.Source.Host != "edge-1" || e.InvolvedObject.Kind != "Pod" || e.InvolvedObject.UID == "" {
				t.Errorf("event source or object: %s", toJSON(e))
			}
		})
	}
	// Repeated failures land on one event whose count grows.
	waitFor(t, 30*time.Second, "the Failed event counted more than once", func() bool {
		for _, e := range podEvents(t, f, "missing") {
			if e.Reason == EventFailed && e.Count > 1 {
				return true
			}
		}
		return false
	}, func() string { return describeEvents(podEvents(t, f, "missing")) })

	f.unassign(t, "edge-1", web)
	waitEvent(t, f, "web", api.EventNormal, EventKilling, "Stopping container web")
}

func TestImagePullWaitingReasonAlternatesWhileBackoffGrows(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	f.schedule(t, "edge-1", cmdPod("missing", "nope:v1", api.RestartNever))
	seen := map[string]bool{}
	waitFor(t, 30*time.Second, "both ErrImagePull and ImagePullBackOff", func() bool {
		st := f.pod(t, "missing").Status
		if len(st.ContainerStatuses) == 1 && st.ContainerStatuses[0].State.Waiting != nil {
			seen[st.ContainerStatuses[0].State.Waiting.Reason] = true
		}
		return seen[ReasonErrImagePull] && seen[ReasonImagePullBackOff]
	}, func() string { return toJSON(seen) })
}
