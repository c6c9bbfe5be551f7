package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent"
	"github.com/flotilla-edge/flotilla/edgeagent/servicelb"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
)

// TestNetworkPolicyRealContainerClient: a containerd/runc container (the
// test image in client mode, GETting a service's cluster IP every 300 ms)
// is policed at connect() by the eBPF LB through its own cgroup: egress
// denied, then allowed to the backends, then unrestricted again. The LB
// attaches to the cgroup of the test's containerd namespace, where runc
// puts its containers, so nothing else on the machine is touched.
func TestNetworkPolicyRealContainerClient(t *testing.T) {
	requirePrivileged(t)
	cc := testfleet.ContainerdForTest(t)
	root, err := ebpflb.Cgroup2Root()
	if err != nil {
		t.Fatal(err)
	}
	nsCgroup := filepath.Join(root, cc.Namespace)
	if err := os.MkdirAll(nsCgroup, 0o755); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	pinDir := "/sys/fs/bpf/flotilla-e2e-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := ebpflb.Teardown(pinDir); err != nil {
			t.Errorf("teardown %s: %v", pinDir, err)
		}
	})

	f := testfleet.Start(t)
	ctx := context.Background()
	a, err := edgeagent.Start(ctx, edgeagent.Config{
		Name: "pi-1", NATSURL: f.Server.URL(), Token: f.Server.Token(), DataDir: t.TempDir(),
		Address: "127.0.0.1", HeartbeatInterval: time.Second, Log: testfleet.Logger(),
		Containerd: *cc, NetworkPolicy: true, ServiceLB: "ebpf", LBCgroupPath: nsCgroup, LBPinDir: pinDir,
		ClusterDNSAddr: edgeagent.ClusterDNSOff,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)

	f.Push(t, "examples/hello", "hello:v1")
	web := webDeployment("web", 2, nil)
	svc := &api.Service{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"}, Spec: api.ServiceSpec{
		Selector: map[string]string{"app": "web"},
		Ports:    []api.ServicePort{{Name: "http", Port: 80, TargetPort: api.FromString("http")}}}}
	for _, o := range []api.Object{web, svc} {
		if _, err := f.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	testfleet.WaitFor(t, "web pods running", 60*time.Second, allRunning(t, f, "app=web", 2))
	waitReadyEndpoints(t, f, "web", 2)
	o, err := f.Client.Get(ctx, "Service", "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	vip := o.(*api.Service).Spec.ClusterIP + ":80"

	image := importImage(t, f, "getter")
	client := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "client", Namespace: "default", Labels: map[string]string{"app": "client"}},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: image, Args: []string{"-get", vip}}}}}
	if _, err := f.Client.Create(ctx, client); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "the client container running", 90*time.Second, func() bool {
		return podStatus(t, f, "client").Status.Phase == api.PodRunning
	})
	// The container must be where the LB looks.
	for _, in := range ociContainers(t, cc) {
		if in.Labels["flotilla.pod.name"] != "client" {
			continue
		}
		cg, err := servicelb.CgroupOf(strconv.Itoa(int(in.Pid)))
		if err != nil || !strings.HasPrefix(cg, nsCgroup+"/") {
			t.Fatalf("the client container's cgroup %q (%v) is not under %s", cg, err, nsCgroup)
		}
	}

	// lastGet is the client's newest report, once it is newer than the
	// step's start (its log lines carry no time, so count them).
	lines := func() []string {
		out, _, _ := runCLI(t, f, "logs", "client")
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "get ") {
				got = append(got, l)
			}
		}
		return got
	}
	expect := func(what, want string) {
		t.Helper()
		seen := len(lines())
		var last string
		testfleet.WaitFor(t, what, 30*time.Second, func() bool {
			ls := lines()
			if len(ls) <= seen+1 { // one report may predate the change
				return false
			}
			last = ls[len(ls)-1]
			return strings.Contains(last, want)
		})
		t.Logf("%s: %q", what, last)
	}
	netpol := func(name string, egress []api.NetworkPolicyEgressRule) *api.NetworkPolicy {
		return &api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Spec: api.NetworkPolicySpec{
			PodSelector: api.LabelSelector{MatchLabels: map[string]string{"app": "client"}}, PolicyTypes: []string{"Egress"}, Egress: egress}}
	}

	expect("no policy: the container reaches the service", "get ok Hello")
	if _, err := f.Client.Create(ctx, netpol("client-deny", nil)); err != nil {
		t.Fatal(err)
	}
	expect("egress denied: connect() fails with EPERM", "get err operation not permitted")
	if _, err := f.Client.Create(ctx, netpol("client-to-web", []api.NetworkPolicyEgressRule{
		{To: []api.NetworkPolicyPeer{{PodSelector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}}})); err != nil {
		t.Fatal(err)
	}
	expect("egress allowed to app=web: reached again", "get ok Hello")
	for _, n := range []string{"client-deny", "client-to-web"} {
		if _, err := f.Client.Delete(ctx, "NetworkPolicy", "default", n); err != nil {
			t.Fatal(err)
		}
	}
	expect("policies gone: unrestricted", "get ok Hello")
}
