package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/natsembed"
)

// TestWatchSeesARecreatedObjectAsTwo: a put of an object with another UID
// under a key the watch holds — what a watch sees of a delete and a
// re-create when its consumer restarted past the delete marker, which a
// history-1 bucket drops at the next put — comes out as DELETED of the
// old object and ADDED of the new one, never as a MODIFIED that would
// splice two objects together.
func TestWatchSeesARecreatedObjectAsTwo(t *testing.T) {
	ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.Watch(ctx, "Pod", "default")
	if err != nil {
		t.Fatal(err)
	}
	next := func() Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-ctx.Done():
			t.Fatal("no watch event")
		}
		return Event{}
	}
	if ev := next(); ev.Type != Synced {
		t.Fatalf("first event %s, want SYNCED", ev.Type)
	}
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "db-2", Namespace: "default"},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "hello:v1"}}}}
	created, err := s.Create(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	oldUID := created.GetMeta().UID
	// The re-created object, written straight over the old one.
	again := created.(*api.Pod)
	again.UID = "another-uid"
	again.Spec.Containers[0].Image = "hello:v2"
	b, err := json.Marshal(again)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.kv.Put(ctx, Key("Pod", "default", "db-2"), b); err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		typ EventType
		uid string
	}{{Added, oldUID}, {Deleted, oldUID}, {Added, "another-uid"}} {
		ev := next()
		if ev.Type != want.typ || ev.Object.GetMeta().UID != want.uid {
			t.Fatalf("event %d: %s of uid %s, want %s of %s", i, ev.Type, ev.Object.GetMeta().UID, want.typ, want.uid)
		}
	}
}
