package controllers_test

import (
	"context"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/server"
)

func TestSilentNodeIsTaintedAndItsPodsMoveAfterTheirToleration(t *testing.T) {
	s := startServer(t, server.Config{NodeMonitorGracePeriod: 2 * time.Second})
	ctx := context.Background()
	silent := readyNode("pi-1", map[string]string{"zone": "a"})
	if _, err := s.Store.Create(ctx, silent); err != nil {
		t.Fatal(err)
	}
	d := deployment("web", 1, nil)
	d.Spec.Template.Spec.Tolerations = []api.Toleration{{Key: api.TaintNodeUnreachable, Operator: "Exists", Effect: api.TaintNoExecute, TolerationSeconds: api.Int64(1)}}
	if _, err := s.Store.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod bound to pi-1", 10*time.Second, func() bool {
		ps := pods(t, s, "app=web")
		return len(ps) == 1 && ps[0].Spec.NodeName == "pi-1"
	})
	first := pods(t, s, "app=web")[0].Name
	// A second node keeps heartbeating; pi-1 never does again.
	if _, err := s.Store.Create(ctx, readyNode("pi-2", nil)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			o, err := s.Store.Get(ctx, "Node", "", "pi-2")
			if err != nil {
				continue
			}
			n := o.(*api.Node)
			api.SetCondition(&n.Status.Conditions, api.Condition{Type: api.NodeReady, Status: api.ConditionTrue, LastHeartbeatTime: api.Now()})
			_, _ = s.Store.Update(ctx, n)
		}
	}()
	waitFor(t, "pi-1 Unknown with unreachable taints", 15*time.Second, func() bool {
		o, err := s.Store.Get(ctx, "Node", "", "pi-1")
		if err != nil {
			return false
		}
		n := o.(*api.Node)
		effects := map[string]bool{}
		for _, tt := range n.Spec.Taints {
			if tt.Key == api.TaintNodeUnreachable {
				effects[tt.Effect] = true
			}
		}
		c := api.FindCondition(n.Status.Conditions, api.NodeReady)
		return c != nil && c.Status == api.ConditionUnknown && effects[api.TaintNoSchedule] && effects[api.TaintNoExecute]
	})
	waitFor(t, "the pod replaced on pi-2", 15*time.Second, func() bool {
		ps := pods(t, s, "app=web")
		return len(ps) == 1 && ps[0].Name != first && ps[0].Spec.NodeName == "pi-2"
	})
	// The node coming back loses its taints.
	o, _ := s.Store.Get(ctx, "Node", "", "pi-1")
	n := o.(*api.Node)
	api.SetCondition(&n.Status.Conditions, api.Condition{Type: api.NodeReady, Status: api.ConditionTrue, LastHeartbeatTime: api.Now()})
	if _, err := s.Store.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pi-1 untainted once Ready", 10*time.Second, func() bool {
		o, _ := s.Store.Get(ctx, "Node", "", "pi-1")
		for _, tt := range o.(*api.Node).Spec.Taints {
			if tt.Key == api.TaintNodeUnreachable {
				return false
			}
		}
		return true
	})
}

func TestPodsGetTheDefaultUnreachableToleration(t *testing.T) {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "p"}, Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "m:v1"}}}}
	api.Defaults(p)
	api.Defaults(p) // defaulting twice adds nothing twice
	if n := len(p.Spec.Tolerations); n != 1 {
		t.Fatalf("%d tolerations, want 1", n)
	}
	if s := p.Spec.Tolerations[0].TolerationSeconds; s == nil || *s != api.DefaultUnreachableToleration {
		t.Fatalf("tolerationSeconds %v, want %d", s, api.DefaultUnreachableToleration)
	}
}
