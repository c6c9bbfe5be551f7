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

// TestSeedStory is the kubectl walk-through of the seed (k8s-intro.txt) run
// with the flotilla binary against real agents: create, scale, set image
// (rolling update), a broken image that stalls the rollout while the old
// pods keep serving, describe shows why, undo, history.
func TestSeedStory(t *testing.T) {
	f := testfleet.Start(t, testfleet.AgentSpec{Name: "pi-1"}, testfleet.AgentSpec{Name: "pi-2"})
	ctx := context.Background()
	f.Push(t, "examples/hello", "hello:v1")
	f.Push(t, "examples/hello", "hello:v2", "-X main.version=2")

	if out := mustCLI(t, f, "create", "deployment", "web", "--image=hello:v1", "--port=8080"); out != "deployment/web created\n" {
		t.Fatalf("create deployment: %q", out)
	}
	if out := mustCLI(t, f, "scale", "deployments/web", "--replicas=3"); out != "deployment/web scaled\n" {
		t.Fatalf("scale: %q", out)
	}
	testfleet.WaitFor(t, "3 pods Running", 60*time.Second, allRunning(t, f, "app=web", 3))
	testfleet.WaitFor(t, "the deployment complete", 30*time.Second, deploymentDone(t, f, "web"))
	for _, a := range answers(t, f, "app=web") {
		if !strings.HasSuffix(a, "v=1") {
			t.Fatalf("a v1 pod answered %q", a)
		}
	}

	// Defaults on 3 replicas: maxSurge 25% rounds up to 1, maxUnavailable
	// 25% rounds down to 0.
	bounds := watchBounds(t, f, "app=web", 3, 1, 0)

	if out := mustCLI(t, f, "set", "image", "deployments/web", "hello=hello:v2"); out != "deployment/web image updated\n" {
		t.Fatalf("set image: %q", out)
	}
	out := mustCLI(t, f, "rollout", "status", "deployments/web", "--timeout=2m")
	if !strings.HasSuffix(out, "deployment \"web\" successfully rolled out\n") {
		t.Fatalf("rollout status:\n%s", out)
	}
	t.Logf("rollout status:\n%s", out)
	testfleet.WaitFor(t, "3 v2 pods Running", 30*time.Second, allRunning(t, f, "app=web", 3))
	if got := answers(t, f, "app=web"); len(got) != 3 || !allSuffix(got, "v=2") {
		t.Fatalf("after the rollout the pods answer %q, want 3 × v=2", got)
	}

	// A missing tag: the rollout must stall and leave the v2 pods serving.
	if _, err := f.Client.Modify(ctx, "Deployment", "default", "web", func(o api.Object) error {
		o.(*api.Deployment).Spec.ProgressDeadlineSeconds = api.Int32(5)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, f, "set", "image", "deployments/web", "hello=hello:v9")
	var stuck string
	testfleet.WaitFor(t, "a v9 pod in ImagePullBackOff", 60*time.Second, func() bool {
		for _, p := range listPods(t, f, "app=web") {
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil && w.Reason == "ImagePullBackOff" && p.Status.Phase == api.PodPending {
					stuck = p.Name
					return true
				}
			}
		}
		return false
	})
	testfleet.WaitFor(t, "Progressing=False/ProgressDeadlineExceeded", 30*time.Second, func() bool {
		o, err := f.Client.Get(ctx, "Deployment", "default", "web")
		if err != nil {
			return false
		}
		c := api.FindCondition(o.(*api.Deployment).Status.Conditions, "Progressing")
		return c != nil && c.Status == api.ConditionFalse && c.Reason == "ProgressDeadlineExceeded"
	})
	out, errOut, err := runCLI(t, f, "rollout", "status", "deployments/web", "--timeout=30s")
	if err == nil || !strings.Contains(errOut, `deployment "web" exceeded its progress deadline`) {
		t.Fatalf("rollout status of a stalled rollout: err=%v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	if got := answers(t, f, "app=web"); len(got) != 3 || !allSuffix(got, "v=2") {
		t.Fatalf("during the stalled rollout the ready pods answer %q, want 3 × v=2", got)
	}
	if out := mustCLI(t, f, "get", "pods"); !strings.Contains(out, "ImagePullBackOff") && !strings.Contains(out, "ErrImagePull") {
		t.Errorf("get pods does not show the pull failure:\n%s", out)
	}
	if out := mustCLI(t, f, "describe", "pod", stuck); !strings.Contains(out, "ImagePullBackOff") || !strings.Contains(out, "hello:v9") {
		t.Errorf("describe pod %s does not say ImagePullBackOff for hello:v9:\n%s", stuck, out)
	}

	if out := mustCLI(t, f, "rollout", "undo", "deployments/web"); out != "deployment.apps/web rolled back\n" {
		t.Fatalf("rollout undo: %q", out)
	}
	mustCLI(t, f, "rollout", "status", "deployments/web", "--timeout=2m")
	testfleet.WaitFor(t, "3 v2 pods and nothing else", 30*time.Second, func() bool {
		ps := listPods(t, f, "app=web")
		return len(ps) == 3 && allRunning(t, f, "app=web", 3)() && ps[0].Spec.Containers[0].Image == "hello:v2"
	})
	if got := answers(t, f, "app=web"); len(got) != 3 || !allSuffix(got, "v=2") {
		t.Fatalf("after undo the pods answer %q, want 3 × v=2", got)
	}
	bounds.stop(t)

	// History: v1 (no cause), the broken v9, and v2 again as the latest
	// revision, the way kubectl numbers a rollback.
	out = mustCLI(t, f, "rollout", "history", "deployments/web")
	want := []string{
		"deployment/web",
		"REVISION   CHANGE-CAUSE",
		"1          <none>",
		"3          flotilla set image deployments/web hello=hello:v9",
		"4          flotilla set image deployments/web hello=hello:v2",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rollout history:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	if out := mustCLI(t, f, "rollout", "history", "deployments/web", "--revision=3"); !strings.Contains(out, "hello:v9") {
		t.Errorf("rollout history --revision=3 does not show hello:v9:\n%s", out)
	}
}

func allSuffix(ss []string, suffix string) bool {
	for _, s := range ss {
		if !strings.HasSuffix(s, suffix) {
			return false
		}
	}
	return true
}
