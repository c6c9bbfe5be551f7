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

// TestServiceLocalPolicyKeepsClientAddress: a wasm HTTP module that
// echoes its RemoteAddr (testdata/whoami) behind a NodePort service,
// called from the test namespace's address. With externalTrafficPolicy
// Local the node-port listener hands the connection to the pod's handler
// in-process, so the module sees the client's address; with Cluster the
// listener relays and the module sees the node's.
func TestServiceLocalPolicyKeepsClientAddress(t *testing.T) {
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
	f.Push(t, "internal/e2e/testdata/whoami", "whoami:v1")

	mustCLI(t, f, "create", "deployment", "whoami", "--image=whoami:v1", "--port=8080", "--replicas=2")
	testfleet.WaitFor(t, "2 pods Running", 60*time.Second, allRunning(t, f, "app=whoami", 2))
	mustCLI(t, f, "expose", "deployment/whoami", "--type=NodePort", "--port=80", "--target-port=8080")
	setPolicy := func(p string) *api.Service {
		o, err := f.Client.Modify(ctx, "Service", "default", "whoami", func(o api.Object) error {
			o.(*api.Service).Spec.ExternalTrafficPolicy = p
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return o.(*api.Service)
	}
	svc := setPolicy(api.TrafficPolicyLocal)
	testfleet.WaitFor(t, "2 ready endpoints", 10*time.Second, func() bool {
		o, err := f.Client.Get(ctx, "EndpointSlice", "default", "whoami")
		if err != nil {
			return false
		}
		ready := 0
		for _, ep := range o.(*api.EndpointSlice).Endpoints {
			if ep.IsReady() {
				ready++
			}
		}
		return ready == 2
	})
	addr := net.JoinHostPort(e.nodeAddr, strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))
	client := strings.TrimSuffix(e.nodeAddr, ".1") + ".2" // the namespace side of the veth

	// remotes is what the module said its RemoteAddr was, per answer.
	remotes := func(r clientResult) map[string]int {
		out := map[string]int{}
		for body, n := range r.Answers {
			_, after, _ := strings.Cut(body, "remote=")
			out[strings.TrimSpace(after)] += n
		}
		return out
	}
	check := func(t *testing.T, want string) {
		t.Helper()
		var r clientResult
		testfleet.WaitFor(t, "the node port answers with "+want, 10*time.Second, func() bool {
			r = e.fromNetns(t, "get", addr, 1)
			return len(r.Errs) == 0 && remotes(r)[want] == 1
		})
		r = e.fromNetns(t, "get", addr, 20)
		if got := remotes(r); len(r.Errs) > 0 || got[want] != 20 {
			t.Fatalf("20 requests to %s: module saw %v (want %s), errors %v", addr, got, want, r.Errs)
		}
		t.Logf("node port %s: module saw %v", addr, remotes(r))
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
