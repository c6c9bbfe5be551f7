package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// cli builds the flotilla binary once per test binary, so the acceptance
// story runs the real command line, not functions behind it.
func cli(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flotilla-cli-")
		if err != nil {
			cliErr = err
			return
		}
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			cliErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		cliPath = filepath.Join(dir, "flotilla")
		cmd := exec.Command("go", "build", "-o", cliPath, "./cmd/flotilla")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("build flotilla: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// runCLI runs `flotilla args...` against the fleet and returns stdout,
// stderr and the exit error.
func runCLI(t *testing.T, f *testfleet.Fleet, args ...string) (string, string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(cli(t), args...)
	cmd.Env = append(os.Environ(),
		"HOME="+home, "FLOTILLA_CONTEXT="+filepath.Join(home, "context.yaml"),
		"FLOTILLA_SERVER="+f.Server.URL(), "FLOTILLA_TOKEN="+f.Server.Token(), "FLOTILLA_NAMESPACE=default")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func mustCLI(t *testing.T, f *testfleet.Fleet, args ...string) string {
	t.Helper()
	out, errOut, err := runCLI(t, f, args...)
	if err != nil {
		t.Fatalf("flotilla %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// boundsWatch watches every pod change of a deployment and checks, at each
// state the store goes through, Kubernetes' rolling-update promises: at
// most desired+maxSurge pods and at least desired-maxUnavailable ready.
type boundsWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	states     int
	maxPods    int
	minReady   int
	violations []string
}

func watchBounds(t *testing.T, f *testfleet.Fleet, selector string, desired, maxSurge, maxUnavailable int) *boundsWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events, err := f.Client.Watch(ctx, "Pod", "default", selector)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &boundsWatch{cancel: cancel, done: make(chan struct{}), minReady: desired}
	synced := make(chan struct{})
	go func() {
		defer close(w.done)
		pods := map[string]*api.Pod{}
		for ev := range events {
			if ev.Type == "SYNCED" {
				close(synced)
			} else if p, ok := ev.Object.(*api.Pod); ok {
				if ev.Type == "DELETED" || p.IsTerminal() {
					delete(pods, p.Name)
				} else {
					pods[p.Name] = p
				}
			}
			select {
			case <-synced:
			default:
				continue // a partial list is not a state
			}
			ready := 0
			for _, p := range pods {
				if p.IsReady() {
					ready++
				}
			}
			w.mu.Lock()
			w.states++
			w.maxPods = max(w.maxPods, len(pods))
			w.minReady = min(w.minReady, ready)
			if len(pods) > desired+maxSurge {
				w.violations = append(w.violations, fmt.Sprintf("%d pods > %d desired + %d maxSurge: %s", len(pods), desired, maxSurge, podList(pods)))
			}
			if ready < desired-maxUnavailable {
				w.violations = append(w.violations, fmt.Sprintf("%d ready < %d desired - %d maxUnavailable: %s", ready, desired, maxUnavailable, podList(pods)))
			}
			w.mu.Unlock()
		}
	}()
	testfleet.WaitFor(t, "the pod watch to list", 10*time.Second, func() bool {
		select {
		case <-synced:
			return true
		default:
			return false
		}
	})
	return w
}

// stop ends the watch and fails the test on any violated bound.
func (w *boundsWatch) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("watched %d pod states: at most %d pods, at least %d ready", w.states, w.maxPods, w.minReady)
	for _, v := range w.violations {
		t.Error(v)
	}
}

func podList(pods map[string]*api.Pod) string {
	var parts []string
	for _, p := range pods {
		parts = append(parts, fmt.Sprintf("%s(%s ready=%t)", p.Name, p.Spec.Containers[0].Image, p.IsReady()))
	}
	return strings.Join(parts, ", ")
}

// answers returns what every Running and Ready pod of the selector says.
func answers(t *testing.T, f *testfleet.Fleet, selector string) []string {
	t.Helper()
	var out []string
	for _, p := range listPods(t, f, selector) {
		if p.IsReady() && endpoint(p) != "" {
			out = append(out, strings.TrimSpace(get(t, endpoint(p))))
		}
	}
	return out
}

// deploymentDone is kubectl's "successfully rolled out": every replica
// updated and available, no old ones left, the spec observed.
func deploymentDone(t *testing.T, f *testfleet.Fleet, name string) func() bool {
	return func() bool {
		o, err := f.Client.Get(context.Background(), "Deployment", "default", name)
		if err != nil {
			return false
		}
		d := o.(*api.Deployment)
		n := *d.Spec.Replicas
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == n && s.Replicas == n && s.AvailableReplicas == n
	}
}
