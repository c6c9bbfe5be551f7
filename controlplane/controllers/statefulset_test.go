package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/server"
	"github.com/flotilla-edge/flotilla/controlplane/store"
)

func statefulSet(name string, replicas int32, policy string) *api.StatefulSet {
	return &api.StatefulSet{
		ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.StatefulSetSpec{
			Replicas:            api.Int32(replicas),
			ServiceName:         name,
			PodManagementPolicy: policy,
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       api.PodSpec{Containers: []api.Container{{Name: "db", Image: "hello:v1"}}},
			},
			VolumeClaimTemplates: []api.PersistentVolumeClaim{{
				ObjectMeta: api.ObjectMeta{Name: "data"},
				Spec:       api.PersistentVolumeClaimSpec{Resources: api.ResourceRequirements{Requests: api.ResourceList{"storage": api.MustParseQuantity("1Gi")}}},
			}},
		},
	}
}

// podLog records pod creations and deletions in order, checking at each
// creation of NAME-i that NAME-(i-1) had been marked ready.
type podLog struct {
	mu     sync.Mutex
	events []string // "+web-0", "-web-2"
	errs   []string
}

func watchPods(t *testing.T, s *server.Server, agents *fakeAgents, set string, ordered bool) *podLog {
	t.Helper()
	l := &podLog{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	evs, err := s.Store.Watch(ctx, "Pod", "default")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range evs {
			if ev.Object == nil || !strings.HasPrefix(ev.Object.GetMeta().Name, set+"-") {
				continue
			}
			name := ev.Object.GetMeta().Name
			l.mu.Lock()
			switch ev.Type {
			case store.Added:
				l.events = append(l.events, "+"+name)
				var i int
				fmt.Sscanf(strings.TrimPrefix(name, set+"-"), "%d", &i)
				if prev := fmt.Sprintf("%s-%d", set, i-1); ordered && i > 0 && !agents.isMarked(prev) {
					l.errs = append(l.errs, fmt.Sprintf("%s created before %s was ready", name, prev))
				}
			case store.Deleted:
				l.events = append(l.events, "-"+name)
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *podLog) snapshot() ([]string, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...), append([]string(nil), l.errs...)
}

func claims(t *testing.T, s *server.Server) map[string]*api.PersistentVolumeClaim {
	t.Helper()
	objs, _, err := s.Store.List(context.Background(), "PersistentVolumeClaim", storeList(nil))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*api.PersistentVolumeClaim{}
	for _, o := range objs {
		out[o.GetMeta().Name] = o.(*api.PersistentVolumeClaim)
	}
	return out
}

func allReady(t *testing.T, s *server.Server, sel string, n int) func() bool {
	return func() bool {
		ps := pods(t, s, sel)
		if len(ps) != n {
			return false
		}
		for _, p := range ps {
			if !p.IsReady() {
				return false
			}
		}
		return true
	}
}

func TestStatefulSetOrderedScaleUpAndDownKeepsClaims(t *testing.T) {
	s := startServer(t, server.Config{})
	createAll(t, s, readyNode("pi-1", nil), readyNode("pi-2", nil))
	agents := startFakeAgents(t, s, 100*time.Millisecond)
	log := watchPods(t, s, agents, "web", true)
	createAll(t, s, statefulSet("web", 3, ""))

	waitFor(t, "web-0..2 ready", 15*time.Second, allReady(t, s, "app=web", 3))
	evs, errs := log.snapshot()
	if len(errs) > 0 {
		t.Fatalf("ordering violated: %v", errs)
	}
	if got := strings.Join(evs, " "); got != "+web-0 +web-1 +web-2" {
		t.Fatalf("creation order %q, want +web-0 +web-1 +web-2", got)
	}
	for name, p := range podNames(pods(t, s, "app=web")) {
		if p.Spec.Hostname != name || p.Spec.Subdomain != "web" || p.Labels["statefulset.kubernetes.io/pod-name"] != name {
			t.Errorf("%s: hostname %q subdomain %q pod-name label %q", name, p.Spec.Hostname, p.Spec.Subdomain, p.Labels["statefulset.kubernetes.io/pod-name"])
		}
		want := "data-" + name
		if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].PersistentVolumeClaim == nil || p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != want {
			t.Errorf("%s: volumes %+v, want claim %s", name, p.Spec.Volumes, want)
		}
	}
	waitFor(t, "claims bound to their pods' nodes", 10*time.Second, func() bool {
		cs, ps := claims(t, s), podNames(pods(t, s, "app=web"))
		for i := 0; i < 3; i++ {
			c, p := cs[fmt.Sprintf("data-web-%d", i)], ps[fmt.Sprintf("web-%d", i)]
			if c == nil || c.Status.Phase != api.ClaimBound || c.Status.NodeName != p.Spec.NodeName {
				return false
			}
		}
		return true
	})

	modify(t, s, "StatefulSet", "default", "web", func(o api.Object) { o.(*api.StatefulSet).Spec.Replicas = api.Int32(1) })
	waitFor(t, "scale down to web-0", 15*time.Second, func() bool { return len(pods(t, s, "app=web")) == 1 })
	evs, _ = log.snapshot()
	if got := strings.Join(evs[3:], " "); got != "-web-2 -web-1" {
		t.Fatalf("deletion order %q, want -web-2 -web-1", got)
	}
	if cs := claims(t, s); len(cs) != 3 {
		t.Fatalf("claims after scale-down: %d, want all 3 kept", len(cs))
	}
	waitFor(t, "status shows 1 ready replica", 10*time.Second, func() bool {
		o, _ := s.Store.Get(context.Background(), "StatefulSet", "default", "web")
		st := o.(*api.StatefulSet).Status
		return st.Replicas == 1 && st.ReadyReplicas == 1 && st.CurrentRevision != "" && st.CurrentRevision == st.UpdateRevision
	})
}

func TestStatefulSetParallelCreatesAllAtOnce(t *testing.T) {
	s := startServer(t, server.Config{})
	createAll(t, s, readyNode("pi-1", nil))
	// No agents: nothing ever becomes ready, and Parallel must not care.
	createAll(t, s, statefulSet("cache", 3, api.ParallelPodManagement))
	waitFor(t, "cache-0..2 created without readiness", 10*time.Second, func() bool {
		ps := podNames(pods(t, s, "app=cache"))
		return ps["cache-0"] != nil && ps["cache-1"] != nil && ps["cache-2"] != nil
	})
	modify(t, s, "StatefulSet", "default", "cache", func(o api.Object) { o.(*api.StatefulSet).Spec.Replicas = api.Int32(0) })
	waitFor(t, "all removed at once though none is ready", 10*time.Second, func() bool { return len(pods(t, s, "app=cache")) == 0 })
}

func TestStatefulSetPartitionedRollingUpdate(t *testing.T) {
	s := startServer(t, server.Config{})
	createAll(t, s, readyNode("pi-1", nil))
	agents := startFakeAgents(t, s, 50*time.Millisecond)
	log := watchPods(t, s, agents, "db", false)
	createAll(t, s, statefulSet("db", 3, ""))
	waitFor(t, "db-0..2 ready", 15*time.Second, allReady(t, s, "app=db", 3))
	oldRev := pods(t, s, "app=db")[0].Labels["controller-revision-hash"]

	modify(t, s, "StatefulSet", "default", "db", func(o api.Object) {
		x := o.(*api.StatefulSet)
		x.Spec.UpdateStrategy.RollingUpdate.Partition = api.Int32(1)
		x.Spec.Template.Spec.Containers[0].Image = "hello:v2"
	})
	waitFor(t, "db-2 and db-1 updated and ready", 15*time.Second, func() bool {
		ps := podNames(pods(t, s, "app=db"))
		return len(ps) == 3 && ps["db-1"].Spec.Containers[0].Image == "hello:v2" && ps["db-2"].Spec.Containers[0].Image == "hello:v2" &&
			ps["db-1"].IsReady() && ps["db-2"].IsReady()
	})
	ps := podNames(pods(t, s, "app=db"))
	if ps["db-0"].Spec.Containers[0].Image != "hello:v1" || ps["db-0"].Labels["controller-revision-hash"] != oldRev {
		t.Fatalf("db-0 below the partition was updated: %s", ps["db-0"].Spec.Containers[0].Image)
	}
	evs, _ := log.snapshot()
	if got := strings.Join(evs[3:], " "); got != "-db-2 +db-2 -db-1 +db-1" {
		t.Fatalf("update order %q, want -db-2 +db-2 -db-1 +db-1", got)
	}
	o, _ := s.Store.Get(context.Background(), "StatefulSet", "default", "db")
	if st := o.(*api.StatefulSet).Status; st.CurrentRevision == st.UpdateRevision || st.UpdatedReplicas != 2 || st.CurrentReplicas != 1 {
		// The status is written in the same reconciles; give it a moment.
		waitFor(t, "status: 2 updated, 1 current", 5*time.Second, func() bool {
			o, _ := s.Store.Get(context.Background(), "StatefulSet", "default", "db")
			st := o.(*api.StatefulSet).Status
			return st.CurrentRevision != st.UpdateRevision && st.UpdatedReplicas == 2 && st.CurrentReplicas == 1
		})
	}

	// A replica below the partition that is deleted comes back on the old
	// revision.
	if err := s.Store.Delete(context.Background(), "Pod", "default", "db-0", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "db-0 re-created", 10*time.Second, func() bool {
		p := podNames(pods(t, s, "app=db"))["db-0"]
		return p != nil && p.UID != ps["db-0"].UID
	})
	if p := podNames(pods(t, s, "app=db"))["db-0"]; p == nil || p.Spec.Containers[0].Image != "hello:v1" {
		evs, _ := log.snapshot()
		t.Fatalf("re-created db-0 is %+v, want the old revision hello:v1; events %v", p, evs)
	}

	// Partition 0 finishes the update.
	modify(t, s, "StatefulSet", "default", "db", func(o api.Object) {
		o.(*api.StatefulSet).Spec.UpdateStrategy.RollingUpdate.Partition = api.Int32(0)
	})
	waitFor(t, "all updated and the update revision current", 15*time.Second, func() bool {
		o, _ := s.Store.Get(context.Background(), "StatefulSet", "default", "db")
		st := o.(*api.StatefulSet).Status
		return st.CurrentRevision == st.UpdateRevision && st.UpdatedReplicas == 3 && st.ReadyReplicas == 3
	})
}

func TestStatefulSetReplicaStaysOnItsClaimsNode(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx := context.Background()
	createAll(t, s, readyNode("pi-1", nil), readyNode("pi-2", nil))
	createAll(t, s, statefulSet("kv", 1, ""))
	var first *api.Pod
	waitFor(t, "kv-0 bound and its claim bound to the same node", 10*time.Second, func() bool {
		ps := pods(t, s, "app=kv")
		c := claims(t, s)["data-kv-0"]
		if len(ps) != 1 || ps[0].Spec.NodeName == "" || c == nil || c.Status.NodeName != ps[0].Spec.NodeName {
			return false
		}
		first = ps[0]
		return true
	})
	home := first.Spec.NodeName
	// Make the home node the worse choice: without VolumeNode the
	// replacement would go to the other node.
	modify(t, s, "Node", "", home, func(o api.Object) {
		n := o.(*api.Node)
		n.Spec.Taints = append(n.Spec.Taints, api.Taint{Key: "busy", Effect: api.TaintPreferNoSchedule})
	})
	if err := s.Store.Delete(ctx, "Pod", "default", "kv-0", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "kv-0 back on "+home, 10*time.Second, func() bool {
		ps := pods(t, s, "app=kv")
		return len(ps) == 1 && ps[0].UID != first.UID && ps[0].Spec.NodeName == home
	})

	// With its node closed to it, the replica waits rather than moving
	// away from its data, and says why.
	modify(t, s, "Node", "", home, func(o api.Object) {
		n := o.(*api.Node)
		n.Spec.Taints = []api.Taint{{Key: "maintenance", Effect: api.TaintNoSchedule}}
	})
	if err := s.Store.Delete(ctx, "Pod", "default", "kv-0", ""); err != nil {
		t.Fatal(err)
	}
	redone := 0
	waitFor(t, "kv-0 unschedulable with a volume node conflict", 10*time.Second, func() bool {
		ps := pods(t, s, "app=kv")
		if len(ps) == 1 && ps[0].Spec.NodeName != "" && redone < 5 {
			// Bound before the scheduler's cache saw the new taint (a
			// watch race, as in Kubernetes): take it away again.
			redone++
			_ = s.Store.Delete(ctx, "Pod", "default", "kv-0", "")
			return false
		}
		if len(ps) != 1 || ps[0].Spec.NodeName != "" {
			return false
		}
		c := api.FindCondition(ps[0].Status.Conditions, api.PodScheduled)
		return c != nil && c.Status == api.ConditionFalse &&
			strings.Contains(c.Message, "1 node(s) had volume node affinity conflict") &&
			strings.Contains(c.Message, "1 node(s) had untolerated taint {maintenance: }")
	})
}
