package e2e

// Services end to end, as root, with a real agent, in both LB modes. The
// agent advertises an address on a veth pair the test creates (root side
// 10.231.<n>.1/30, namespace side .2/30); the namespace has no default
// route, so a cluster IP reaches a backend only if the LB handles it, and
// nothing can leave the host. Clients of cluster IPs are this test binary
// re-run inside that namespace and inside the cgroup the agent's LB is
// attached to.
//
// eBPF: the programs are attached to the test cgroup, so the client's
// connect() to the VIP is rewritten to a backend (node address + host
// port, reached over the veth). Userspace: the proxy is told to work inside
// the test namespace (LBNetNS), so it adds the VIPs on that namespace's lo
// and listens and dials there; the client reaches the VIP on its own lo.
// In both modes the VIPs exist only inside the test namespace (eBPF: only
// as map keys), so no VIP traffic can leave it.

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
	t.Cleanup(func() { removeCgroup(e.cgroup) })
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

// fromNetns runs n HTTP GETs (op "get"), n UDP request/replies (op "udp")
// or one bare connect (op "dial") to addr from inside the namespace and
// the LB's cgroup.
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
	case "udp":
		// One new connected socket per datagram, so each is a new flow.
		for range n {
			c, err := net.DialTimeout("udp4", parts[1], 3*time.Second)
			if err != nil {
				r.Errs = append(r.Errs, err.Error())
				continue
			}
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 512)
			if _, err = c.Write([]byte("who\n")); err == nil {
				var k int
				if k, err = c.Read(buf); err == nil {
					r.Answers[string(buf[:k])]++
				}
			}
			if err != nil {
				r.Errs = append(r.Errs, err.Error())
			}
			c.Close()
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

// lbModes are the modes the service suites run in: how the agent's LB is
// set up inside the test's namespace, and what a service without
// backends answers.
var lbModes = []struct {
	mode      string
	reason    string // the node condition's reason
	noBackend string // the connect error to a VIP without backends
}{
	{"ebpf", "EBPF", "operation not permitted"},
	{"userspace", "Userspace", "connection refused"},
}

// lbNetNS is where a mode's LB works: the userspace proxy inside the
// test namespace, eBPF in the agent's own (its programs see the client's
// cgroup, whatever its namespace).
func (e *svcEnv) lbNetNS(mode string) string {
	if mode == "userspace" {
		return e.ns
	}
	return ""
}

func TestServicesEndToEnd(t *testing.T) {
	for _, m := range lbModes {
		t.Run(m.mode, func(t *testing.T) {
			testServicesEndToEnd(t, m.mode, m.reason, m.noBackend)
		})
	}
}

func testServicesEndToEnd(t *testing.T, mode, reason, noBackend string) {
	e := newSvcEnv(t)
	f := testfleet.Start(t)
	ctx := context.Background()
	a, err := edgeagent.Start(ctx, edgeagent.Config{
		Name: "pi-1", NATSURL: f.Server.URL(), Token: f.Server.Token(), DataDir: t.TempDir(),
		Address: e.nodeAddr, HeartbeatInterval: time.Second, Log: testfleet.Logger(),
		ServiceLB: mode, LBCgroupPath: e.cgroup, LBPinDir: e.pinDir, LBNetNS: e.lbNetNS(mode),
		NetworkPolicy: true,
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
	waitReadyEndpoints(t, f, "web", 3)
	t.Logf("get svc:\n%s", mustCLI(t, f, "get", "svc"))
	t.Logf("get ep:\n%s", mustCLI(t, f, "get", "ep"))

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
		if len(r.Errs) > 0 || len(r.Answers) != 3 {
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

	clusterAddr := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	t.Run("ClusterIPSpreadsOverAllBackends", func(t *testing.T) {
		var r clientResult
		testfleet.WaitFor(t, "the cluster IP answers", 10*time.Second, func() bool {
			r = e.fromNetns(t, "get", clusterAddr, 1)
			return len(r.Errs) == 0
		})
		r = e.fromNetns(t, "get", clusterAddr, 60)
		if len(r.Errs) > 0 || len(r.Answers) != 3 {
			t.Fatalf("60 requests to %s: answers %v, errors %v", clusterAddr, r.Answers, r.Errs)
		}
		t.Logf("cluster IP %s: %v", clusterAddr, r.Answers)
	})

	t.Run("NoEndpointsFailsFast", func(t *testing.T) {
		empty, err := f.Client.Create(ctx, &api.Service{ObjectMeta: api.ObjectMeta{Name: "empty", Namespace: "default"},
			Spec: api.ServiceSpec{Selector: map[string]string{"app": "nothing"}, Ports: []api.ServicePort{{Port: 80}}}})
		if err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort(empty.(*api.Service).Spec.ClusterIP, "80")
		// Until the agent programs the VIP the connect fails with "network
		// is unreachable" (no route); once programmed, at once with EPERM
		// (eBPF) / ECONNREFUSED (userspace: VIP on lo, no listener).
		var r clientResult
		testfleet.WaitFor(t, noBackend+" from the VIP without backends", 10*time.Second, func() bool {
			r = e.fromNetns(t, "dial", addr, 1)
			return strings.Contains(r.Errs[0], noBackend)
		})
		i := strings.LastIndex(r.Errs[0], " after ")
		took, err := time.ParseDuration(r.Errs[0][i+len(" after "):])
		if i < 0 || err != nil || took >= time.Second {
			t.Fatalf("connect to %s did not fail fast: %s", addr, r.Errs[0])
		}
		t.Logf("connect to %s: %s", addr, r.Errs[0])
	})

	if mode == "userspace" {
		t.Run("IngressPolicyByIPBlock", func(t *testing.T) {
			testUserspaceIngressPolicy(t, f, e, clusterAddr)
		})
	}

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
		want := e.cgroup
		if mode == "userspace" {
			want = "userspace requested"
		}
		if c.Status != api.ConditionTrue || c.Reason != reason || !strings.Contains(c.Message, want) {
			t.Fatalf("condition %+v", c)
		}
	})
}

// testUserspaceIngressPolicy: one web pod is isolated for ingress by a
// policy admitting only an ipBlock. The proxy sees the client's address —
// here the VIP itself, since the client dials an address on its own lo —
// so a block without it keeps that pod out of the rotation, and a block
// with it brings the pod back.
func testUserspaceIngressPolicy(t *testing.T, f *testfleet.Fleet, e *svcEnv, clusterAddr string) {
	ctx := context.Background()
	list, err := f.Client.List(ctx, "Pod", "default", "app=web")
	if err != nil || len(list) == 0 {
		t.Fatalf("web pods: %v %v", list, err)
	}
	isolated := list[0].GetMeta().Name
	if _, err := f.Client.Modify(ctx, "Pod", "default", isolated, func(o api.Object) error {
		o.GetMeta().Labels["isolated"] = "yes"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pol := func(cidr string) *api.NetworkPolicy {
		return &api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "isolate-one", Namespace: "default"},
			Spec: api.NetworkPolicySpec{PodSelector: api.LabelSelector{MatchLabels: map[string]string{"isolated": "yes"}},
				Ingress: []api.NetworkPolicyIngressRule{{From: []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: cidr}}}}}}}
	}
	t.Cleanup(func() { _, _ = f.Client.Delete(context.Background(), "NetworkPolicy", "default", "isolate-one") })
	vip, _, _ := net.SplitHostPort(clusterAddr)
	tests := []struct {
		name          string
		cidr          string
		reachIsolated bool
	}{
		{"client outside the block: the isolated pod is skipped", "192.0.2.0/24", false},
		{"client inside the block: all pods answer", vip + "/32", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.Client.Apply(ctx, pol(tt.cidr)); err != nil {
				t.Fatal(err)
			}
			ok := func(r clientResult) bool {
				want := 2
				if tt.reachIsolated {
					want = 3
				}
				return len(r.Errs) == 0 && len(r.Answers) == want && (r.Answers[isolated] > 0) == tt.reachIsolated
			}
			var r clientResult
			testfleet.WaitFor(t, "the policy takes effect", 15*time.Second, func() bool {
				r = e.fromNetns(t, "get", clusterAddr, 30)
				return ok(r)
			})
			r = e.fromNetns(t, "get", clusterAddr, 60)
			if !ok(r) {
				t.Fatalf("60 requests with ipBlock %s (isolated pod %s): answers %v, errors %v", tt.cidr, isolated, r.Answers, r.Errs)
			}
			t.Logf("ipBlock %s: %v", tt.cidr, r.Answers)
		})
	}
}

// waitReadyEndpoints waits until service name in default has n ready
// endpoints.
func waitReadyEndpoints(t *testing.T, f *testfleet.Fleet, name string, n int) {
	t.Helper()
	testfleet.WaitFor(t, fmt.Sprintf("%d ready endpoints of %s", n, name), 10*time.Second, func() bool {
		o, err := f.Client.Get(context.Background(), "EndpointSlice", "default", name)
		if err != nil {
			return false
		}
		ready := 0
		for _, ep := range o.(*api.EndpointSlice).Endpoints {
			if ep.IsReady() {
				ready++
			}
		}
		return ready == n
	})
}

// removeCgroup removes a test's cgroup directory, waiting a moment for
// the processes in it to be gone.
func removeCgroup(dir string) {
	for range 50 {
		if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
