package e2e

// NetworkPolicy of a container pod enforced by the eBPF LB at connect time,
// programmed by the service controller from a policy view. The "container"
// is this test binary re-run in the test cgroup (the same cgroup v2
// directory the agent would find for a runc container from
// /proc/<pid>/cgroup); the view is filled directly, so the pods' endpoints
// are exactly the test's own backends.

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent/policyview"
	"github.com/flotilla-edge/flotilla/edgeagent/servicelb"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
	"github.com/flotilla-edge/flotilla/netpolicy/policy"
)

func TestServiceLBContainerPodPolicyEBPF(t *testing.T) {
	e := newSvcEnv(t)
	f := testfleet.Start(t)
	bes := startTestBackends(t, e.nodeAddr, 3)
	clusterHTTP := net.JoinHostPort(createMix(t, f, e, bes, api.ServiceSpec{}).Spec.ClusterIP, "80")

	view := policyview.New()
	view.Set(&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default", Labels: map[string]string{"kubernetes.io/metadata.name": "default"}}})
	view.Set(&api.Pod{ObjectMeta: api.ObjectMeta{Name: "client", Namespace: "default", Labels: map[string]string{"app": "client"}},
		Status: api.PodStatus{HostIP: e.nodeAddr}})
	for _, b := range bes {
		view.Set(&api.Pod{ObjectMeta: api.ObjectMeta{Name: b.name, Namespace: "default", Labels: map[string]string{"app": "be", "name": b.name}},
			Status: api.PodStatus{HostIP: e.nodeAddr, ContainerStatuses: []api.ContainerStatus{{Name: "c", Ports: []api.PortStatus{
				{ContainerPort: 8080, HostIP: e.nodeAddr, HostPort: b.tcpPort, Protocol: "TCP"},
				{ContainerPort: 7, HostIP: e.nodeAddr, HostPort: b.udpPort, Protocol: "UDP"}}}}}})
	}
	for _, k := range policyview.Kinds {
		view.MarkSynced(k)
	}
	cfg := e.lbConfig(f, "ebpf")
	cfg.Policy = view
	cfg.PodCgroups = func() map[string]policy.PodRef {
		return map[string]policy.PodRef{e.cgroup: {Namespace: "default", Name: "client"}}
	}
	c, err := servicelb.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)

	sel := func(kv ...string) api.LabelSelector {
		return api.LabelSelector{MatchLabels: map[string]string{kv[0]: kv[1]}}
	}
	egressOnlyBe0 := &api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "client-to-be-0", Namespace: "default"},
		Spec: api.NetworkPolicySpec{PodSelector: sel("app", "client"), Egress: []api.NetworkPolicyEgressRule{{
			To: []api.NetworkPolicyPeer{{PodSelector: ptr(sel("name", "be-0"))}}}}}}
	isolateBe1 := &api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "be-1-closed", Namespace: "default"},
		Spec: api.NetworkPolicySpec{PodSelector: sel("name", "be-1")}}
	direct := func(b testBackend) string { return net.JoinHostPort(e.nodeAddr, strconv.Itoa(int(b.tcpPort))) }
	tests := []struct {
		name   string
		pols   []*api.NetworkPolicy
		reach  []string // through the cluster IP
		denied []string // dialled directly: EPERM
	}{
		{"no policy", nil, []string{"be-0", "be-1", "be-2"}, nil},
		{"egress isolated, allowed to be-0 only", []*api.NetworkPolicy{egressOnlyBe0}, []string{"be-0"}, []string{"be-1", "be-2"}},
		{"be-1 isolated for ingress (enforced at the client)", []*api.NetworkPolicy{isolateBe1}, []string{"be-0", "be-2"}, []string{"be-1"}},
		{"policies removed", nil, []string{"be-0", "be-1", "be-2"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range view.Keys("NetworkPolicy") {
				ns, name, _ := strings.Cut(k, "/")
				view.Delete("NetworkPolicy", ns, name)
			}
			for _, p := range tt.pols {
				api.Defaults(p)
				view.Set(p)
			}
			ok := func(r clientResult) bool {
				if len(r.Answers) != len(tt.reach) {
					return false
				}
				for _, n := range tt.reach {
					if r.Answers[n] == 0 {
						return false
					}
				}
				for _, e := range r.Errs {
					if !strings.Contains(e, "operation not permitted") {
						return false
					}
				}
				return len(tt.reach) == 3 && len(r.Errs) == 0 || len(tt.reach) < 3 && len(r.Errs) > 0
			}
			var r clientResult
			testfleet.WaitFor(t, "the policy is programmed", 10*time.Second, func() bool {
				r = e.fromNetns(t, "get", clusterHTTP, 30)
				return ok(r)
			})
			r = e.fromNetns(t, "get", clusterHTTP, 45)
			if !ok(r) {
				t.Fatalf("45 requests to %s: answers %v, errors %v (want only %v)", clusterHTTP, r.Answers, r.Errs, tt.reach)
			}
			t.Logf("cluster IP: %v, %d EPERM", r.Answers, len(r.Errs))
			for _, b := range bes {
				d := e.fromNetns(t, "dial", direct(b), 1)
				deny := strings.Contains(d.Errs[0], "operation not permitted")
				if want := containsName(tt.denied, b.name); deny != want || (!deny && d.Errs[0] != "connected") {
					t.Errorf("direct %s (%s): %s, want denied=%v", b.name, direct(b), d.Errs[0], want)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func containsName(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
