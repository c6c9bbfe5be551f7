package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

// TestRollingUpdateAndUndoKeepTheirBounds rolls real wasm pods from v1 to
// v2 and back (rollout undo) under several maxSurge/maxUnavailable
// settings, checking every pod state the store goes through.
func TestRollingUpdateAndUndoKeepTheirBounds(t *testing.T) {
	f := testfleet.Start(t, testfleet.AgentSpec{Name: "pi-1"}, testfleet.AgentSpec{Name: "pi-2"})
	f.Push(t, "examples/hello", "hello:v1")
	f.Push(t, "examples/hello", "hello:v2", "-X main.version=2")
	tests := []struct {
		name                  string
		replicas              int32
		maxSurge, maxUnavail  api.IntOrString
		wantSurge, wantUnavai int
	}{
		{"percentages: 50% surge rounds 1.5 up, 25% unavailable rounds 1 down", 3, api.FromString("50%"), api.FromString("25%"), 2, 0},
		{"no surge: replace in place one at a time", 4, api.FromInt(0), api.FromInt(1), 0, 1},
		{"surge and unavailable together", 4, api.FromInt(2), api.FromInt(1), 2, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			name := fmt.Sprintf("web%d", i)
			d := webDeployment(name, tt.replicas, nil)
			d.Spec.Strategy = api.DeploymentStrategy{Type: api.RollingUpdateStrategy,
				RollingUpdate: &api.RollingUpdateDeployment{MaxSurge: &tt.maxSurge, MaxUnavailable: &tt.maxUnavail}}
			if _, err := f.Client.Create(ctx, d); err != nil {
				t.Fatal(err)
			}
			sel := "app=" + name
			testfleet.WaitFor(t, "v1 complete", 60*time.Second, deploymentDone(t, f, name))
			bounds := watchBounds(t, f, sel, int(tt.replicas), tt.wantSurge, tt.wantUnavai)

			mustCLI(t, f, "set", "image", "deployment/"+name, "hello=hello:v2")
			testfleet.WaitFor(t, "v2 complete", 90*time.Second, deploymentDone(t, f, name))
			testfleet.WaitFor(t, "v2 pods Running", 30*time.Second, allRunning(t, f, sel, int(tt.replicas)))
			if got := answers(t, f, sel); !allSuffix(got, "v=2") || len(got) != int(tt.replicas) {
				t.Fatalf("after the rollout: %q", got)
			}

			if out := mustCLI(t, f, "rollout", "undo", "deployment/"+name); !strings.Contains(out, "rolled back") {
				t.Fatalf("undo: %q", out)
			}
			testfleet.WaitFor(t, "v1 complete again", 90*time.Second, func() bool {
				ps := listPods(t, f, sel)
				return deploymentDone(t, f, name)() && len(ps) == int(tt.replicas) && ps[0].Spec.Containers[0].Image == "hello:v1"
			})
			testfleet.WaitFor(t, "v1 pods Running", 30*time.Second, allRunning(t, f, sel, int(tt.replicas)))
			if got := answers(t, f, sel); !allSuffix(got, "v=1") || len(got) != int(tt.replicas) {
				t.Fatalf("after undo: %q", got)
			}
			bounds.stop(t)
			rss, _ := f.Client.List(ctx, "ReplicaSet", "default", sel)
			if len(rss) != 2 {
				t.Fatalf("undo made a new ReplicaSet: %d, want the 2 revisions", len(rss))
			}
		})
	}
}
