package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/wire"
	"github.com/flotilla-edge/flotilla/controlplane/natsembed"
	"github.com/flotilla-edge/flotilla/controlplane/server"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func startServer(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	if cfg.DataDir == "" && cfg.NATSURL == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.NATSHost, cfg.NATSPort, cfg.Log = "127.0.0.1", -1, quiet
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 3 * time.Second
	}
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readyNode is what an agent would register; these tests have no agent.
func readyNode(name string, labels map[string]string) *api.Node {
	return &api.Node{
		ObjectMeta: api.ObjectMeta{Name: name, Labels: labels},
		Status: api.NodeStatus{
			Capacity:   api.ResourceList{"cpu": api.MustParseQuantity("4"), "memory": api.MustParseQuantity("4Gi")},
			Runtimes:   []string{api.RuntimeWasm},
			Conditions: []api.Condition{{Type: api.NodeReady, Status: api.ConditionTrue, LastHeartbeatTime: api.Now()}},
			Addresses:  []api.NodeAddress{{Type: "InternalIP", Address: "127.0.0.1"}},
		},
	}
}

func deployment(name string, replicas int32, nodeSelector map[string]string) *api.Deployment {
	return &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.DeploymentSpec{
			Replicas: api.Int32(replicas),
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: api.PodSpec{
					NodeSelector: nodeSelector,
					Containers:   []api.Container{{Name: "web", Image: "hello:v1"}},
				},
			},
		},
	}
}

func pods(t *testing.T, s *server.Server, selector string) []*api.Pod {
	t.Helper()
	sel, err := api.ParseSelector(selector)
	if err != nil {
		t.Fatal(err)
	}
	objs, _, err := s.Store.List(context.Background(), "Pod", storeList(sel))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*api.Pod, len(objs))
	for i, o := range objs {
		out[i] = o.(*api.Pod)
	}
	return out
}

func assignments(t *testing.T, s *server.Server) map[string]string {
	t.Helper()
	js, _ := jetstream.New(s.Conn())
	kv, err := js.KeyValue(context.Background(), wire.AssignmentsBucket)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	lister, err := kv.ListKeys(context.Background())
	if err != nil {
		return out
	}
	for k := range lister.Keys() {
		e, err := kv.Get(context.Background(), k)
		if err != nil {
			continue
		}
		var p api.Pod
		_ = json.Unmarshal(e.Value(), &p)
		out[k] = p.UID
	}
	return out
}

func TestDeploymentReplicaSetPodsScheduleScaleAndCollect(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx := context.Background()
	for _, n := range []*api.Node{readyNode("pi-1", nil), readyNode("pi-2", map[string]string{"disk": "ssd"})} {
		if _, err := s.Store.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	// The scheduler learns nodes from a watch: a probe pod only pi-2 fits
	// shows it knows both (pi-1 came first), so the spread check below
	// tests the scorer, not the watch's timing.
	probe := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "probe", Namespace: "default"}, Spec: api.PodSpec{
		NodeSelector: map[string]string{"disk": "ssd"}, Containers: []api.Container{{Name: "c", Image: "hello:v1"}}}}
	if _, err := s.Store.Create(ctx, probe); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the probe pod bound to pi-2", 10*time.Second, func() bool {
		o, err := s.Store.Get(ctx, "Pod", "default", "probe")
		return err == nil && o.(*api.Pod).Spec.NodeName == "pi-2"
	})
	if err := s.Store.Delete(ctx, "Pod", "default", "probe", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.Create(ctx, deployment("web", 3, nil)); err != nil {
		t.Fatal(err)
	}
	bound := func(n int) func() bool {
		return func() bool {
			ps := pods(t, s, "app=web")
			if len(ps) != n {
				return false
			}
			for _, p := range ps {
				if p.Spec.NodeName == "" || !api.IsControlledBy(&p.ObjectMeta, ps[0].OwnerReferences[0].UID) {
					return false
				}
			}
			return len(assignments(t, s)) == n
		}
	}
	waitFor(t, "3 pods bound and assigned", 10*time.Second, bound(3))
	perNode := map[string]int{}
	for _, p := range pods(t, s, "app=web") {
		perNode[p.Spec.NodeName]++
		if c := api.FindCondition(p.Status.Conditions, api.PodScheduled); c == nil || c.Status != api.ConditionTrue {
			t.Fatalf("pod %s bound without PodScheduled=True", p.Name)
		}
	}
	if perNode["pi-1"] == 0 || perNode["pi-2"] == 0 {
		t.Fatalf("replicas not spread across nodes: %v", perNode)
	}
	rss, _, _ := s.Store.List(ctx, "ReplicaSet", storeList(nil))
	if len(rss) != 1 || !strings.HasPrefix(rss[0].GetMeta().Name, "web-") {
		t.Fatalf("want one replicaset web-<hash>, got %d", len(rss))
	}

	// A deleted pod is replaced.
	victim := pods(t, s, "app=web")[0]
	if err := s.Store.Delete(ctx, "Pod", "default", victim.Name, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted pod replaced", 10*time.Second, func() bool {
		ps := pods(t, s, "app=web")
		for _, p := range ps {
			if p.Name == victim.Name {
				return false
			}
		}
		return bound(3)()
	})
	if _, ok := assignments(t, s)[wire.AssignmentKey(victim.Spec.NodeName, "default", victim.Name)]; ok {
		t.Fatal("the deleted pod's assignment is still there")
	}

	// Scale to 5, then 2.
	for _, n := range []int32{5, 2} {
		scale(t, s, "web", n)
		waitFor(t, fmt.Sprintf("scale to %d", n), 10*time.Second, bound(int(n)))
	}

	// Deleting the deployment removes its replicasets, pods and assignments.
	if err := s.Store.Delete(ctx, "Deployment", "default", "web", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "garbage collection", 10*time.Second, func() bool {
		rss, _, _ := s.Store.List(ctx, "ReplicaSet", storeList(nil))
		return len(rss) == 0 && len(pods(t, s, "")) == 0 && len(assignments(t, s)) == 0
	})
}

func scale(t *testing.T, s *server.Server, name string, n int32) {
	t.Helper()
	for {
		o, err := s.Store.Get(context.Background(), "Deployment", "default", name)
		if err != nil {
			t.Fatal(err)
		}
		o.(*api.Deployment).Spec.Replicas = api.Int32(n)
		if _, err := s.Store.Update(context.Background(), o); err == nil {
			return
		}
	}
}

func TestNodeSelectorPinsAndUnschedulableSaysWhy(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx := context.Background()
	for _, n := range []*api.Node{readyNode("pi-1", nil), readyNode("pi-2", map[string]string{"disk": "ssd"})} {
		if _, err := s.Store.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Store.Create(ctx, deployment("db", 3, map[string]string{"disk": "ssd"})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.Create(ctx, deployment("gpu", 1, map[string]string{"accel": "gpu"})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "db pods on pi-2", 10*time.Second, func() bool {
		ps := pods(t, s, "app=db")
		for _, p := range ps {
			if p.Spec.NodeName != "pi-2" {
				return false
			}
		}
		return len(ps) == 3
	})
	waitFor(t, "gpu pod marked unschedulable", 10*time.Second, func() bool {
		ps := pods(t, s, "app=gpu")
		if len(ps) != 1 {
			return false
		}
		c := api.FindCondition(ps[0].Status.Conditions, api.PodScheduled)
		return c != nil && c.Status == api.ConditionFalse && c.Reason == "Unschedulable" &&
			strings.Contains(c.Message, "0/2 nodes are available") && strings.Contains(c.Message, "node selector")
	})
	waitFor(t, "a FailedScheduling warning event", 10*time.Second, func() bool {
		evs, _, _ := s.Store.List(ctx, "Event", storeList(nil))
		for _, o := range evs {
			e := o.(*api.Event)
			if e.Reason == "FailedScheduling" && e.Type == api.EventWarning && strings.HasPrefix(e.InvolvedObject.Name, "gpu-") && strings.Contains(e.Message, "node selector") {
				return true
			}
		}
		return false
	})
	// A node that starts matching takes the pending pod.
	if _, err := s.Store.Create(ctx, readyNode("pi-3", map[string]string{"accel": "gpu"})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "gpu pod bound once a node matches", 10*time.Second, func() bool {
		ps := pods(t, s, "app=gpu")
		return len(ps) == 1 && ps[0].Spec.NodeName == "pi-3"
	})
}

func TestSecondServerOnSameNATSDoesNotDoubleCreate(t *testing.T) {
	nats, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nats.Stop)
	servers := map[string]*server.Server{}
	for _, id := range []string{"first", "second"} {
		servers[id] = startServer(t, server.Config{Identity: id, NATSURL: nats.URL()})
	}
	s := servers["second"]
	ctx := context.Background()
	if _, err := s.Store.Create(ctx, readyNode("pi-1", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.Create(ctx, deployment("web", 4, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 pods", 10*time.Second, func() bool { return len(pods(t, s, "app=web")) == 4 })
	// Give a second set of controllers, were one running, time to add more.
	time.Sleep(2 * time.Second)
	if n := len(pods(t, s, "app=web")); n != 4 {
		t.Fatalf("%d pods with two servers, want 4", n)
	}
	leader := servers["first"].Lease.Holder()
	if leader == "" || leader != servers["second"].Lease.Holder() {
		t.Fatalf("servers disagree on the leader: %q vs %q", leader, servers["second"].Lease.Holder())
	}
	// The leader goes away; the other takes over and keeps the count.
	servers[leader].Stop()
	other := servers[map[string]string{"first": "second", "second": "first"}[leader]]
	waitFor(t, "the other server to take the lease", 10*time.Second, func() bool { return other.Lease.Holder() == other.Lease.Identity() })
	scale(t, other, "web", 6)
	waitFor(t, "6 pods after the hand-over", 10*time.Second, func() bool { return len(pods(t, other, "app=web")) == 6 })
	time.Sleep(time.Second)
	if n := len(pods(t, other, "app=web")); n != 6 {
		t.Fatalf("%d pods after scale, want 6", n)
	}
}
