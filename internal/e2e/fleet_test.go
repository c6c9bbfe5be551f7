// Package e2e drives a whole fleet (embedded NATS, control plane, two
// agents running real wasm modules) the way a user does.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

func webDeployment(name string, replicas int32, nodeSelector map[string]string) *api.Deployment {
	return &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: api.DeploymentSpec{
			Replicas: api.Int32(replicas),
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: api.PodSpec{
					NodeSelector: nodeSelector,
					Containers: []api.Container{{
						Name: "hello", Image: "hello:v1",
						Ports: []api.ContainerPort{{Name: "http", ContainerPort: 8080}},
					}},
				},
			},
		},
	}
}

func listPods(t *testing.T, f *testfleet.Fleet, selector string) []*api.Pod {
	t.Helper()
	objs, err := f.Client.List(context.Background(), "pods", "default", selector)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*api.Pod, len(objs))
	for i, o := range objs {
		out[i] = o.(*api.Pod)
	}
	return out
}

// endpoint is where the pod's first port is served.
func endpoint(p *api.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		for _, port := range cs.Ports {
			return net.JoinHostPort(port.HostIP, fmt.Sprint(port.HostPort))
		}
	}
	return ""
}

func allRunning(t *testing.T, f *testfleet.Fleet, selector string, n int) func() bool {
	return func() bool {
		ps := listPods(t, f, selector)
		if len(ps) != n {
			return false
		}
		for _, p := range ps {
			if p.Status.Phase != api.PodRunning || !p.IsReady() || endpoint(p) == "" {
				return false
			}
		}
		return true
	}
}

func get(t *testing.T, addr string) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", addr, resp.Status, b)
	}
	return string(b)
}

func agentPods(f *testfleet.Fleet) int {
	n := 0
	for _, a := range f.Agents {
		n += len(a.Pods())
	}
	return n
}

func TestFleetEndToEnd(t *testing.T) {
	f := testfleet.Start(t,
		testfleet.AgentSpec{Name: "pi-1"},
		testfleet.AgentSpec{Name: "pi-2", Labels: map[string]string{"disk": "ssd"}},
	)
	ctx := context.Background()
	f.Push(t, "examples/hello", "hello:v1")

	testfleet.WaitFor(t, "both nodes Ready", 10*time.Second, func() bool {
		nodes, _ := f.Client.List(ctx, "nodes", "", "")
		ready := 0
		for _, n := range nodes {
			if n.(*api.Node).Ready() {
				ready++
			}
		}
		return ready == 2
	})

	if _, err := f.Client.Create(ctx, webDeployment("web", 3, nil)); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "3 pods Running", 30*time.Second, allRunning(t, f, "app=web", 3))

	nodes := map[string]bool{}
	for _, p := range listPods(t, f, "app=web") {
		body := get(t, endpoint(p))
		want := fmt.Sprintf("Hello Flotilla bootcamp! | Running on: %s | v=1", p.Name)
		if strings.TrimSpace(body) != want {
			t.Fatalf("pod %s answered %q, want %q", p.Name, body, want)
		}
		nodes[p.Spec.NodeName] = true
	}
	if len(nodes) != 2 {
		t.Fatalf("3 replicas on %d node(s), want both", len(nodes))
	}

	// A deleted pod is replaced, and its port stops answering.
	victim := listPods(t, f, "app=web")[0]
	victimAddr := endpoint(victim)
	if _, err := f.Client.Delete(ctx, "pod", "default", victim.Name); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "a replacement pod", 30*time.Second, func() bool {
		if !allRunning(t, f, "app=web", 3)() {
			return false
		}
		for _, p := range listPods(t, f, "app=web") {
			if p.Name == victim.Name {
				return false
			}
		}
		return true
	})
	testfleet.WaitFor(t, "the deleted pod's listener to close", 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", victimAddr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		// The port may already serve the replacement; that is fine only if
		// it is not the victim answering.
		return !strings.Contains(get(t, victimAddr), victim.Name)
	})

	// Scale to 5, then 2.
	for _, n := range []int32{5, 2} {
		if _, err := f.Client.Modify(ctx, "deploy", "default", "web", func(o api.Object) error {
			o.(*api.Deployment).Spec.Replicas = api.Int32(n)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		testfleet.WaitFor(t, fmt.Sprintf("%d pods Running", n), 30*time.Second, allRunning(t, f, "app=web", int(n)))
		testfleet.WaitFor(t, fmt.Sprintf("agents running %d pods", n), 10*time.Second, func() bool { return agentPods(f) == int(n) })
	}
	for _, p := range listPods(t, f, "app=web") {
		if !strings.Contains(get(t, endpoint(p)), p.Name) {
			t.Fatalf("pod %s does not answer with its name after scaling", p.Name)
		}
	}

	// A nodeSelector pins pods to the labelled node.
	if _, err := f.Client.Create(ctx, webDeployment("db", 2, map[string]string{"disk": "ssd"})); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "db pods Running", 30*time.Second, allRunning(t, f, "app=db", 2))
	for _, p := range listPods(t, f, "app=db") {
		if p.Spec.NodeName != "pi-2" {
			t.Fatalf("db pod %s on %s, want pi-2 (disk=ssd)", p.Name, p.Spec.NodeName)
		}
	}

	// Deleting the deployments leaves no pod, listener or instance.
	var addrs []string
	for _, p := range listPods(t, f, "") {
		addrs = append(addrs, endpoint(p))
	}
	for _, d := range []string{"web", "db"} {
		if _, err := f.Client.Delete(ctx, "deploy", "default", d); err != nil {
			t.Fatal(err)
		}
	}
	testfleet.WaitFor(t, "every pod gone", 30*time.Second, func() bool {
		rss, _ := f.Client.List(ctx, "rs", "", "")
		return len(listPods(t, f, "")) == 0 && len(rss) == 0 && agentPods(f) == 0
	})
	for _, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still accepts connections after its pod was deleted", addr)
		}
	}
}

func TestCommandModuleRunsToCompletion(t *testing.T) {
	f := testfleet.Start(t, testfleet.AgentSpec{Name: "pi-1"})
	ctx := context.Background()
	f.Push(t, "examples/batch", "batch:v1")
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: "primes"},
		Spec: api.PodSpec{
			RestartPolicy: api.RestartNever,
			Containers:    []api.Container{{Name: "batch", Image: "batch:v1", Args: []string{"500"}}},
		},
	}
	if _, err := f.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "pod Succeeded", 30*time.Second, func() bool {
		o, err := f.Client.Get(ctx, "pod", "default", "primes")
		return err == nil && o.(*api.Pod).Status.Phase == api.PodSucceeded
	})
	var out strings.Builder
	testfleet.WaitFor(t, "the pod's output in its logs", 10*time.Second, func() bool {
		out.Reset()
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = f.Client.Logs(lctx, "default", "primes", "", -1, false, &out)
		return strings.Contains(out.String(), "primes: 500")
	})
}

func TestMissingAndCorruptModulesSayWhy(t *testing.T) {
	f := testfleet.Start(t, testfleet.AgentSpec{Name: "pi-1"})
	ctx := context.Background()
	if _, err := f.Modules.Push(ctx, "broken:v1", []byte("\x00asm\x01\x00\x00\x00garbage")); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ pod, image, reason string }{
		{"missing", "nothere:v1", "ImagePullBackOff"},
		{"corrupt", "broken:v1", "InvalidImage"},
	}
	for _, tc := range cases {
		p := &api.Pod{
			ObjectMeta: api.ObjectMeta{Name: tc.pod},
			Spec:       api.PodSpec{Containers: []api.Container{{Name: "c", Image: tc.image}}},
		}
		if _, err := f.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range cases {
		testfleet.WaitFor(t, tc.pod+" waiting with "+tc.reason, 30*time.Second, func() bool {
			o, err := f.Client.Get(ctx, "pod", "default", tc.pod)
			if err != nil {
				return false
			}
			p := o.(*api.Pod)
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil && w.Reason == tc.reason && strings.Contains(w.Message, strings.Split(tc.image, ":")[0]) {
					return p.Status.Phase == api.PodPending
				}
			}
			return false
		})
	}
}
