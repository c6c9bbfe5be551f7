package e2e

// NetworkPolicy at the agent's node-port listeners: a client outside the
// node (the test namespace, address .2 of the veth) reaches a NodePort
// service whose backends are the test's
// own servers, known to the policy view as pods. The listener relays a
// connection or UDP session only to a backend whose pod's ingress rules
// admit the client's address; admitted to none, the connection is closed
// at once and datagrams are dropped. Both LB modes run the same listeners,
// so the suite runs in both. The view is filled directly, as in
// service_podpolicy_test.go.

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
)

func TestServiceNodePortPolicy(t *testing.T) {
	for _, m := range lbModes {
		t.Run(m.mode, func(t *testing.T) { testServiceNodePortPolicy(t, m.mode, api.TrafficPolicyCluster) })
	}
	// eBPF mode translates Local node ports at TC, where the backends'
	// admitted client prefixes are checked before the listener is.
	t.Run("ebpf/Local", func(t *testing.T) { testServiceNodePortPolicy(t, "ebpf", api.TrafficPolicyLocal) })
}

func testServiceNodePortPolicy(t *testing.T, mode, trafficPolicy string) {
	e := newSvcEnv(t)
	f := testfleet.Start(t)
	bes := startTestBackends(t, e.nodeAddr, 3)
	svc := createMix(t, f, e, bes, api.ServiceSpec{Type: api.ServiceTypeNodePort, ExternalTrafficPolicy: trafficPolicy})
	nodeHTTP := net.JoinHostPort(e.nodeAddr, strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))
	nodeUDP := net.JoinHostPort(e.nodeAddr, strconv.Itoa(int(svc.Spec.Ports[1].NodePort)))
	client := strings.TrimSuffix(e.nodeAddr, ".1") + ".2" // the namespace side of the veth

	view := policyview.New()
	view.Set(&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default", Labels: map[string]string{"kubernetes.io/metadata.name": "default"}}})
	for _, b := range bes {
		view.Set(&api.Pod{ObjectMeta: api.ObjectMeta{Name: b.name, Namespace: "default", Labels: map[string]string{"app": "be", "name": b.name}},
			Status: api.PodStatus{HostIP: e.nodeAddr, ContainerStatuses: []api.ContainerStatus{{Name: "c", Ports: []api.PortStatus{
				{Name: "http", ContainerPort: 8080, HostIP: e.nodeAddr, HostPort: b.tcpPort, Protocol: "TCP"},
				{Name: "echo", ContainerPort: 7, HostIP: e.nodeAddr, HostPort: b.udpPort, Protocol: "UDP"}}}}}})
	}
	for _, k := range policyview.Kinds {
		view.MarkSynced(k)
	}
	cfg := e.lbConfig(f, mode)
	cfg.Policy = view
	c, err := servicelb.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	if c.Mode() != mode {
		t.Fatalf("mode %q, want %q (%s)", c.Mode(), mode, c.Reason())
	}
	if mode == "ebpf" && !strings.Contains(c.Reason(), "translated at TC") {
		t.Fatalf("node ports are not translated at TC: %s", c.Reason())
	}

	admitFrom := func(name, cidr string, podSel map[string]string) *api.NetworkPolicy {
		return &api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
			Spec: api.NetworkPolicySpec{PodSelector: api.LabelSelector{MatchLabels: podSel},
				Ingress: []api.NetworkPolicyIngressRule{{From: []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: cidr}}}}}}}
	}
	closeBe1 := &api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "be-1-closed", Namespace: "default"},
		Spec: api.NetworkPolicySpec{PodSelector: api.LabelSelector{MatchLabels: map[string]string{"name": "be-1"}}}}
	tests := []struct {
		name  string
		pols  []*api.NetworkPolicy
		reach []string // backends that answer; none: refused
	}{
		{"no policy", nil, []string{"be-0", "be-1", "be-2"}},
		{"backends admit another block: refused", []*api.NetworkPolicy{admitFrom("be-from-doc", "192.0.2.0/24", map[string]string{"app": "be"})}, nil},
		{"one backend closed: the others answer", []*api.NetworkPolicy{closeBe1}, []string{"be-0", "be-2"}},
		{"backends admit the client's /32", []*api.NetworkPolicy{admitFrom("be-from-client", client+"/32", map[string]string{"app": "be"})},
			[]string{"be-0", "be-1", "be-2"}},
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
			// The listener asks the view per connection, so the change is
			// in effect at once; the wait covers the listener starting.
			var r clientResult
			testfleet.WaitFor(t, "the node port follows the policy", 10*time.Second, func() bool {
				r = e.fromNetns(t, "get", nodeHTTP, 10)
				return reachedExactly(r, tt.reach)
			})
			start := time.Now()
			r = e.fromNetns(t, "get", nodeHTTP, 30)
			took := time.Since(start)
			if !reachedExactly(r, tt.reach) {
				t.Fatalf("30 GETs to %s: answers %v, errors %v (want only %v)", nodeHTTP, r.Answers, r.Errs, tt.reach)
			}
			if len(tt.reach) == 0 {
				// Closed, not left hanging: a hang would be a client
				// timeout (3 s) per request.
				for _, msg := range r.Errs {
					if strings.Contains(msg, "Timeout") || strings.Contains(msg, "deadline") {
						t.Fatalf("refused connection hung: %s", msg)
					}
				}
				if took > 5*time.Second {
					t.Fatalf("30 refused GETs took %v", took)
				}
				t.Logf("TCP refused in %v: %s", took, r.Errs[0])
			} else {
				t.Logf("TCP: %v", r.Answers)
			}

			n := 30
			if len(tt.reach) == 0 {
				n = 2 // each waits out the client's 2 s read deadline
			}
			r = e.fromNetns(t, "udp", nodeUDP, n)
			if len(tt.reach) == 0 {
				if len(r.Answers) != 0 || len(r.Errs) != n {
					t.Fatalf("%d datagrams of a refused client to %s: answers %v, errors %v", n, nodeUDP, r.Answers, r.Errs)
				}
			} else if !reachedExactly(r, tt.reach) {
				t.Fatalf("%d datagrams to %s: answers %v, errors %v (want only %v)", n, nodeUDP, r.Answers, r.Errs, tt.reach)
			}
			t.Logf("UDP: answers %v, %d unanswered", r.Answers, len(r.Errs))
		})
	}
}

// reachedExactly: every backend of reach answered and no other did, with
// no errors; with reach empty, nothing answered and every try failed.
func reachedExactly(r clientResult, reach []string) bool {
	if len(reach) == 0 {
		return len(r.Answers) == 0 && len(r.Errs) > 0
	}
	if len(r.Errs) > 0 || len(r.Answers) != len(reach) {
		return false
	}
	for _, n := range reach {
		if r.Answers[n] == 0 {
			return false
		}
	}
	return true
}
