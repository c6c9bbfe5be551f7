package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent"
	"github.com/flotilla-edge/flotilla/edgeagent/dns"
	"github.com/flotilla-edge/flotilla/edgeagent/policyview"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
	"github.com/flotilla-edge/flotilla/wasmrt/hostcall"
)

// TestNetworkPolicyWasmHostCalls: the frontend wasm pod calls the backend
// through the host call; NetworkPolicies created through the API change
// what the agent's policy hook lets through, within a watch round trip.
func TestNetworkPolicyWasmHostCalls(t *testing.T) {
	f := testfleet.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// The agent enforces through its own view (Config.NetworkPolicy); this
	// second view with the same hook lets the test read the denial reason
	// the agent logs. Its resolver answers with the ClusterIP (not Direct),
	// so the hook judges every backend the call may reach.
	view := policyview.New()
	go policyview.Feed(ctx, f.Client, view, testfleet.Logger())
	names := dns.NewStore()
	go dns.Feed(ctx, f.Client, names, testfleet.Logger())
	res := &dns.Resolver{View: names}
	allow := view.Allow(func(_ context.Context, c hostcall.Caller, host string, port int) (string, bool, error) {
		return res.Resolve(c.Namespace, host, port)
	}, nil)

	a, err := edgeagent.Start(ctx, edgeagent.Config{
		Name: "pi-1", NATSURL: f.Server.URL(), Token: f.Server.Token(), DataDir: t.TempDir(),
		Address: "127.0.0.1", HeartbeatInterval: time.Second, Log: testfleet.Logger(),
		ClusterDNSAddr: edgeagent.ClusterDNSOff, ServiceDialDirect: true, NetworkPolicy: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	f.Push(t, "examples/backend", "backend:v1")
	f.Push(t, "examples/frontend", "frontend:v1")
	backend := webDeployment("backend", 2, nil)
	backend.Spec.Template.Spec.Containers[0].Image = "backend:v1"
	frontend := webDeployment("frontend", 1, nil)
	frontend.Spec.Template.Spec.Containers[0].Image = "frontend:v1"
	for _, o := range []api.Object{backend, frontend, &api.Service{ObjectMeta: api.ObjectMeta{Name: "backend"}, Spec: api.ServiceSpec{
		Selector: map[string]string{"app": "backend"},
		Ports:    []api.ServicePort{{Name: "http", Port: 80, TargetPort: api.FromString("http")}},
	}}} {
		if _, err := f.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
	}
	testfleet.WaitFor(t, "backend pods running", 60*time.Second, allRunning(t, f, "app=backend", 2))
	testfleet.WaitFor(t, "frontend pod running", 60*time.Second, allRunning(t, f, "app=frontend", 1))
	fe := listPods(t, f, "app=frontend")[0]

	call := func() (int, string) {
		resp, err := http.Get("http://" + endpoint(fe) + "/")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	expect := func(what string, status int, substr string) {
		t.Helper()
		var last string
		testfleet.WaitFor(t, what, 30*time.Second, func() bool {
			code, body := call()
			last = body
			return code == status && strings.Contains(body, substr)
		})
		t.Logf("%s: %q", what, strings.TrimSpace(last))
	}
	// hookSays is what the agent logs and what the guest's code stands for.
	hookSays := func() error {
		return allow(ctx, hostcall.Caller{Namespace: "default", Pod: fe.Name}, "backend", 80)
	}
	// hookSaysSoon waits for the test's own view, which follows the
	// watch apart from the agent's and may be a moment behind it, to
	// give an answer that ok accepts.
	hookSaysSoon := func(ok func(error) bool) {
		t.Helper()
		testfleet.WaitFor(t, "the test's policy view to agree", 5*time.Second, func() bool { return ok(hookSays()) })
	}
	create := func(p *api.NetworkPolicy) {
		t.Helper()
		if _, err := f.Client.Create(ctx, p); err != nil {
			t.Fatalf("create netpol %s: %v", p.Name, err)
		}
	}
	remove := func(name string) {
		t.Helper()
		if _, err := f.Client.Delete(ctx, "NetworkPolicy", "default", name); err != nil {
			t.Fatalf("delete netpol %s: %v", name, err)
		}
	}
	podSel := func(app string) *api.LabelSelector {
		return &api.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}

	expect("no policy: frontend reaches backend", http.StatusOK, "backend says")

	create(&api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "frontend-deny-egress"}, Spec: api.NetworkPolicySpec{
		PodSelector: *podSel("frontend"), PolicyTypes: []string{"Egress"}}})
	expect("deny-all egress: the call fails", http.StatusBadGateway, "denied by policy")
	hookSaysSoon(func(err error) bool {
		return errors.Is(err, policyview.ErrDenied) && strings.Contains(err.Error(), "denied by NetworkPolicy default/frontend-deny-egress")
	})
	t.Logf("hook: %v", hookSays())

	create(&api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "frontend-to-backend"}, Spec: api.NetworkPolicySpec{
		PodSelector: *podSel("frontend"),
		Egress:      []api.NetworkPolicyEgressRule{{To: []api.NetworkPolicyPeer{{PodSelector: podSel("backend")}}}}}})
	expect("egress allowed to app=backend: the call passes", http.StatusOK, "backend says")

	// Ingress of the destination counts too.
	create(&api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "backend-deny-ingress"}, Spec: api.NetworkPolicySpec{
		PodSelector: *podSel("backend")}})
	expect("backend ingress-isolated: the call fails", http.StatusBadGateway, "denied by policy")
	hookSaysSoon(func(err error) bool {
		return err != nil && strings.Contains(err.Error(), "default/backend-deny-ingress")
	})
	port := api.FromString("http")
	create(&api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "backend-from-frontend"}, Spec: api.NetworkPolicySpec{
		PodSelector: *podSel("backend"),
		Ingress: []api.NetworkPolicyIngressRule{{From: []api.NetworkPolicyPeer{{PodSelector: podSel("frontend")}},
			Ports: []api.NetworkPolicyPort{{Port: &port}}}}}})
	expect("backend admits app=frontend on its http port: the call passes", http.StatusOK, "backend says")

	for _, n := range []string{"frontend-to-backend", "backend-from-frontend"} {
		remove(n)
	}
	expect("allow rules gone: denied again", http.StatusBadGateway, "denied by policy")
	for _, n := range []string{"frontend-deny-egress", "backend-deny-ingress"} {
		remove(n)
	}
	expect("no policy left: the call passes", http.StatusOK, "backend says")
}
