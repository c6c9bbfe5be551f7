package e2e

// Services end to end, as root, with a real agent and real eBPF. The agent
// advertises an address on a veth pair the test creates (root side
// 10.231.<n>.1/30, namespace side .2/30); the namespace has no default
// route, so a cluster IP reaches a backend only if the socket LB rewrites
// it, and nothing can leave the host. Clients of cluster IPs are this
// test binary re-run inside that namespace and inside the cgroup the
// agent's LB is attached to.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/internal/privtest"

	"golang.org/x/sys/unix"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent"
	"github.com/flotilla-edge/flotilla/edgeagent/servicelb"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
)

// requirePrivileged: see privtest.RequireEBPF.
func requirePrivileged(t *testing.T) {
	t.Helper()
	privtest.RequireEBPF(t)
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// svcEnv is the namespace, veth, cgroup and pin dir of one test.
type svcEnv struct {
	ns, cgroup, pinDir string
	nodeAddr           string // root side of the veth: the agent's address
}

func newSvcEnv(t *testing.T) *svcEnv {
	t.Helper()
	requirePrivileged(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	sfx := hex.EncodeToString(b)
	e := &svcEnv{ns: "flsvc-" + sfx, pinDir: "/sys/fs/bpf/flotilla-e2e-" + sfx, nodeAddr: fmt.Sprintf("10.231.%d.1", b[0])}
	peer := fmt.Sprintf("10.231.%d.2/30", b[0])
	sh(t, "ip", "netns", "add", e.ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", e.ns).Run() })
	host, inner := "fsv"+sfx+"h", "fsv"+sfx+"n"
	sh(t, "ip", "link", "add", host, "type", "veth", "peer", "name", inner)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	sh(t, "ip", "link", "set", inner, "netns", e.ns)
	sh(t, "ip", "addr", "add", e.nodeAddr+"/30", "dev", host)
	sh(t, "ip", "link", "set", host, "up")
	sh(t, "ip", "-n", e.ns, "link", "set", "lo", "up")
	sh(t, "ip", "-n", e.ns, "addr", "add", peer, "dev", inner)
	sh(t, "ip", "-n", e.ns, "link", "set", inner, "up")
	root, err := ebpflb.Cgroup2Root()
	if err != nil {
		t.Fatal(err)
	}
	e.cgroup = filepath.Join(root, "flotilla-e2e-"+sfx)
	if err := os.Mkdir(e.cgroup, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if err := os.Remove(e.cgroup); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Cleanup(func() {
		if err := ebpflb.Teardown(e.pinDir); err != nil {
			t.Errorf("teardown %s: %v", e.pinDir, err)
		}
	})
	return e
}

// clientResult is what the in-namespace client reports.
type clientResult struct {
	Answers map[string]int // pod name -> answers
	Errs    []string
}

// fromNetns runs n HTTP GETs (op "get") or one bare connect (op "dial") to
// addr from inside the namespace and the LB's cgroup.
func (e *svcEnv) fromNetns(t *testing.T, op, addr string, n int) clientResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cg, err := os.Open(e.cgroup)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	cmd := exec.Command("ip", "netns", "exec", e.ns, exe, "-test.run=^TestServiceClientProcess$")
	cmd.Env = append(os.Environ(), "FLOTILLA_SVC_CLIENT="+op+","+addr+","+strconv.Itoa(n))
	cmd.SysProcAttr = &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(l, "@@"); ok {
			var r clientResult
			if err := json.Unmarshal([]byte(j), &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatalf("client said nothing useful:\n%s", out)
	return clientResult{}
}

// TestServiceClientProcess is the in-namespace client; it does nothing in
// a normal run.
func TestServiceClientProcess(t *testing.T) {
	spec := os.Getenv("FLOTILLA_SVC_CLIENT")
	if spec == "" {
		return
	}
	parts := strings.Split(spec, ",")
	n, _ := strconv.Atoi(parts[2])
	r := clientResult{Answers: map[string]int{}}
	switch parts[0] {
	case "get":
		c := http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for range n {
			resp, err := c.Get("http://" + parts[1] + "/")
			if err != nil {
				r.Errs = append(r.Errs, err.Error())
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r.Answers[podOf(string(b))]++
		}
	case "dial":
		start := time.Now()
		c, err := net.DialTimeout("tcp4", parts[1], 3*time.Second)
		if err == nil {
			c.Close()
			r.Errs = append(r.Errs, "connected")
		} else {
			r.Errs = append(r.Errs, fmt.Sprintf("%v after %v", err, time.Since(start).Round(time.Millisecond)))
		}
	}
	b, _ := json.Marshal(r)
	fmt.Printf("@@%s\n", b)
	os.Exit(0)
}

// podOf extracts the pod name from hello's "... | Running on: POD | v=1".
func podOf(body string) string {
	_, after, ok := strings.Cut(body, "Running on: ")
	if !ok {
		return "?" + body
	}
	pod, _, _ := strings.Cut(after, " |")
	return pod
}

func TestServicesEndToEnd(t *testing.T) {
	e := newSvcEnv(t)
	f := testfleet.Start(t)
	ctx := context.Background()
	a, err := edgeagent.Start(ctx, edgeagent.Config{
		Name: "pi-1", NATSURL: f.Server.URL(), Token: f.Server.Token(), DataDir: t.TempDir(),
		Address: e.nodeAddr, HeartbeatInterval: time.Second, Log: testfleet.Logger(),
		ServiceLB: "ebpf", LBCgroupPath: e.cgroup, LBPinDir: e.pinDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	f.Push(t, "examples/hello", "hello:v1")

	mustCLI(t, f, "create", "deployment", "web", "--image=hello:v1", "--port=8080", "--replicas=3")
	testfleet.WaitFor(t, "3 pods Running", 60*time.Second, allRunning(t, f, "app=web", 3))
	if out := mustCLI(t, f, "expose", "deployment/web", "--type=NodePort", "--port=80", "--target-port=8080"); out != "service/web exposed\n" {
		t.Fatalf("expose: %q", out)
	}
	o, err := f.Client.Get(ctx, "Service", "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	svc := o.(*api.Service)
	nodePort := svc.Spec.Ports[0].NodePort
	testfleet.WaitFor(t, "3 ready endpoints", 10*time.Second, func() bool {
		o, err := f.Client.Get(ctx, "EndpointSlice", "default", "web")
		if err != nil {
			return false
		}
		ready := 0
		for _, ep := range o.(*api.EndpointSlice).Endpoints {
			if ep.IsReady() {
				ready++
			}
		}
		return ready == 3
	})
	t.Logf("get svc:\n%s", mustCLI(t, f, "get", "svc"))
	t.Logf("get ep:\n%s", mustCLI(t, f, "get", "ep"))
	t.Logf("describe svc web:\n%s", mustCLI(t, f, "describe", "svc", "web"))

	t.Run("NodePortFromOutsideTheNode", func(t *testing.T) {
		// From the namespace: the node address is the far end of the veth,
		// so this is outside traffic, answered by the agent's listener.
		addr := net.JoinHostPort(e.nodeAddr, strconv.Itoa(int(nodePort)))
		var r clientResult
		testfleet.WaitFor(t, "the node port answers", 10*time.Second, func() bool {
			r = e.fromNetns(t, "get", addr, 1)
			return len(r.Errs) == 0
		})
		r = e.fromNetns(t, "get", addr, 60)
		if len(r.Errs) > 0 || len(r.Answers) < 2 {
			t.Fatalf("60 requests to node port %s: answers %v, errors %v", addr, r.Answers, r.Errs)
		}
		t.Logf("node port %s: %v", addr, r.Answers)
		// From the node itself (root namespace, the test process); a new
		// connection per request, since balancing happens per connection.
		seen := map[string]int{}
		c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for range 30 {
			resp, err := c.Get("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			seen[podOf(string(b))]++
		}
		if len(seen) < 2 {
			t.Fatalf("30 requests from the node: %v", seen)
		}
	})

	t.Run("ClusterIPThroughEBPF", func(t *testing.T) {
		addr := net.JoinHostPort(svc.Spec.ClusterIP, "80")
		var r clientResult
		testfleet.WaitFor(t, "the cluster IP answers", 10*time.Second, func() bool {
			r = e.fromNetns(t, "get", addr, 1)
			return len(r.Errs) == 0
		})
		r = e.fromNetns(t, "get", addr, 60)
		if len(r.Errs) > 0 || len(r.Answers) < 2 {
			t.Fatalf("60 requests to %s: answers %v, errors %v", addr, r.Answers, r.Errs)
		}
		t.Logf("cluster IP %s: %v", addr, r.Answers)
	})

	t.Run("NoEndpointsFailsFast", func(t *testing.T) {
		empty, err := f.Client.Create(ctx, &api.Service{ObjectMeta: api.ObjectMeta{Name: "empty", Namespace: "default"},
			Spec: api.ServiceSpec{Selector: map[string]string{"app": "nothing"}, Ports: []api.ServicePort{{Port: 80}}}})
		if err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort(empty.(*api.Service).Spec.ClusterIP, "80")
		// Until the agent programs the VIP the connect fails with "network
		// is unreachable" (no route); once programmed, with EPERM at once.
		var r clientResult
		testfleet.WaitFor(t, "EPERM from the VIP without backends", 10*time.Second, func() bool {
			r = e.fromNetns(t, "dial", addr, 1)
			return strings.Contains(r.Errs[0], "operation not permitted")
		})
		t.Logf("connect to %s: %s", addr, r.Errs[0])
	})

	t.Run("ExternalNameHasNoVIP", func(t *testing.T) {
		x, err := f.Client.Create(ctx, &api.Service{ObjectMeta: api.ObjectMeta{Name: "db", Namespace: "default"},
			Spec: api.ServiceSpec{Type: "ExternalName", ExternalName: "db.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		if ip := x.(*api.Service).Spec.ClusterIP; ip != "" {
			t.Fatalf("ExternalName got cluster IP %q", ip)
		}
	})

	t.Run("NodeReportsLBMode", func(t *testing.T) {
		var c *api.Condition
		testfleet.WaitFor(t, "the ServiceLoadBalancer condition", 10*time.Second, func() bool {
			o, err := f.Client.Get(ctx, "Node", "", "pi-1")
			if err != nil {
				return false
			}
			c = api.FindCondition(o.(*api.Node).Status.Conditions, servicelb.ConditionType)
			return c != nil
		})
		if c.Status != api.ConditionTrue || c.Reason != "EBPF" || !strings.Contains(c.Message, e.cgroup) {
			t.Fatalf("condition %+v", c)
		}
	})
}
