package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent"
	"github.com/flotilla-edge/flotilla/edgeagent/oci"
	"github.com/flotilla-edge/flotilla/edgeagent/oci/ocitest"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

// ociFleet starts a one-node fleet whose agent runs OCI containers in a
// containerd namespace of the test's own.
func ociFleet(t *testing.T) (*testfleet.Fleet, *edgeagent.ContainerdConfig) {
	t.Helper()
	cc := testfleet.ContainerdForTest(t)
	return testfleet.Start(t, testfleet.AgentSpec{Name: "pi-1", Containerd: cc}), cc
}

// importImage builds the test server image name:tag for platforms and
// imports it with `flotilla image import`; it returns the reference.
func importImage(t *testing.T, f *testfleet.Fleet, tag string, platforms ...string) string {
	t.Helper()
	if len(platforms) == 0 {
		platforms = []string{"linux/amd64", "linux/arm64"}
	}
	path := ocitest.BuildTestImage(t, "flotilla.test/server", tag, platforms)
	out := mustCLI(t, f, "image", "import", path)
	if !strings.Contains(out, "imported docker.io/flotilla.test/server:"+tag) && !strings.Contains(out, "imported flotilla.test/server:"+tag) {
		t.Fatalf("image import printed %q", out)
	}
	return "flotilla.test/server:" + tag
}

// serverDeployment runs the test server image with one HTTP port.
func serverDeployment(name, image string, replicas int32, env ...api.EnvVar) *api.Deployment {
	d := webDeployment(name, replicas, nil)
	c := &d.Spec.Template.Spec.Containers[0]
	c.Name, c.Image, c.Env = "server", image, env
	return d
}

// ociContainers lists the containerd containers of the test namespace.
func ociContainers(t *testing.T, cc *edgeagent.ContainerdConfig) []oci.Info {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt, err := oci.New(ctx, oci.Config{Socket: cc.Socket, Namespace: cc.Namespace, Snapshotter: cc.Snapshotter, LogDir: t.TempDir(), Log: testfleet.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	infos, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return infos
}

func podStatus(t *testing.T, f *testfleet.Fleet, name string) *api.Pod {
	t.Helper()
	o, err := f.Client.Get(context.Background(), "Pod", "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.Pod)
}

func TestOCIDeploymentServesScalesExecsAndDeletes(t *testing.T) {
	f, cc := ociFleet(t)
	ctx := context.Background()
	image := importImage(t, f, "v1")
	if out := mustCLI(t, f, "image", "ls"); !strings.Contains(out, "linux/amd64,linux/arm64") {
		t.Fatalf("image ls: %q", out)
	}
	if _, err := f.Client.Create(ctx, serverDeployment("web", image, 3)); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "3 container pods ready", 90*time.Second, allRunning(t, f, "app=web", 3))
	for _, p := range listPods(t, f, "app=web") {
		if got := strings.TrimSpace(get(t, endpoint(p))); got != p.Name+" v=" {
			t.Fatalf("pod %s answered %q", p.Name, got)
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.Runtime != api.RuntimeOCI || !strings.HasPrefix(cs.ImageID, "sha256:") || !strings.HasPrefix(cs.ContainerID, "containerd://") {
			t.Fatalf("container status %+v", cs)
		}
	}
	pod := listPods(t, f, "app=web")[0].Name
	if out := mustCLI(t, f, "describe", "pod", pod); !strings.Contains(out, "Runtime:") || !strings.Contains(out, "oci") || !strings.Contains(out, "Container ID:") {
		t.Fatalf("describe does not show the runtime and container ID:\n%s", out)
	}

	// exec: output back, exit code through.
	if out := mustCLI(t, f, "exec", pod, "--", ocitest.ServerPath, "-exec-echo", "hello-from-exec"); out != "hello-from-exec\n" {
		t.Fatalf("exec printed %q", out)
	}
	// -i carries stdin over NATS to the process.
	in := exec.Command(cli(t), "exec", "-i", pod, "--", ocitest.ServerPath, "-cat", "/dev/stdin", "-exec-exit", "0")
	home := t.TempDir()
	in.Env = append(os.Environ(), "HOME="+home, "FLOTILLA_CONTEXT="+filepath.Join(home, "context.yaml"),
		"FLOTILLA_SERVER="+f.Server.URL(), "FLOTILLA_TOKEN="+f.Server.Token(), "FLOTILLA_NAMESPACE=default")
	in.Stdin = strings.NewReader("piped through stdin\n")
	if out, err := in.Output(); err != nil || string(out) != "piped through stdin\n" {
		t.Fatalf("exec -i: %q, %v", out, err)
	}
	_, errOut, err := runCLI(t, f, "exec", pod, "--", ocitest.ServerPath, "-exec-exit", "3")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(errOut, "exec") {
		t.Fatalf("exec -exec-exit 3: err %v stderr %q", err, errOut)
	}

	mustCLI(t, f, "scale", "deployments/web", "--replicas=1")
	testfleet.WaitFor(t, "1 pod left", 60*time.Second, allRunning(t, f, "app=web", 1))
	testfleet.WaitFor(t, "1 container left", 60*time.Second, func() bool { return len(ociContainers(t, cc)) == 1 })

	mustCLI(t, f, "delete", "deployment", "web")
	testfleet.WaitFor(t, "every container removed", 60*time.Second, func() bool { return len(ociContainers(t, cc)) == 0 })
}

func TestOCIRollingUpdateBetweenImportedTagsAndAMissingTagBacksOff(t *testing.T) {
	f, _ := ociFleet(t)
	ctx := context.Background()
	v1 := importImage(t, f, "r1")
	v2 := importImage(t, f, "r2")
	if _, err := f.Client.Create(ctx, serverDeployment("roll", v1, 2, api.EnvVar{Name: "VERSION", Value: "1"})); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "2 v1 pods ready", 90*time.Second, allRunning(t, f, "app=roll", 2))
	if _, err := f.Client.Modify(ctx, "Deployment", "default", "roll", func(o api.Object) error {
		c := &o.(*api.Deployment).Spec.Template.Spec.Containers[0]
		c.Image, c.Env = v2, []api.EnvVar{{Name: "VERSION", Value: "2"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "2 v2 pods answering", 120*time.Second, func() bool {
		ps := listPods(t, f, "app=roll")
		if len(ps) != 2 || !allRunning(t, f, "app=roll", 2)() {
			return false
		}
		for _, p := range ps {
			if p.Spec.Containers[0].Image != v2 || !strings.HasSuffix(strings.TrimSpace(get(t, endpoint(p))), "v=2") {
				return false
			}
		}
		return true
	})

	mustCLI(t, f, "set", "image", "deployment/roll", "server=flotilla.test/server:missing")
	testfleet.WaitFor(t, "a pod waiting on the missing image", 60*time.Second, func() bool {
		for _, p := range listPods(t, f, "app=roll") {
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil && (w.Reason == edgeagent.ReasonErrImagePull || w.Reason == edgeagent.ReasonImagePullBackOff) {
					return true
				}
			}
		}
		return false
	})
	testfleet.WaitFor(t, "a Warning event about the pull", 30*time.Second, func() bool {
		out, _, _ := runCLI(t, f, "get", "events")
		return strings.Contains(out, "Warning") && strings.Contains(out, "Failed to pull image")
	})
	if n := len(listPods(t, f, "app=roll")); n < 2 {
		t.Fatalf("the old pods did not keep serving: %d pods", n)
	}
}

func TestOCIMemoryHogEndsOOMKilledAndSIGTERMIgnorerIsKilledAfterGrace(t *testing.T) {
	f, cc := ociFleet(t)
	ctx := context.Background()
	image := importImage(t, f, "lim")
	hog := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "hog", Namespace: "default"}, Spec: api.PodSpec{
		RestartPolicy: api.RestartNever,
		Containers: []api.Container{{Name: "hog", Image: image, Args: []string{"-hog"},
			Resources: api.ResourceRequirements{Limits: api.ResourceList{"memory": api.MustParseQuantity("32Mi")}}}},
	}}
	stubborn := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "stubborn", Namespace: "default"}, Spec: api.PodSpec{
		TerminationGracePeriodSeconds: api.Int64(2),
		Containers:                    []api.Container{{Name: "s", Image: image, Args: []string{"-ignore-term"}}},
	}}
	for _, p := range []*api.Pod{hog, stubborn} {
		if _, err := f.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	testfleet.WaitFor(t, "the hog OOMKilled", 60*time.Second, func() bool {
		cs := podStatus(t, f, "hog").Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Terminated != nil && cs[0].State.Terminated.Reason == oci.ReasonOOMKilled
	})
	testfleet.WaitFor(t, "the stubborn pod running", 60*time.Second, func() bool {
		return podStatus(t, f, "stubborn").Status.Phase == api.PodRunning
	})
	t0 := time.Now()
	if _, err := f.Client.Delete(ctx, "Pod", "default", "stubborn"); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "the stubborn container killed", 30*time.Second, func() bool {
		for _, in := range ociContainers(t, cc) {
			if in.Labels["flotilla.pod.name"] == "stubborn" {
				return false
			}
		}
		return true
	})
	if d := time.Since(t0); d < 2*time.Second {
		t.Fatalf("the SIGTERM-ignoring container was gone after %s, before its 2s grace period", d)
	}
}

func TestOCIImageWithoutTheNodesPlatformStaysPendingSayingWhy(t *testing.T) {
	f, _ := ociFleet(t)
	image := importImage(t, f, "armonly", "linux/arm64")
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "arm", Namespace: "default"}, Spec: api.PodSpec{
		Containers: []api.Container{{Name: "c", Image: image}},
	}}
	if _, err := f.Client.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	want := "0/1 nodes are available: 1 node(s) didn't match the image's platforms (image offers linux/arm64; node is linux/amd64)."
	testfleet.WaitFor(t, "the platform reason", 30*time.Second, func() bool {
		for _, c := range podStatus(t, f, "arm").Status.Conditions {
			if c.Type == api.PodScheduled && c.Message == want {
				return true
			}
		}
		return false
	})
}

func TestOCIAgentRestartKeepsTheContainerRunningAndAdoptsIt(t *testing.T) {
	cc := testfleet.ContainerdForTest(t)
	dataDir := t.TempDir()
	spec := testfleet.AgentSpec{Name: "pi-1", Containerd: cc, DataDir: dataDir}
	f := testfleet.Start(t, spec)
	image := importImage(t, f, "adopt")
	if _, err := f.Client.Create(context.Background(), serverDeployment("keep", image, 1)); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "the pod ready", 90*time.Second, allRunning(t, f, "app=keep", 1))
	before := listPods(t, f, "app=keep")[0]
	id := before.Status.ContainerStatuses[0].ContainerID

	f.Agents["pi-1"].Stop()
	infos := ociContainers(t, cc)
	if len(infos) != 1 || !infos[0].Running {
		t.Fatalf("after the agent stopped: containers %+v, want 1 running", infos)
	}
	get(t, endpoint(before)) // still serving with no agent

	f.StartAgent(t, spec)
	time.Sleep(2 * time.Second) // let the new agent settle and report
	testfleet.WaitFor(t, "the pod ready again", 30*time.Second, allRunning(t, f, "app=keep", 1))
	after := listPods(t, f, "app=keep")[0]
	cs := after.Status.ContainerStatuses[0]
	if cs.ContainerID != id || cs.RestartCount != 0 || endpoint(after) != endpoint(before) {
		t.Fatalf("after restart: container %s restarts %d endpoint %s; before %s at %s", cs.ContainerID, cs.RestartCount, endpoint(after), id, endpoint(before))
	}
	// Logs continue: the adopted container's new output reaches the stream.
	resp, err := http.Get("http://" + endpoint(after) + "/after-restart")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testfleet.WaitFor(t, "post-restart output in the logs", 30*time.Second, func() bool {
		out, _, _ := runCLI(t, f, "logs", after.Name)
		return strings.Contains(out, "request /after-restart")
	})
}

func TestWasmAndContainerPodsServeBehindOneLabel(t *testing.T) {
	f, _ := ociFleet(t)
	ctx := context.Background()
	f.Push(t, "examples/hello", "hello:v1")
	image := importImage(t, f, "mixed")
	wasm := webDeployment("mixed-wasm", 1, nil)
	ctr := serverDeployment("mixed-oci", image, 1)
	for _, d := range []*api.Deployment{wasm, ctr} {
		d.Spec.Template.Labels["tier"] = "web"
		if _, err := f.Client.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	testfleet.WaitFor(t, "both pods ready", 90*time.Second, allRunning(t, f, "tier=web", 2))
	runtimesSeen := map[string]bool{}
	for _, p := range listPods(t, f, "tier=web") {
		get(t, endpoint(p))
		runtimesSeen[p.Status.ContainerStatuses[0].Runtime] = true
	}
	if !runtimesSeen[api.RuntimeWasm] || !runtimesSeen[api.RuntimeOCI] {
		t.Fatalf("runtimes behind tier=web: %v", runtimesSeen)
	}
	// wasm has no processes to exec into.
	wp := listPods(t, f, "app=mixed-wasm")[0].Name
	if _, errOut, err := runCLI(t, f, "exec", wp, "--", "sh"); err == nil || !strings.Contains(errOut, "exec is not supported for wasm containers") {
		t.Fatalf("exec into wasm: err %v stderr %q", err, errOut)
	}
}

func TestCorruptImageArchiveIsRefusedAndNothingStored(t *testing.T) {
	f := testfleet.Start(t)
	good := ocitest.BuildTestImage(t, "flotilla.test/server", "corrupt", []string{"linux/amd64"})
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "truncated.tar")
	os.WriteFile(truncated, b[:len(b)/2], 0o644)
	garbage := filepath.Join(t.TempDir(), "garbage.tar")
	os.WriteFile(garbage, []byte(strings.Repeat("not a tar archive ", 100)), 0o644)
	for _, file := range []string{truncated, garbage} {
		_, errOut, err := runCLI(t, f, "image", "import", file)
		if err == nil || !strings.Contains(errOut, "image import "+file) {
			t.Fatalf("import %s: err %v stderr %q", filepath.Base(file), err, errOut)
		}
	}
	if _, errOut, _ := runCLI(t, f, "image", "ls"); !strings.Contains(errOut, "No images found") {
		t.Fatalf("image ls after failed imports: %q", errOut)
	}
}

func TestMissingContainerdSocketMarksTheNodeAndWasmPodsStillRun(t *testing.T) {
	f := testfleet.Start(t, testfleet.AgentSpec{Name: "pi-1", Containerd: &edgeagent.ContainerdConfig{Socket: "/nonexistent/containerd.sock"}})
	ctx := context.Background()
	testfleet.WaitFor(t, "ContainerRuntimeReady=False", 30*time.Second, func() bool {
		o, err := f.Client.Get(ctx, "Node", "", "pi-1")
		if err != nil {
			return false
		}
		n := o.(*api.Node)
		for _, c := range n.Status.Conditions {
			if c.Type == api.NodeContainerRuntimeReady && c.Status == api.ConditionFalse && c.Reason == "ContainerdUnavailable" &&
				strings.Contains(c.Message, "/nonexistent/containerd.sock") {
				return len(n.Status.Runtimes) == 1 && n.Status.Runtimes[0] == api.RuntimeWasm
			}
		}
		return false
	})
	f.Push(t, "examples/hello", "hello:v1")
	if _, err := f.Client.Create(ctx, webDeployment("w", 1, nil)); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "the wasm pod ready", 60*time.Second, allRunning(t, f, "app=w", 1))
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "c", Namespace: "default"}, Spec: api.PodSpec{
		Containers: []api.Container{{Name: "c", Image: "flotilla.test/server:v1"}},
	}}
	if _, err := f.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "the container pod unschedulable for its runtime", 30*time.Second, func() bool {
		for _, c := range podStatus(t, f, "c").Status.Conditions {
			if c.Type == api.PodScheduled && strings.Contains(c.Message, "didn't support the Pod's runtime") {
				return true
			}
		}
		return false
	})
}

func TestOCIContainerCommandWorkingDirAndClusterDNS(t *testing.T) {
	cc := testfleet.ContainerdForTest(t)
	// A loopback address of the test's own on port 53 (containers share
	// the host network, and resolv.conf has no port syntax).
	dnsIP := fmt.Sprintf("127.0.%d.%d", 100+time.Now().UnixNano()%100, 2+time.Now().UnixNano()%250)
	f := testfleet.Start(t, testfleet.AgentSpec{Name: "pi-1", Containerd: cc, ClusterDNSAddr: dnsIP + ":53"})
	if got := f.Agents["pi-1"].DNSAddr(); got != dnsIP+":53" {
		t.Fatalf("cluster DNS serves on %q, want %s:53", got, dnsIP)
	}
	image := importImage(t, f, "cmd")
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "cmd", Namespace: "default"}, Spec: api.PodSpec{
		RestartPolicy: api.RestartNever,
		Containers: []api.Container{{Name: "c", Image: image,
			Command:    []string{ocitest.ServerPath, "-pwd", "-cat", "/etc/resolv.conf"},
			Args:       []string{"-exit", "3"},
			WorkingDir: "/tmp"}},
	}}
	if _, err := f.Client.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "the container exited", 60*time.Second, func() bool {
		cs := podStatus(t, f, "cmd").Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Terminated != nil
	})
	if term := podStatus(t, f, "cmd").Status.ContainerStatuses[0].State.Terminated; term.ExitCode != 3 {
		t.Fatalf("terminated %+v, want exit code 3 (command and args honoured)", term)
	}
	var out string
	testfleet.WaitFor(t, "the container's output in the logs", 30*time.Second, func() bool {
		out, _, _ = runCLI(t, f, "logs", "cmd")
		return strings.Contains(out, "exiting with 3")
	})
	for _, want := range []string{
		"pwd /tmp\n",
		"nameserver " + dnsIP + "\n",
		"search default.svc.cluster.local svc.cluster.local cluster.local\n",
		"options ndots:5\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}
