package apiserver

import (
	"strings"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/store"
)

// TestSelectorFilter: a selector watch sees objects enter and leave the
// selection as ADDED and DELETED, like a Kubernetes watch.
func TestSelectorFilter(t *testing.T) {
	pod := func(name, app string) api.Object {
		return &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": app}}}
	}
	sel, err := api.ParseSelector("app=web")
	if err != nil {
		t.Fatal(err)
	}
	f := selectorFilter{sel: sel, in: map[string]bool{}}
	steps := []struct {
		in   store.Event
		want string // "" = not passed on
	}{
		{store.Event{Type: store.Added, Object: pod("a", "web")}, "ADDED"},
		{store.Event{Type: store.Added, Object: pod("b", "db")}, ""},
		{store.Event{Type: store.Synced}, "SYNCED"},
		{store.Event{Type: store.Modified, Object: pod("a", "web")}, "MODIFIED"},
		{store.Event{Type: store.Modified, Object: pod("a", "canary")}, "DELETED"}, // relabelled out
		{store.Event{Type: store.Modified, Object: pod("a", "canary")}, ""},
		{store.Event{Type: store.Modified, Object: pod("b", "web")}, "ADDED"}, // relabelled in
		{store.Event{Type: store.Deleted, Object: pod("a", "canary")}, ""},
		{store.Event{Type: store.Deleted, Object: pod("b", "web")}, "DELETED"},
		{store.Event{Type: store.Added, Object: pod("b", "web")}, "ADDED"}, // recreated
	}
	var got, want []string
	for _, st := range steps {
		typ, ok := f.pass(st.in)
		g := ""
		if ok {
			g = string(typ)
		}
		got, want = append(got, g), append(want, st.want)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
}
