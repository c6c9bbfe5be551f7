package e2e

// Services across agents that are separate hosts. The test builds a small
// network of namespaces: a "bridge" namespace holding a Linux bridge, and
// hostA, hostB and client, each joined to the bridge by a veth pair
// (10.234.<r>.1, .2 and .3/24). No namespace has a default route, so
// nothing can leave the machine. Each host runs the real `flotilla agent`
// binary in its own namespace and its own fresh cgroup v2 directory, where
// its socket LB attaches (the agent's own cgroup). The control plane runs
// in the test process in the root namespace; each host reaches its NATS
// through a forwarder the test listens with on 127.0.0.1 inside the host's
// namespace.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent/servicelb"
	"github.com/flotilla-edge/flotilla/internal/netns"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
)

func TestServicesAcrossHosts(t *testing.T) {
	requirePrivileged(t)
	bin := cli(t)
	n := newBridgeNet(t)
	f := testfleet.Start(t)
	ctx := context.Background()
	hosts := []*hostAgent{
		startHostAgent(t, f, bin, n, "a", n.addr(1)),
		startHostAgent(t, f, bin, n, "b", n.addr(2)),
	}
	hostA, hostB := hosts[0], hosts[1]
	for _, h := range hosts {
		var c *api.Condition
		testfleet.WaitFor(t, h.name+" Ready with the eBPF LB", 20*time.Second, func() bool {
			o, err := f.Client.Get(ctx, "Node", "", h.name)
			if err != nil {
				return false
			}
			node := o.(*api.Node)
			c = api.FindCondition(node.Status.Conditions, servicelb.ConditionType)
			return node.Ready() && c != nil
		})
		// Attached to the agent's own cgroup, never the machine's root.
		if c.Status != api.ConditionTrue || c.Reason != "EBPF" || !strings.Contains(c.Message, "translated at TC") ||
			!strings.Contains(c.Message, "attached to "+h.cgroup+";") {
			t.Fatalf("%s: want the eBPF LB attached to %s and node ports translated at TC: %+v", h.name, h.cgroup, c)
		}
	}

	f.Push(t, "internal/e2e/testdata/whoami", "whoami:v1")
	ds := &api.DaemonSet{ObjectMeta: api.ObjectMeta{Name: "who", Namespace: "default"}, Spec: api.DaemonSetSpec{
		Template: api.PodTemplateSpec{
			ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": "who"}},
			Spec: api.PodSpec{Containers: []api.Container{{Name: "who", Image: "whoami:v1",
				Ports: []api.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		}}}
	if _, err := f.Client.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "one whoami pod per host", 60*time.Second, allRunning(t, f, "app=who", 2))
	podOn := map[string]string{} // node -> pod
	for _, p := range listPods(t, f, "app=who") {
		podOn[p.Spec.NodeName] = p.Name
	}
	podA, podB := podOn[hostA.name], podOn[hostB.name]
	if podA == "" || podB == "" {
		t.Fatalf("whoami pods per node %v, want one on %s and one on %s", podOn, hostA.name, hostB.name)
	}

	o, err := f.Client.Create(ctx, &api.Service{ObjectMeta: api.ObjectMeta{Name: "who", Namespace: "default"},
		Spec: api.ServiceSpec{Type: api.ServiceTypeNodePort, Selector: map[string]string{"app": "who"},
			Ports: []api.ServicePort{{Port: 80, TargetPort: api.FromInt(8080)}}}})
	if err != nil {
		t.Fatal(err)
	}
	svc := o.(*api.Service)
	waitReadyEndpoints(t, f, "who", 2)

	nodePort := strconv.Itoa(int(svc.Spec.Ports[0].NodePort))
	client := n.addr(3)
	clientNS := &svcEnv{ns: n.client, cgroup: n.clientCgroup}
	onHostA := &svcEnv{ns: hostA.ns, cgroup: hostA.cgroup} // agent A's socket LB applies

	// expect runs batches of 10 GETs until want holds (the agents program
	// their datapaths asynchronously), then checks it on 40 more.
	expect := func(t *testing.T, from *svcEnv, addr, what string, want func(pods, remotes map[string]int) bool) {
		t.Helper()
		var r clientResult
		var pods, remotes map[string]int
		ok := func() bool {
			pods, remotes = whoamiAnswers(r)
			return len(r.Errs) == 0 && want(pods, remotes)
		}
		deadline := time.Now().Add(15 * time.Second)
		for r = from.fromNetns(t, "get", addr, 10); !ok(); r = from.fromNetns(t, "get", addr, 10) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: GETs to %s answered by %v, pods saw %v, errors %v", what, addr, pods, remotes, r.Errs)
			}
			time.Sleep(100 * time.Millisecond)
		}
		r = from.fromNetns(t, "get", addr, 40)
		if !ok() {
			t.Fatalf("40 GETs to %s: answered by %v, pods saw %v, errors %v; want %s", addr, pods, remotes, r.Errs, what)
		}
		t.Logf("40 GETs to %s: answered by %v, pods saw %v", addr, pods, remotes)
	}

	t.Run("ClusterNodePortRelaysToTheOtherHost", func(t *testing.T) {
		// A's listener relays, so both pods see A's address.
		expect(t, clientNS, net.JoinHostPort(hostA.addr, nodePort), "both pods, relayed by A", func(pods, remotes map[string]int) bool {
			return len(pods) == 2 && pods[podA] > 0 && pods[podB] > 0 && len(remotes) == 1 && remotes[hostA.addr] > 0
		})
	})

	t.Run("ClusterIPFromAHostReachesBothHosts", func(t *testing.T) {
		expect(t, onHostA, net.JoinHostPort(svc.Spec.ClusterIP, "80"), "both pods", func(pods, _ map[string]int) bool {
			return len(pods) == 2 && pods[podA] > 0 && pods[podB] > 0
		})
	})

	t.Run("LocalNodePortKeepsTheClientAddress", func(t *testing.T) {
		if _, err := f.Client.Modify(ctx, "Service", "default", "who", func(o api.Object) error {
			o.(*api.Service).Spec.ExternalTrafficPolicy = api.TrafficPolicyLocal
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, h := range []struct {
			host *hostAgent
			pod  string
		}{{hostA, podA}, {hostB, podB}} {
			expect(t, clientNS, net.JoinHostPort(h.host.addr, nodePort), "only "+h.pod+", seeing "+client, func(pods, remotes map[string]int) bool {
				return len(pods) == 1 && pods[h.pod] > 0 && len(remotes) == 1 && remotes[client] > 0
			})
		}
	})
}

// whoamiAnswers counts the client's answers ("<pod> remote=<addr:port>")
// per pod and per client address the pods saw.
func whoamiAnswers(r clientResult) (pods, remotes map[string]int) {
	pods, remotes = map[string]int{}, map[string]int{}
	for body, k := range r.Answers {
		body = strings.TrimSpace(strings.TrimPrefix(body, "?")) // podOf marks bodies not in hello's format
		pod, remote, _ := strings.Cut(body, " remote=")
		if h, _, err := net.SplitHostPort(remote); err == nil {
			remote = h
		}
		pods[pod] += k
		remotes[remote] += k
	}
	return pods, remotes
}

// bridgeNet is the test's namespaces: hosts and a client on one bridge.
type bridgeNet struct {
	sfx          string
	subnet       byte // 10.234.<subnet>.0/24
	bridge       string
	hosts        map[string]string // "a", "b" -> namespace
	client       string
	clientCgroup string // an empty cgroup: no LB applies to the client
}

func (n *bridgeNet) addr(host byte) string { return fmt.Sprintf("10.234.%d.%d", n.subnet, host) }

func newBridgeNet(t *testing.T) *bridgeNet {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	sfx := hex.EncodeToString(b)
	n := &bridgeNet{sfx: sfx, subnet: b[0], bridge: "flmh-" + sfx + "-br", client: "flmh-" + sfx + "-c",
		hosts: map[string]string{"a": "flmh-" + sfx + "-a", "b": "flmh-" + sfx + "-b"}}
	for _, ns := range []string{n.bridge, n.hosts["a"], n.hosts["b"], n.client} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// Interfaces are created inside the namespaces, so their names
	// cannot collide with anything else on the machine.
	sh(t, "ip", "-n", n.bridge, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", n.bridge, "link", "set", "br0", "up")
	for i, ns := range []string{n.hosts["a"], n.hosts["b"], n.client} {
		port := fmt.Sprintf("port%d", i+1)
		sh(t, "ip", "-n", n.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		sh(t, "ip", "-n", n.bridge, "link", "set", port, "master", "br0")
		sh(t, "ip", "-n", n.bridge, "link", "set", port, "up")
		sh(t, "ip", "-n", ns, "addr", "add", n.addr(byte(i+1))+"/24", "dev", "eth0")
		sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	}
	n.clientCgroup = newCgroup(t, "flotilla-e2e-mh"+sfx+"-c")
	return n
}

// newCgroup creates a cgroup v2 directory under the root, removed in
// cleanup once its processes are gone.
func newCgroup(t *testing.T, name string) string {
	t.Helper()
	root, err := ebpflb.Cgroup2Root()
	if err != nil {
		t.Fatal(err)
	}
	cg := filepath.Join(root, name)
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if err := os.Remove(cg); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("cgroup %s not removed", cg)
	})
	return cg
}

// forwardNATS listens on 127.0.0.1 inside namespace ns and relays every
// connection to target (the control plane's NATS, in the root namespace);
// it returns the port.
func forwardNATS(t *testing.T, ns, target string) int {
	t.Helper()
	var ln net.Listener
	if err := netns.Do(ns, func() (err error) {
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool
		conns  = map[net.Conn]bool{}
	)
	// track records c for cleanup to close; false once cleanup has run.
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return false
		}
		conns[c] = true
		return true
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if !track(c) {
					return
				}
				up, err := net.DialTimeout("tcp4", target, 5*time.Second)
				if err != nil || !track(up) {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done // either side closing ends the relay
				c.Close()
				up.Close()
				<-done
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// hostAgent is one `flotilla agent` process in its host's namespace and
// its own cgroup.
type hostAgent struct {
	name, ns, addr, cgroup string
}

// startHostAgent runs the agent binary in host's namespace and a fresh
// cgroup. The process is started from a thread switched into the
// namespace (not `ip netns exec`, which remounts /sys and so hides the
// bpf and cgroup2 filesystems the eBPF LB needs); that thread waits for
// it, and Pdeathsig kills the agent should the thread (the test) die.
func startHostAgent(t *testing.T, f *testfleet.Fleet, bin string, n *bridgeNet, host, addr string) *hostAgent {
	t.Helper()
	h := &hostAgent{name: "mh-" + n.sfx + "-" + host, ns: n.hosts[host], addr: addr,
		cgroup: newCgroup(t, "flotilla-e2e-mh"+n.sfx+"-"+host)}
	pinDir := filepath.Join(ebpflb.DefaultPinDir, h.name) // the agent's default
	t.Cleanup(func() {
		if err := ebpflb.Teardown(pinDir); err != nil {
			t.Errorf("teardown %s: %v", pinDir, err)
		}
	})
	u, err := url.Parse(f.Server.URL())
	if err != nil {
		t.Fatal(err)
	}
	port := forwardNATS(t, h.ns, u.Host)
	cg, err := os.Open(h.cgroup)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "agent", "--server", fmt.Sprintf("nats://127.0.0.1:%d", port), "--token", f.Server.Token(),
		"--name", h.name, "--address", addr, "--lb-mode", "ebpf", "--containerd-socket", "off",
		"--data-dir", filepath.Join(dir, "data"))
	// Containerd off: with it on, the LB would attach to the machine's
	// cgroup v2 root (container pods' cgroups are under it).
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "FLOTILLA_CONTEXT=" + filepath.Join(dir, "context.yaml")}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd()), Pdeathsig: unix.SIGKILL}
	started, done := make(chan error, 1), make(chan error, 1)
	go func() {
		// Not through netns.Do: this thread must live (stay locked)
		// as long as the agent, or Pdeathsig would kill it.
		runtime.LockOSThread()
		leave, err := netns.Enter(h.ns)
		back := false
		if err == nil {
			err = cmd.Start() // the child starts in the namespace
			back = leave() == nil
		}
		started <- err
		if err == nil {
			done <- cmd.Wait()
		}
		if back {
			runtime.UnlockOSThread()
		}
	}()
	if err := <-started; err != nil {
		t.Fatalf("start agent %s: %v", h.name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		var err error
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
		if t.Failed() {
			t.Logf("agent %s (%v), stderr:\n%s", h.name, err, stderr.String())
		}
	})
	return h
}
