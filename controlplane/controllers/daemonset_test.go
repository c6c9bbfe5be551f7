package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/server"
	"github.com/flotilla-edge/flotilla/controlplane/store"
)

func daemonSet(name string, nodeSelector map[string]string, maxUnavailable int32) *api.DaemonSet {
	mu := api.FromInt(maxUnavailable)
	return &api.DaemonSet{
		ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.DaemonSetSpec{
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       api.PodSpec{NodeSelector: nodeSelector, Containers: []api.Container{{Name: "agent", Image: "hello:v1"}}},
			},
			UpdateStrategy: api.DaemonSetUpdateStrategy{Type: api.RollingUpdateStrategy, RollingUpdate: &api.RollingUpdateDaemonSet{MaxUnavailable: &mu}},
		},
	}
}

func taintedNode(name string, labels map[string]string, taints ...api.Taint) *api.Node {
	n := readyNode(name, labels)
	n.Spec.Taints = taints
	return n
}

// perNode maps node name to the names of the daemon's pods on it.
func perNode(t *testing.T, s *server.Server, sel string) map[string][]string {
	out := map[string][]string{}
	for _, p := range pods(t, s, sel) {
		out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p.Name)
	}
	return out
}

func onNodes(t *testing.T, s *server.Server, sel string, nodes ...string) func() bool {
	return func() bool {
		got := perNode(t, s, sel)
		if len(got) != len(nodes) {
			return false
		}
		for _, n := range nodes {
			if len(got[n]) != 1 {
				return false
			}
		}
		return true
	}
}

func TestDaemonSetFollowsMatchingNodes(t *testing.T) {
	s := startServer(t, server.Config{})
	edge := map[string]string{"role": "edge"}
	createAll(t, s,
		readyNode("pi-1", edge), readyNode("pi-2", edge), readyNode("pi-3", nil),
		taintedNode("pi-4", edge, api.Taint{Key: "dedicated", Value: "camera", Effect: api.TaintNoSchedule}),
	)
	createAll(t, s, daemonSet("logship", edge, 1))
	waitFor(t, "one pod on pi-1 and pi-2 only", 10*time.Second, onNodes(t, s, "app=logship", "pi-1", "pi-2"))
	for _, p := range pods(t, s, "app=logship") {
		if c := api.FindCondition(p.Status.Conditions, api.PodScheduled); c == nil || c.Status != api.ConditionTrue {
			t.Fatalf("%s created without PodScheduled=True", p.Name)
		}
	}
	waitFor(t, "the pods handed to their agents", 10*time.Second, func() bool { return len(assignments(t, s)) == 2 })

	// A node labelled later gets its daemon; one unlabelled loses it.
	modify(t, s, "Node", "", "pi-3", func(o api.Object) { o.GetMeta().Labels = edge })
	waitFor(t, "pi-3 gets a pod", 5*time.Second, onNodes(t, s, "app=logship", "pi-1", "pi-2", "pi-3"))
	modify(t, s, "Node", "", "pi-1", func(o api.Object) { o.GetMeta().Labels = nil })
	waitFor(t, "pi-1 loses its pod", 5*time.Second, onNodes(t, s, "app=logship", "pi-2", "pi-3"))

	// A toleration opens the tainted node.
	modify(t, s, "DaemonSet", "default", "logship", func(o api.Object) {
		o.(*api.DaemonSet).Spec.Template.Spec.Tolerations = []api.Toleration{{Key: "dedicated", Operator: "Exists"}}
	})
	waitFor(t, "the tolerating template reaches pi-4", 10*time.Second, onNodes(t, s, "app=logship", "pi-2", "pi-3", "pi-4"))
	waitFor(t, "status counts 3 desired", 5*time.Second, func() bool {
		o, _ := s.Store.Get(context.Background(), "DaemonSet", "default", "logship")
		st := o.(*api.DaemonSet).Status
		return st.DesiredNumberScheduled == 3 && st.CurrentNumberScheduled == 3 && st.NumberMisscheduled == 0
	})

	// Deleting the daemon set takes its pods.
	if err := s.Store.Delete(context.Background(), "DaemonSet", "default", "logship", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pods collected", 10*time.Second, func() bool { return len(pods(t, s, "app=logship")) == 0 })
}

func TestDaemonSetRollingUpdateRespectsMaxUnavailable(t *testing.T) {
	s := startServer(t, server.Config{})
	var nodes []api.Object
	for i := 1; i <= 5; i++ {
		nodes = append(nodes, readyNode(fmt.Sprintf("pi-%d", i), nil))
	}
	createAll(t, s, nodes...)
	// Slow agents make an over-eager controller visible.
	startFakeAgents(t, s, 300*time.Millisecond)
	createAll(t, s, daemonSet("mon", nil, 2))
	waitFor(t, "5 ready daemons", 15*time.Second, allReady(t, s, "app=mon", 5))

	// Track, event by event, how many nodes lack a ready daemon.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, err := s.Store.Watch(ctx, "Pod", "default")
	if err != nil {
		t.Fatal(err)
	}
	worst := make(chan int, 1)
	go func() {
		pods := map[string]*api.Pod{}
		synced, high := false, 0
		for ev := range evs {
			switch ev.Type {
			case store.Synced:
				synced = true
				continue
			case store.Deleted:
				delete(pods, ev.Object.GetMeta().Name)
			default:
				pods[ev.Object.GetMeta().Name] = ev.Object.(*api.Pod)
			}
			if !synced {
				continue
			}
			readyOn := map[string]bool{}
			for _, p := range pods {
				if p.IsReady() {
					readyOn[p.Spec.NodeName] = true
				}
			}
			high = max(high, 5-len(readyOn))
			select {
			case <-worst:
			default:
			}
			worst <- high
		}
	}()
	modify(t, s, "DaemonSet", "default", "mon", func(o api.Object) {
		o.(*api.DaemonSet).Spec.Template.Spec.Containers[0].Image = "hello:v2"
	})
	waitFor(t, "every daemon updated and ready", 20*time.Second, func() bool {
		ps := pods(t, s, "app=mon")
		if len(ps) != 5 {
			return false
		}
		for _, p := range ps {
			if p.Spec.Containers[0].Image != "hello:v2" || !p.IsReady() {
				return false
			}
		}
		return true
	})
	time.Sleep(100 * time.Millisecond) // let the watcher drain
	if w := <-worst; w > 2 || w < 1 {
		t.Fatalf("up to %d nodes lacked a ready daemon during the update; maxUnavailable is 2", w)
	}
}
