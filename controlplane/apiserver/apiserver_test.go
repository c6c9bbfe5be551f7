package apiserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/api/wire"
	"github.com/flotilla-edge/flotilla/controlplane/server"
)

func startServer(t *testing.T) (*server.Server, *client.Client) {
	t.Helper()
	ctx := context.Background()
	s, err := server.Start(ctx, server.Config{DataDir: t.TempDir(), NATSHost: "127.0.0.1", NATSPort: -1, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	c, err := client.Connect(s.URL(), s.Token(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return s, c
}

func deployment(name string, replicas int32) *api.Deployment {
	return &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: api.DeploymentSpec{
			Replicas: api.Int32(replicas),
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       api.PodSpec{Containers: []api.Container{{Name: "web", Image: "hello:v1"}}},
			},
		},
	}
}

func TestUpdateWithStaleResourceVersionConflicts(t *testing.T) {
	_, c := startServer(t)
	ctx := context.Background()
	// A node without status: no controller writes to it during the test.
	created, err := c.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "pi-1"}})
	if err != nil {
		t.Fatal(err)
	}
	first := *created.(*api.Node)
	n1 := first
	n1.Spec.Unschedulable = true
	updated, err := c.Update(ctx, &n1)
	if err != nil {
		t.Fatalf("first update: %v", err)
	}
	if updated.GetMeta().ResourceVersion == first.ResourceVersion {
		t.Fatal("resourceVersion did not move")
	}
	if g := updated.GetMeta().Generation; g != 2 {
		t.Fatalf("generation = %d after a spec change, want 2", g)
	}
	stale := first
	stale.Labels = map[string]string{"zone": "b"}
	if _, err := c.Update(ctx, &stale); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("stale update: got %v, want ErrConflict", err)
	}
	got, _ := c.Get(ctx, "node", "", "pi-1")
	if n := got.(*api.Node); !n.Spec.Unschedulable || n.Labels["zone"] != "" {
		t.Fatalf("node after a refused update: %+v", n)
	}
	if _, err := c.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "pi-1"}}); !errors.Is(err, api.ErrAlreadyExists) {
		t.Fatalf("second create: got %v, want ErrAlreadyExists", err)
	}
	// A stale conditional delete is refused too.
	if err := deleteAt(c, "node", "pi-1", first.ResourceVersion); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("stale delete: got %v, want ErrConflict", err)
	}
}

func deleteAt(c *client.Client, kind, name, rv string) error {
	b, _ := json.Marshal(wire.ObjectRef{Kind: kind, Name: name, ResourceVersion: rv})
	m, err := c.NC.Request(wire.SubjectDelete, b, 5*time.Second)
	if err != nil {
		return err
	}
	var r wire.Reply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return err
	}
	if r.Error != nil {
		return api.ErrorFromCode(r.Error.Code, r.Error.Message)
	}
	return nil
}

func TestInvalidObjectsNameTheFieldAndStoreNothing(t *testing.T) {
	_, c := startServer(t)
	ctx := context.Background()
	tests := []struct {
		name, manifest, field string
	}{
		{"unknown field", `{"apiVersion":"flotilla.dev/v1","kind":"Deployment","metadata":{"name":"a"},"spec":{"replica":3,"template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"m:v1"}]}}}}`, "spec.replica"},
		{"wrong type", `{"apiVersion":"flotilla.dev/v1","kind":"Deployment","metadata":{"name":"a"},"spec":{"replicas":"three","template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"m:v1"}]}}}}`, "spec.replicas"},
		{"invalid name", `{"kind":"Pod","metadata":{"name":"Bad_Name"},"spec":{"containers":[{"name":"c","image":"m:v1"}]}}`, "metadata.name"},
		{"negative replicas", `{"kind":"Deployment","metadata":{"name":"a"},"spec":{"replicas":-1,"template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"m:v1"}]}}}}`, "spec.replicas"},
		{"selector misses template", `{"kind":"Deployment","metadata":{"name":"a"},"spec":{"selector":{"matchLabels":{"app":"b"}},"template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"m:v1"}]}}}}`, "spec.selector"},
		{"bad module reference", `{"kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"no tag"}]}}`, "spec.containers[0].image"},
		{"port out of range", `{"kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"m:v1","ports":[{"containerPort":70000}]}]}}`, "spec.containers[0].ports[0].containerPort"},
		{"unknown kind", `{"kind":"Gizmo","metadata":{"name":"a"}}`, "kind"},
		{"missing namespace", `{"kind":"Pod","metadata":{"name":"a","namespace":"nope"},"spec":{"containers":[{"name":"c","image":"m:v1"}]}}`, "metadata.namespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, subj := range []string{wire.SubjectCreate, wire.SubjectApply} {
				b, _ := json.Marshal(wire.WriteRequest{Object: json.RawMessage(tc.manifest)})
				m, err := c.NC.Request(subj, b, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				var r wire.Reply
				if err := json.Unmarshal(m.Data, &r); err != nil {
					t.Fatal(err)
				}
				if r.Error == nil || r.Error.Code != "Invalid" {
					t.Fatalf("%s: got %+v, want an Invalid error", subj, r)
				}
				if !strings.Contains(r.Error.Message, tc.field) {
					t.Fatalf("%s: error %q does not name field %s", subj, r.Error.Message, tc.field)
				}
			}
			for _, kind := range []string{"Pod", "Deployment"} {
				objs, err := c.List(ctx, kind, "", "")
				if err != nil {
					t.Fatal(err)
				}
				if len(objs) != 0 {
					t.Fatalf("%d %s stored after a refused write", len(objs), kind)
				}
			}
		})
	}
}

func TestWatchDeliversCreateUpdateDeleteInOrder(t *testing.T) {
	_, c := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events, err := c.Watch(ctx, "deployments", "default", "app=web")
	if err != nil {
		t.Fatal(err)
	}
	var got []string // what the watch said, folded (below)
	next := func() client.Event {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("watch closed after %v", got)
			}
			return ev
		case <-ctx.Done():
			t.Fatalf("timed out waiting for a watch event after %v", got)
		}
		return client.Event{}
	}
	if ev := next(); ev.Type != "SYNCED" {
		t.Fatalf("first event %s, want SYNCED", ev.Type)
	}
	if _, err := c.Create(ctx, deployment("other", 1)); err != nil { // filtered out by the selector
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, deployment("web", 1)); err != nil {
		t.Fatal(err)
	}
	for i := int32(2); i <= 4; i++ {
		if _, err := c.Modify(ctx, "deploy", "default", "web", func(o api.Object) error {
			o.(*api.Deployment).Spec.Replicas = api.Int32(i)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Delete(ctx, "deploy", "default", "web"); err != nil {
		t.Fatal(err)
	}
	want := []string{"ADDED:1", "MODIFIED:2", "MODIFIED:3", "MODIFIED:4", "DELETED:4"}
	// Controllers write status in between; those MODIFIED events repeat the
	// last replica count and are folded.
	for len(got) < len(want) {
		ev := next()
		d := ev.Object.(*api.Deployment)
		if d.Name != "web" {
			t.Fatalf("event for %q passed the selector", d.Name)
		}
		e := fmt.Sprintf("%s:%d", ev.Type, *d.Spec.Replicas)
		if len(got) > 0 && ev.Type == "MODIFIED" && strings.HasSuffix(got[len(got)-1], fmt.Sprintf(":%d", *d.Spec.Replicas)) {
			continue
		}
		got = append(got, e)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestListOfAThousandObjectsPages(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("ns-%04d", i), Labels: map[string]string{"parity": []string{"even", "odd"}[i%2]}}}
		if _, err := s.Store.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	req := wire.ListRequest{Kind: "namespaces", Limit: 300}
	pages := 0
	for {
		items, next, err := c.ListPage(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(items) > 300 {
			t.Fatalf("page of %d items, limit 300", len(items))
		}
		for _, o := range items {
			if seen[o.GetMeta().Name] {
				t.Fatalf("%s listed twice", o.GetMeta().Name)
			}
			seen[o.GetMeta().Name] = true
		}
		if next == "" {
			break
		}
		req.Continue = next
	}
	if len(seen) != 1001 || pages != 4 { // 1,000 plus "default"
		t.Fatalf("listed %d objects in %d pages, want 1001 in 4", len(seen), pages)
	}
	odd, err := c.List(ctx, "ns", "", "parity=odd")
	if err != nil {
		t.Fatal(err)
	}
	if len(odd) != 500 {
		t.Fatalf("selector parity=odd listed %d, want 500", len(odd))
	}
}
