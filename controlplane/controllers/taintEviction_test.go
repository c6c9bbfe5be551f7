package controllers_test

import (
	"context"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/server"
)

func boundPod(name, node string, tols ...api.Toleration) *api.Pod {
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Labels: map[string]string{"test": "evict"}},
		Spec:       api.PodSpec{NodeName: node, Tolerations: tols, Containers: []api.Container{{Name: "c", Image: "hello:v1"}}},
	}
}

func TestNoExecuteTaintEvictsAfterTolerationSeconds(t *testing.T) {
	s := startServer(t, server.Config{})
	createAll(t, s, readyNode("pi-1", nil))
	noExec := api.Taint{Key: "power", Value: "low", Effect: api.TaintNoExecute}
	createAll(t, s,
		boundPod("intolerant", "pi-1"),
		boundPod("tolerates-briefly", "pi-1", api.Toleration{Key: "power", Operator: "Exists", Effect: api.TaintNoExecute, TolerationSeconds: api.Int64(2)}),
		boundPod("tolerates-forever", "pi-1", api.Toleration{Key: "power", Value: "low"}),
		boundPod("other-taint-only", "pi-1", api.Toleration{Key: "dedicated", Operator: "Exists"}),
	)
	has := func(name string) bool { return podNames(pods(t, s, "test=evict"))[name] != nil }
	tainted := time.Now()
	modify(t, s, "Node", "", "pi-1", func(o api.Object) {
		o.(*api.Node).Spec.Taints = []api.Taint{noExec}
	})
	waitFor(t, "pods without a matching toleration evicted", 5*time.Second, func() bool {
		return !has("intolerant") && !has("other-taint-only")
	})
	if time.Since(tainted) < 2*time.Second && !has("tolerates-briefly") {
		t.Fatal("the pod tolerating for 2s went at once")
	}
	waitFor(t, "the 2s toleration to run out", 10*time.Second, func() bool { return !has("tolerates-briefly") })
	if time.Since(tainted) < 2*time.Second {
		t.Fatal("the pod tolerating for 2s went early")
	}
	time.Sleep(500 * time.Millisecond)
	if !has("tolerates-forever") {
		t.Fatal("the pod tolerating the taint without a limit was evicted")
	}
	evs, _, _ := s.Store.List(context.Background(), "Event", storeList(nil))
	found := false
	for _, o := range evs {
		if e := o.(*api.Event); e.Reason == "TaintManagerEviction" && e.InvolvedObject.Name == "intolerant" {
			found = true
		}
	}
	if !found {
		waitFor(t, "a TaintManagerEviction event", 5*time.Second, func() bool {
			evs, _, _ := s.Store.List(context.Background(), "Event", storeList(nil))
			for _, o := range evs {
				if e := o.(*api.Event); e.Reason == "TaintManagerEviction" && e.InvolvedObject.Name == "intolerant" {
					return true
				}
			}
			return false
		})
	}
}
