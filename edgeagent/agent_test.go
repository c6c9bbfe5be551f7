package edgeagent

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/wire"
)

func webPod(name, image string) *api.Pod {
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.PodSpec{Containers: []api.Container{{
			Name:  "web",
			Image: image,
			Ports: []api.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
}

func cmdPod(name, image, policy string, args ...string) *api.Pod {
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.PodSpec{
			RestartPolicy: policy,
			Containers:    []api.Container{{Name: "main", Image: image, Args: args}},
		},
	}
}

func TestNodeRegistersWithCapacityAndLabelsAndHeartbeats(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	startAgent(t, f, f.srv.URL(), t.TempDir(), func(c *Config) {
		c.Labels = map[string]string{"zone": "lab"}
		c.CPUMilli = 4000
		c.MemoryBytes = 1 << 30
	})
	ctx := context.Background()
	getNode := func() *api.Node {
		obj, err := f.st.Get(ctx, "Node", "", "edge-1")
		if err != nil {
			t.Fatal(err)
		}
		return obj.(*api.Node)
	}
	n := getNode()
	checks := []struct {
		name string
		ok   bool
	}{
		{"zone label from config", n.Labels["zone"] == "lab"},
		{"hostname label", n.Labels[LabelHostname] == "edge-1"},
		{"os label", n.Labels[LabelOS] != ""},
		{"cpu capacity", n.Status.Capacity["cpu"].MilliValue() == 4000},
		{"memory allocatable", n.Status.Allocatable["memory"].Value() == 1<<30},
		{"internal ip", n.InternalIP() == "127.0.0.1"},
		{"ready", n.Ready()},
		{"wasm runtime", slices.Contains(n.Status.Runtimes, "wasm")},
		{"pod port range", strings.Contains(n.Status.DaemonPorts.PodPortRange, "-")},
		{"agent version", n.Status.NodeInfo.AgentVersion != ""},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: node is %s", c.name, toJSON(n))
		}
	}
	first := api.FindCondition(n.Status.Conditions, api.NodeReady).LastHeartbeatTime

	// A label the user sets later must survive heartbeats.
	for {
		n := getNode()
		n.Labels["owner"] = "ops"
		if _, err := f.st.Update(ctx, n); err == nil {
			break
		}
	}
	waitFor(t, 5*time.Second, "a later heartbeat", func() bool {
		c := api.FindCondition(getNode().Status.Conditions, api.NodeReady)
		return c != nil && c.LastHeartbeatTime.After(first.Time)
	}, func() string { return toJSON(getNode().Status.Conditions) })
	if got := getNode().Labels["owner"]; got != "ops" {
		t.Errorf("user label owner = %q after heartbeats, want ops", got)
	}
}

func TestHTTPPodServesUntilUnassigned(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "hello:v1", guest(t, "hello"))
	a := startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	tests := []struct {
		pod  string
		mode string
	}{
		{"web", api.WasmHTTP},
		{"web-cgi", api.WasmCGI},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			pod := webPod(tt.pod, "hello:v1")
			pod.Spec.Containers[0].Wasm = &api.WasmOptions{Mode: tt.mode}
			p := f.schedule(t, "edge-1", pod)

			var port api.PortStatus
			waitFor(t, 20*time.Second, "pod Running and Ready with a host port", func() bool {
				p := f.pod(t, tt.pod)
				if p.Status.Phase != api.PodRunning || !p.IsReady() || len(p.Status.ContainerStatuses) != 1 {
					return false
				}
				cs := p.Status.ContainerStatuses[0]
				if len(cs.Ports) != 1 || cs.Ports[0].HostPort == 0 || !cs.Ready || !cs.Started {
					return false
				}
				port = cs.Ports[0]
				return true
			}, func() string { return toJSON(f.pod(t, tt.pod).Status) })

			st := f.pod(t, tt.pod).Status
			if st.HostIP != "127.0.0.1" || st.PodIP != "127.0.0.1" || st.StartTime.IsZero() {
				t.Errorf("hostIP/podIP/startTime: %s", toJSON(st))
			}
			if c := api.FindCondition(st.Conditions, api.PodScheduled); c == nil || c.Status != api.ConditionTrue {
				t.Errorf("PodScheduled condition lost: %s", toJSON(st.Conditions))
			}
			if cs := st.ContainerStatuses[0]; !strings.HasPrefix(cs.ImageID, "sha256:") || port.ContainerPort != 8080 || port.HostIP != "127.0.0.1" || cs.State.Running == nil {
				t.Errorf("container status: %s", toJSON(cs))
			}

			addr := net.JoinHostPort(port.HostIP, strconv.Itoa(int(port.HostPort)))
			resp, err := http.Get("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := "Running on: " + tt.pod + " | v=1"; !strings.Contains(string(body), want) {
				t.Errorf("GET / = %q, want it to contain %q", body, want)
			}
			if got := a.Pods(); !slices.Equal(got, []string{"default/" + tt.pod}) {
				t.Errorf("Pods() = %v", got)
			}

			f.unassign(t, "edge-1", p)
			waitFor(t, 10*time.Second, "pod stopped", func() bool { return len(a.Pods()) == 0 }, func() string { return strings.Join(a.Pods(), ",") })
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still accepts connections after the pod stopped", addr)
			}
		})
	}
}

func TestCommandPodSucceedsAndShipsLogs(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "batch:v1", guest(t, "batch"))
	// In-process agent sharing the caller's connection, as flotilla up does.
	startAgent(t, f, "", t.TempDir(), func(c *Config) { c.Conn = f.nc })
	f.schedule(t, "edge-1", cmdPod("job", "batch:v1", api.RestartNever, "100"))

	waitFor(t, 20*time.Second, "pod Succeeded", func() bool {
		return f.pod(t, "job").Status.Phase == api.PodSucceeded
	}, func() string { return toJSON(f.pod(t, "job").Status) })
	cs := f.pod(t, "job").Status.ContainerStatuses[0]
	if term := cs.State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" || cs.RestartCount != 0 {
		t.Errorf("container status: %s", toJSON(cs))
	}

	ctx := context.Background()
	var line, stream string
	waitFor(t, 10*time.Second, "output in the log stream", func() bool {
		s, err := f.js.Stream(ctx, wire.LogStream)
		if err != nil {
			return false
		}
		m, err := s.GetLastMsgForSubject(ctx, wire.LogSubject("default", "job", "main"))
		if err != nil {
			return false
		}
		line, stream = string(m.Data), m.Header.Get("Stream")
		return true
	}, nil)
	if line != "primes: 100, last: 541" || stream != "stdout" {
		t.Errorf("log line %q on stream %q", line, stream)
	}
}

func TestModuleProblemsKeepPodPending(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "bad:v1", []byte("\x00asm garbage"))
	startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	tests := []struct {
		pod     string
		image   string
		reasons []string
		message string
	}{
		{"missing", "nope:v1", []string{ReasonErrImagePull, ReasonImagePullBackOff}, "nope:v1"},
		{"corrupt", "bad:v1", []string{ReasonInvalidImage}, "invalid wasm module"},
	}
	for _, tt := range tests {
		f.schedule(t, "edge-1", cmdPod(tt.pod, tt.image, api.RestartNever))
	}
	for _, tt := range tests {
		t.Run(tt.pod, func(t *testing.T) {
			waitFor(t, 10*time.Second, "waiting reason "+strings.Join(tt.reasons, "|"), func() bool {
				st := f.pod(t, tt.pod).Status
				if st.Phase != api.PodPending || len(st.ContainerStatuses) != 1 {
					return false
				}
				w := st.ContainerStatuses[0].State.Waiting
				return w != nil && slices.Contains(tt.reasons, w.Reason) && strings.Contains(w.Message, tt.message)
			}, func() string { return toJSON(f.pod(t, tt.pod).Status) })
		})
	}
}

func TestFailingCommandCrashLoopsWithOnFailure(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "batch:v1", guest(t, "batch"))
	startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	f.schedule(t, "edge-1", cmdPod("crash", "batch:v1", api.RestartOnFailure, "not-a-number"))

	waitFor(t, 20*time.Second, "restartCount >= 2 in CrashLoopBackOff", func() bool {
		st := f.pod(t, "crash").Status
		if len(st.ContainerStatuses) != 1 {
			return false
		}
		cs := st.ContainerStatuses[0]
		return cs.RestartCount >= 2 && cs.State.Waiting != nil && cs.State.Waiting.Reason == ReasonCrashLoopBackOff &&
			cs.LastState.Terminated != nil && cs.LastState.Terminated.ExitCode == 2 && st.Phase == api.PodRunning
	}, func() string { return toJSON(f.pod(t, "crash").Status) })
}

func TestRestartedAgentRunsPodsFromLocalCopyWithoutNATS(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "hello:v1", guest(t, "hello"))
	dataDir := t.TempDir()
	a := startAgent(t, f, f.srv.URL(), dataDir, nil)
	p := f.schedule(t, "edge-1", webPod("web", "hello:v1"))
	waitFor(t, 20*time.Second, "pod Ready", func() bool { return f.pod(t, "web").IsReady() },
		func() string { return toJSON(f.pod(t, "web").Status) })
	url := f.srv.URL()
	port := f.srv.Addr().(*net.TCPAddr).Port
	a.Stop()
	f.stop() // NATS is gone

	b := startAgent(t, nil, url, dataDir, nil)
	waitFor(t, 20*time.Second, "pod running from the local copy", func() bool {
		return slices.Equal(b.Pods(), []string{"default/web"})
	}, func() string { return strings.Join(b.Pods(), ",") })
	// The API is down, so ask the agent where the pod listens.
	waitFor(t, 20*time.Second, "the pod answering on its port", func() bool {
		for _, port := range b.hostPorts() {
			resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
			if err != nil {
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "Running on: web") {
				return true
			}
		}
		return false
	}, nil)

	// NATS comes back: the watch is the truth again, so removing the
	// assignment stops the pod.
	f2 := newFleetAt(t, f.dir, port)
	f2.unassign(t, "edge-1", p)
	waitFor(t, 20*time.Second, "pod stopped after NATS returned", func() bool { return len(b.Pods()) == 0 },
		func() string { return strings.Join(b.Pods(), ",") })
}

// Not parallel: it counts goroutines, which other tests' agents would add.
func TestStopLeavesNoGoroutinesOrListeners(t *testing.T) {
	f := newFleet(t)
	f.push(t, "hello:v1", guest(t, "hello"))
	f.push(t, "batch:v1", guest(t, "batch"))
	a := startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	f.schedule(t, "edge-1", webPod("web", "hello:v1"))
	f.schedule(t, "edge-1", cmdPod("loop", "batch:v1", api.RestartAlways, "10"))
	waitFor(t, 20*time.Second, "both pods running", func() bool {
		return f.pod(t, "web").IsReady() && f.pod(t, "loop").Status.Phase == api.PodRunning
	}, func() string { return toJSON(f.pod(t, "web").Status) })
	ports := a.hostPorts()
	a.Stop()
	if got := a.Pods(); len(got) != 0 {
		t.Errorf("Pods() after Stop = %v", got)
	}
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still open after Stop", p)
		}
	}
	var left string
	waitFor(t, 5*time.Second, "agent goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		left = ""
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "flotilla/edgeagent.(*") || strings.Contains(g, "flotilla/wasmrt.") {
				left += g + "\n\n"
			}
		}
		return left == ""
	}, func() string { return left })
}

func TestNewUIDForSameNameRestartsPodAndDeletedObjectStopsIt(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "batch:v1", guest(t, "batch"))
	a := startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	old := f.schedule(t, "edge-1", cmdPod("job", "batch:v1", api.RestartNever, "10"))
	waitFor(t, 20*time.Second, "first pod Succeeded", func() bool { return f.pod(t, "job").Status.Phase == api.PodSucceeded },
		func() string { return toJSON(f.pod(t, "job").Status) })

	ctx := context.Background()
	if err := f.st.Delete(ctx, "Pod", "default", "job", ""); err != nil {
		t.Fatal(err)
	}
	renewed := f.schedule(t, "edge-1", cmdPod("job", "batch:v1", api.RestartNever, "20"))
	if renewed.UID == old.UID {
		t.Fatal("store reused the uid")
	}
	waitFor(t, 20*time.Second, "second pod Succeeded", func() bool {
		p := f.pod(t, "job")
		return p.UID == renewed.UID && p.Status.Phase == api.PodSucceeded
	}, func() string { return toJSON(f.pod(t, "job").Status) })

	// The pod object goes but its assignment lingers: the agent stops it.
	statusCheck := time.Now()
	if err := f.st.Delete(ctx, "Pod", "default", "job", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "pod stopped", func() bool { return len(a.Pods()) == 0 }, func() string {
		return strings.Join(a.Pods(), ",") + " after " + time.Since(statusCheck).String()
	})
}
