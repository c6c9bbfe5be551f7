package e2e

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

// Node ports of externalTrafficPolicy Local services keep the client's
// address; Cluster relays from the node's. The client is the test
// namespace's side of the veth, the node the root side, where the agent's
// TC programs attach.

// TestServiceLocalPolicyKeepsClientAddress: a wasm HTTP module that
// echoes its RemoteAddr (testdata/whoami).
func TestServiceLocalPolicyKeepsClientAddress(t *testing.T) {
	e := newSvcEnv(t)
	f := testfleet.Start(t)
	startLocalAgent(t, f, e, nil)
	f.Push(t, "internal/e2e/testdata/whoami", "whoami:v1")
	mustCLI(t, f, "create", "deployment", "whoami", "--image=whoami:v1", "--port=8080", "--replicas=2")
	testfleet.WaitFor(t, "2 pods Running", 60*time.Second, allRunning(t, f, "app=whoami", 2))
	checkClientAddress(t, f, e, "whoami")
}

// TestServiceLocalPolicyKeepsClientAddressOCI: containers (host
// networking, so the agent cannot hand the connection over in-process)
// behind a Local node port see the client's address: the TC programs
// translate the node port to the container's port and back.
func TestServiceLocalPolicyKeepsClientAddressOCI(t *testing.T) {
	e := newSvcEnv(t)
	f := testfleet.Start(t)
	startLocalAgent(t, f, e, testfleet.ContainerdForTest(t))
	img := importImage(t, f, "clientip")
	d := serverDeployment("echo", img, 2, api.EnvVar{Name: "BIND", Value: "0.0.0.0"}, api.EnvVar{Name: "ECHO_REMOTE", Value: "1"})
	if _, err := f.Client.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "2 containers Running", 90*time.Second, allRunning(t, f, "app=echo", 2))
	checkClientAddress(t, f, e, "echo")
}

// startLocalAgent runs one agent on the node side of the test's veth with
// the eBPF LB in the test's cgroup and pin dir.
func startLocalAgent(t *testing.T, f *testfleet.Fleet, e *svcEnv, cc *edgeagent.ContainerdConfig) {
	t.Helper()
	cfg := edgeagent.Config{
		Name: "pi-1", NATSURL: f.Server.URL(), Token: f.Server.Token(), DataDir: t.TempDir(),
		Address: e.nodeAddr, HeartbeatInterval: time.Second, Log: testfleet.Logger(),
		ServiceLB: "ebpf", LBCgroupPath: e.cgroup, LBPinDir: e.pinDir,
	}
	if cc != nil {
		cfg.Containerd = *cc
	}
	a, err := edgeagent.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
}

// checkClientAddress exposes deployment name (2 pods answering with
// "remote=<addr>") as a NodePort service and checks what the pods see
// with the Local and the Cluster policy.
func checkClientAddress(t *testing.T, f *testfleet.Fleet, e *svcEnv, name string) {
	t.Helper()
	ctx := context.Background()
	mustCLI(t, f, "expose", "deployment/"+name, "--type=NodePort", "--port=80", "--target-port=8080")
	setPolicy := func(p string) *api.Service {
		o, err := f.Client.Modify(ctx, "Service", "default", name, func(o api.Object) error {
			o.(*api.Service).Spec.ExternalTrafficPolicy = p
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return o.(*api.Service)
	}
	svc := setPolicy(api.TrafficPolicyLocal)
	waitReadyEndpoints(t, f, name, 2)
	addr := net.JoinHostPort(e.nodeAddr, strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))
	client := strings.TrimSuffix(e.nodeAddr, ".1") + ".2" // the namespace side of the veth

	// remotes is the address each answer says its client had, per pod.
	remotes := func(r clientResult) (map[string]int, map[string]int) {
		addrs, pods := map[string]int{}, map[string]int{}
		for body, n := range r.Answers {
			_, after, _ := strings.Cut(body, "remote=")
			a := strings.Fields(after + " ")[0]
			if h, _, err := net.SplitHostPort(a); err == nil {
				a = h
			}
			addrs[a] += n
			pods[strings.Fields(body + " ")[0]] += n
		}
		return addrs, pods
	}
	check := func(t *testing.T, want string) {
		t.Helper()
		var r clientResult
		testfleet.WaitFor(t, "the node port answers with "+want, 10*time.Second, func() bool {
			r = e.fromNetns(t, "get", addr, 1)
			got, _ := remotes(r)
			return len(r.Errs) == 0 && got[want] == 1
		})
		r = e.fromNetns(t, "get", addr, 30)
		got, pods := remotes(r)
		if len(r.Errs) > 0 || got[want] != 30 {
			t.Fatalf("30 requests to %s: pods saw %v (want %s), errors %v", addr, got, want, r.Errs)
		}
		if len(pods) != 2 {
			t.Fatalf("30 requests to %s answered by %v, want both pods", addr, pods)
		}
		t.Logf("node port %s: pods saw %v, answers per pod %v", addr, got, pods)
	}

	t.Run("LocalKeepsTheClientAddress", func(t *testing.T) { check(t, client) })
	t.Run("ClusterRelaysFromTheNode", func(t *testing.T) {
		setPolicy(api.TrafficPolicyCluster)
		check(t, e.nodeAddr)
	})
	t.Run("BackToLocal", func(t *testing.T) {
		setPolicy(api.TrafficPolicyLocal)
		check(t, client)
	})
}
