package controllers_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/server"
	"github.com/flotilla-edge/flotilla/controlplane/store"
)

// modify reads an object, changes it and writes it back, retrying on
// conflicts with the controllers' own writes.
func modify(t *testing.T, s *server.Server, kind, ns, name string, change func(api.Object)) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, err := s.Store.Get(ctx, kind, ns, name)
		if err != nil {
			t.Fatalf("get %s %s: %v", kind, name, err)
		}
		change(o)
		if _, err = s.Store.Update(ctx, o); err == nil {
			return
		}
		if !errors.Is(err, api.ErrConflict) || time.Now().After(deadline) {
			t.Fatalf("update %s %s: %v", kind, name, err)
		}
	}
}

// markReady plays the agent: the pod is Running and Ready.
func markReady(s *server.Server, p *api.Pod) error {
	ctx := context.Background()
	for {
		o, err := s.Store.Get(ctx, "Pod", p.Namespace, p.Name)
		if err != nil {
			return err
		}
		cur := o.(*api.Pod)
		if cur.UID != p.UID {
			return nil // replaced meanwhile
		}
		cur.Status.Phase = api.PodRunning
		api.SetCondition(&cur.Status.Conditions, api.Condition{Type: api.PodReady, Status: api.ConditionTrue})
		if _, err = s.Store.Update(ctx, cur); !errors.Is(err, api.ErrConflict) {
			return err
		}
	}
}

// fakeAgents marks every bound pod Running and Ready after a delay, as
// agents on fake nodes would. It records a pod as marked before writing,
// so a watcher never sees a pod created on account of a readiness the
// record does not hold yet.
type fakeAgents struct {
	mu     sync.Mutex
	marked map[string]bool // pod name -> marked ready (latest incarnation)
}

func (f *fakeAgents) isMarked(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.marked[name]
}

func startFakeAgents(t *testing.T, s *server.Server, delay time.Duration) *fakeAgents {
	t.Helper()
	f := &fakeAgents{marked: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	evs, err := s.Store.Watch(ctx, "Pod", "")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range evs {
			if ev.Type == store.Deleted {
				f.mu.Lock()
				delete(f.marked, ev.Object.GetMeta().Name)
				f.mu.Unlock()
				continue
			}
			if ev.Object == nil {
				continue
			}
			p := ev.Object.(*api.Pod)
			if p.Spec.NodeName == "" || p.IsReady() {
				continue
			}
			go func() {
				time.Sleep(delay)
				f.mu.Lock()
				f.marked[p.Name] = true
				f.mu.Unlock()
				_ = markReady(s, p)
			}()
		}
	}()
	return f
}

func createAll(t *testing.T, s *server.Server, objs ...api.Object) {
	t.Helper()
	for _, o := range objs {
		if _, err := s.Store.Create(context.Background(), o); err != nil {
			t.Fatalf("create %s: %v", o.GetMeta().Name, err)
		}
	}
}

func podNames(ps []*api.Pod) map[string]*api.Pod {
	out := map[string]*api.Pod{}
	for _, p := range ps {
		out[p.Name] = p
	}
	return out
}
