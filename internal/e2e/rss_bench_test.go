package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
	"github.com/flotilla-edge/flotilla/wasmrt/modstore"

	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkAgentRSS runs `flotilla server` and `flotilla agent` as separate
// processes, as on a board, and reports the agent's resident memory when
// idle and the extra memory per idle wasm HTTP pod. Memory, not time, is
// measured, so b.N only repeats the sampling.
func BenchmarkAgentRSS(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "flotilla")
	build := exec.Command("go", "build", "-o", bin, "./cmd/flotilla")
	build.Dir = moduleRoot(b)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	port := freePort(b)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	env := append(os.Environ(), "HOME="+dir, "FLOTILLA_TOKEN=bench-token")
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
			}
		})
		return cmd
	}
	start("server", "--data-dir", filepath.Join(dir, "server"), "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	var c *client.Client
	testfleet.WaitFor(b, "the server", 20*time.Second, func() bool {
		var err error
		c, err = client.Connect(url, "bench-token", "bench")
		if err != nil {
			return false
		}
		if _, err := c.Version(context.Background()); err != nil {
			c.Close()
			return false
		}
		return true
	})
	defer c.Close()
	// No service load balancing: this measures the agent, and must not
	// attach programs to the machine's cgroups.
	agent := start("agent", "--server", url, "--name", "board", "--address", "127.0.0.1", "--lb-mode=off", "--data-dir", filepath.Join(dir, "agent"))
	ctx := context.Background()
	testfleet.WaitFor(b, "the node Ready", 20*time.Second, func() bool {
		o, err := c.Get(ctx, "node", "", "board")
		return err == nil && o.(*api.Node).Ready()
	})
	js, _ := jetstream.New(c.NC)
	ms, err := modstore.Open(ctx, js)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ms.Push(ctx, "hello:v1", testfleet.BuildModule(b, "examples/hello")); err != nil {
		b.Fatal(err)
	}
	settle := func() { time.Sleep(3 * time.Second) } // let start-up garbage be collected
	settle()
	idle := rssKB(b, agent.Process.Pid)
	const pods = 10
	for i := 0; i < pods; i++ {
		p := &api.Pod{
			ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("idle-%d", i)},
			Spec: api.PodSpec{Containers: []api.Container{{
				Name: "hello", Image: "hello:v1",
				Ports: []api.ContainerPort{{ContainerPort: 8080}},
				Wasm:  &api.WasmOptions{Instances: 1},
			}}},
		}
		if _, err := c.Create(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	testfleet.WaitFor(b, "idle pods Running", 120*time.Second, func() bool {
		objs, err := c.List(ctx, "pods", "default", "")
		if err != nil {
			return false
		}
		n := 0
		for _, o := range objs {
			if o.(*api.Pod).IsReady() {
				n++
			}
		}
		return n == pods
	})
	settle()
	b.ResetTimer()
	var withPods int64
	for i := 0; i < b.N; i++ {
		withPods = rssKB(b, agent.Process.Pid)
	}
	b.StopTimer()
	b.ReportMetric(float64(idle)/1024, "idle-agent-MB")
	b.ReportMetric(float64(withPods-idle)/pods, "KB/idle-pod")
}

func rssKB(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func moduleRoot(b *testing.B) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
