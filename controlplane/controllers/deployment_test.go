package controllers_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/server"
	"github.com/flotilla-edge/flotilla/controlplane/store"
)

// fakeKubelet stands in for agents: it marks every bound pod Running and
// Ready through the store, except pods whose image is broken, which it
// leaves Pending in ImagePullBackOff. It also records the largest number of
// pods it ever saw at once, per image set.
type fakeKubelet struct {
	mu      sync.Mutex
	maxPods int
	pods    map[string]string // name -> image
	// overlap is set when pods of two images ran at once.
	overlap bool
}

func startFakeKubelet(t *testing.T, s *server.Server, broken string) *fakeKubelet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	events, err := s.Store.Watch(ctx, "Pod", "")
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKubelet{pods: map[string]string{}}
	go func() {
		for ev := range events {
			p, ok := ev.Object.(*api.Pod)
			if !ok {
				continue
			}
			k.mu.Lock()
			if ev.Type == store.Deleted {
				delete(k.pods, p.Name)
			} else {
				k.pods[p.Name] = p.Spec.Containers[0].Image
			}
			k.maxPods = max(k.maxPods, len(k.pods))
			images := map[string]bool{}
			for _, img := range k.pods {
				images[img] = true
			}
			k.overlap = k.overlap || len(images) > 1
			k.mu.Unlock()
			if ev.Type == store.Deleted || p.Spec.NodeName == "" || p.IsReady() || p.Status.Phase == api.PodPending && len(p.Status.ContainerStatuses) > 0 {
				continue
			}
			go markPod(ctx, s, p.Name, p.Spec.Containers[0].Image != broken)
		}
	}()
	return k
}

func markPod(ctx context.Context, s *server.Server, name string, ready bool) {
	for ctx.Err() == nil {
		o, err := s.Store.Get(ctx, "Pod", "default", name)
		if err != nil {
			return
		}
		p := o.(*api.Pod)
		if ready {
			p.Status.Phase = api.PodRunning
			api.SetCondition(&p.Status.Conditions, api.Condition{Type: api.PodReady, Status: api.ConditionTrue})
		} else {
			p.Status.ContainerStatuses = []api.ContainerStatus{{Name: p.Spec.Containers[0].Name, Image: p.Spec.Containers[0].Image,
				State: api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}
		}
		if _, err := s.Store.Update(ctx, p); err == nil {
			return
		}
	}
}

func getDeployment(t *testing.T, s *server.Server, name string) *api.Deployment {
	t.Helper()
	o, err := s.Store.Get(context.Background(), "Deployment", "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.Deployment)
}

func modifyDeployment(t *testing.T, s *server.Server, name string, fn func(*api.Deployment)) {
	t.Helper()
	for {
		d := getDeployment(t, s, name)
		fn(d)
		if _, err := s.Store.Update(context.Background(), d); err == nil {
			return
		}
	}
}

func complete(t *testing.T, s *server.Server, name, image string) func() bool {
	return func() bool {
		d := getDeployment(t, s, name)
		n := *d.Spec.Replicas
		if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != n || d.Status.Replicas != n || d.Status.AvailableReplicas != n {
			return false
		}
		ps := pods(t, s, "app="+name)
		for _, p := range ps {
			if p.Spec.Containers[0].Image != image {
				return false
			}
		}
		return len(ps) == int(n)
	}
}

func TestRecreateStopsEveryOldPodBeforeStartingNewOnes(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx := context.Background()
	if _, err := s.Store.Create(ctx, readyNode("pi-1", nil)); err != nil {
		t.Fatal(err)
	}
	k := startFakeKubelet(t, s, "")
	d := deployment("web", 3, nil)
	d.Spec.Strategy.Type = api.RecreateStrategy
	if _, err := s.Store.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v1 complete", 10*time.Second, complete(t, s, "web", "hello:v1"))
	modifyDeployment(t, s, "web", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "hello:v2" })
	waitFor(t, "v2 complete", 10*time.Second, complete(t, s, "web", "hello:v2"))
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.overlap || k.maxPods > 3 {
		t.Fatalf("Recreate ran old and new pods together (overlap=%t, at most %d pods)", k.overlap, k.maxPods)
	}
}

func TestRollingUpdateRecordsRevisionsAndReusesOldReplicaSets(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx := context.Background()
	if _, err := s.Store.Create(ctx, readyNode("pi-1", nil)); err != nil {
		t.Fatal(err)
	}
	k := startFakeKubelet(t, s, "")
	if _, err := s.Store.Create(ctx, deployment("web", 4, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v1 complete", 10*time.Second, complete(t, s, "web", "hello:v1"))
	modifyDeployment(t, s, "web", func(d *api.Deployment) {
		d.Annotations = map[string]string{api.ChangeCauseAnnotation: "to v2"}
		d.Spec.Template.Spec.Containers[0].Image = "hello:v2"
	})
	waitFor(t, "v2 complete", 10*time.Second, complete(t, s, "web", "hello:v2"))
	// Back to the v1 template: its ReplicaSet is reused as revision 3.
	modifyDeployment(t, s, "web", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "hello:v1" })
	waitFor(t, "v1 complete again", 10*time.Second, complete(t, s, "web", "hello:v1"))

	revs := map[string]string{}
	waitFor(t, "revisions 2 (v2) and 3 (v1)", 10*time.Second, func() bool {
		rss, _, _ := s.Store.List(ctx, "ReplicaSet", storeList(nil))
		clear(revs)
		for _, o := range rss {
			rs := o.(*api.ReplicaSet)
			revs[rs.Spec.Template.Spec.Containers[0].Image] = rs.Annotations["deployment.flotilla.dev/revision"] + " " + rs.Annotations[api.ChangeCauseAnnotation]
		}
		return len(rss) == 2 && revs["hello:v2"] == "2 to v2" && strings.HasPrefix(revs["hello:v1"], "3")
	})
	if k.maxPods > 4+1 {
		t.Fatalf("%d pods at once, more than 4 + maxSurge 1", k.maxPods)
	}
	d := getDeployment(t, s, "web")
	c := api.FindCondition(d.Status.Conditions, "Progressing")
	if c == nil || c.Status != api.ConditionTrue || c.Reason != "NewReplicaSetAvailable" {
		t.Fatalf("Progressing = %+v, want True/NewReplicaSetAvailable", c)
	}
	if c := api.FindCondition(d.Status.Conditions, "Available"); c == nil || c.Status != api.ConditionTrue {
		t.Fatalf("Available = %+v, want True", c)
	}
}

func TestStalledRolloutExceedsItsProgressDeadline(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx := context.Background()
	if _, err := s.Store.Create(ctx, readyNode("pi-1", nil)); err != nil {
		t.Fatal(err)
	}
	startFakeKubelet(t, s, "hello:v9")
	d := deployment("web", 3, nil)
	d.Spec.ProgressDeadlineSeconds = api.Int32(2)
	if _, err := s.Store.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v1 complete", 10*time.Second, complete(t, s, "web", "hello:v1"))
	modifyDeployment(t, s, "web", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "hello:v9" })
	waitFor(t, "Progressing=False/ProgressDeadlineExceeded", 15*time.Second, func() bool {
		c := api.FindCondition(getDeployment(t, s, "web").Status.Conditions, "Progressing")
		return c != nil && c.Status == api.ConditionFalse && c.Reason == "ProgressDeadlineExceeded"
	})
	// The stalled rollout keeps every old pod: 3 v1 plus 1 surge v9.
	var v1 int
	for _, p := range pods(t, s, "app=web") {
		if p.Spec.Containers[0].Image == "hello:v1" && p.IsReady() {
			v1++
		}
	}
	if v1 != 3 {
		t.Fatalf("%d ready v1 pods during the stalled rollout, want 3", v1)
	}
}

func TestPausedDeploymentScalesButDoesNotRollOut(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx := context.Background()
	if _, err := s.Store.Create(ctx, readyNode("pi-1", nil)); err != nil {
		t.Fatal(err)
	}
	startFakeKubelet(t, s, "")
	if _, err := s.Store.Create(ctx, deployment("web", 2, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v1 complete", 10*time.Second, complete(t, s, "web", "hello:v1"))
	modifyDeployment(t, s, "web", func(d *api.Deployment) {
		d.Spec.Paused = true
		d.Spec.Template.Spec.Containers[0].Image = "hello:v2"
		d.Spec.Replicas = api.Int32(3)
	})
	waitFor(t, "3 ready v1 pods while paused", 10*time.Second, func() bool {
		ps := pods(t, s, "app=web")
		for _, p := range ps {
			if p.Spec.Containers[0].Image != "hello:v1" || !p.IsReady() {
				return false
			}
		}
		return len(ps) == 3
	})
	waitFor(t, "Progressing=Unknown/DeploymentPaused", 10*time.Second, func() bool {
		c := api.FindCondition(getDeployment(t, s, "web").Status.Conditions, "Progressing")
		return c != nil && c.Reason == "DeploymentPaused"
	})
	if rss, _, _ := s.Store.List(ctx, "ReplicaSet", storeList(nil)); len(rss) != 1 {
		t.Fatalf("%d replicasets while paused, want 1", len(rss))
	}
	modifyDeployment(t, s, "web", func(d *api.Deployment) { d.Spec.Paused = false })
	waitFor(t, "v2 complete after resume", 10*time.Second, complete(t, s, "web", "hello:v2"))
}
