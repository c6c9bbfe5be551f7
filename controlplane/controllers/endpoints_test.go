package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/server"
)

// servedPod is a pod as an agent reports it: bound, Running, its "http"
// port 8080 served at hostIP:hostPort.
func servedPod(name, node, hostIP string, hostPort int32, ready bool) *api.Pod {
	status := api.ConditionFalse
	if ready {
		status = api.ConditionTrue
	}
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: api.PodSpec{NodeName: node, Containers: []api.Container{{Name: "web", Image: "hello:v1",
			Ports: []api.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: api.PodStatus{
			Phase: api.PodRunning, HostIP: hostIP,
			Conditions: []api.Condition{{Type: api.PodReady, Status: status}},
			ContainerStatuses: []api.ContainerStatus{{Name: "web", Image: "hello:v1", Ready: ready,
				Ports: []api.PortStatus{{Name: "http", ContainerPort: 8080, HostIP: hostIP, HostPort: hostPort, Protocol: "TCP"}}}},
		},
	}
}

// endpointsOf renders a slice as "pod=addr:port(ready)" strings.
func endpointsOf(s *server.Server, name string) string {
	o, err := s.Store.Get(context.Background(), "EndpointSlice", "default", name)
	if err != nil {
		return err.Error()
	}
	out := ""
	for _, e := range o.(*api.EndpointSlice).Endpoints {
		for _, p := range e.Ports {
			out += fmt.Sprintf("%s=%s:%d/%s(%v) ", e.TargetRef.Name, e.Addresses[0], p.Port, p.Name, e.IsReady())
		}
	}
	return out
}

func TestEndpointsFollowPods(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx := context.Background()
	for _, n := range []string{"pi-1", "pi-2"} {
		if _, err := s.Store.Create(ctx, readyNode(n, nil)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*api.Pod{
		servedPod("web-a", "pi-1", "10.0.0.1", 40001, true),
		servedPod("web-b", "pi-2", "10.0.0.2", 40001, true),
		servedPod("web-c", "pi-1", "10.0.0.1", 40002, false),
	} {
		if _, err := s.Store.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	other := servedPod("db-a", "pi-1", "10.0.0.1", 40003, true)
	other.Labels = map[string]string{"app": "db"}
	if _, err := s.Store.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.Create(ctx, &api.Service{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: api.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []api.ServicePort{{Name: "web", Port: 80, TargetPort: api.FromString("http")}}}}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name   string
		change func() error
		want   string
	}{
		{"initial", func() error { return nil },
			"web-a=10.0.0.1:40001/web(true) web-b=10.0.0.2:40001/web(true) web-c=10.0.0.1:40002/web(false) "},
		{"pod becomes ready", func() error {
			o, err := s.Store.Get(ctx, "Pod", "default", "web-c")
			if err != nil {
				return err
			}
			p := o.(*api.Pod)
			api.SetCondition(&p.Status.Conditions, api.Condition{Type: api.PodReady, Status: api.ConditionTrue})
			_, err = s.Store.Update(ctx, p)
			return err
		}, "web-a=10.0.0.1:40001/web(true) web-b=10.0.0.2:40001/web(true) web-c=10.0.0.1:40002/web(true) "},
		{"pod deleted", func() error { return s.Store.Delete(ctx, "Pod", "default", "web-a", "") },
			"web-b=10.0.0.2:40001/web(true) web-c=10.0.0.1:40002/web(true) "},
		{"pod relabelled away", func() error {
			o, err := s.Store.Get(ctx, "Pod", "default", "web-b")
			if err != nil {
				return err
			}
			p := o.(*api.Pod)
			p.Labels = map[string]string{"app": "other"}
			_, err = s.Store.Update(ctx, p)
			return err
		}, "web-c=10.0.0.1:40002/web(true) "},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		start := time.Now()
		// Resyncs run every 30 s; following a change this fast shows it is
		// driven by the pod cache's events.
		waitFor(t, st.name+": endpoints "+st.want, 5*time.Second, func() bool { return endpointsOf(s, "web") == st.want })
		t.Logf("%s: endpoints followed in %v", st.name, time.Since(start).Round(time.Millisecond))
	}

	// Deleting the service takes its slice with it (owner reference).
	if err := s.Store.Delete(ctx, "Service", "default", "web", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slice collected", 5*time.Second, func() bool { return endpointsOf(s, "web") == `endpointslice "web": not found` })
}

func TestEndpointsOfServiceWithoutSelectorAreUsers(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx := context.Background()
	if _, err := s.Store.Create(ctx, &api.Service{ObjectMeta: api.ObjectMeta{Name: "ext", Namespace: "default"},
		Spec: api.ServiceSpec{Ports: []api.ServicePort{{Port: 5432}}}}); err != nil {
		t.Fatal(err)
	}
	slice := &api.EndpointSlice{ObjectMeta: api.ObjectMeta{Name: "ext", Namespace: "default"},
		Endpoints: []api.Endpoint{{Addresses: []string{"192.0.2.7"}, Ports: []api.EndpointPort{{Port: 5432}}}}}
	if _, err := s.Store.Create(ctx, slice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.Create(ctx, servedPod("web-a", "pi-1", "10.0.0.1", 40001, true)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // give a wrong controller time to act
	o, err := s.Store.Get(ctx, "EndpointSlice", "default", "ext")
	if err != nil {
		t.Fatal(err)
	}
	if eps := o.(*api.EndpointSlice).Endpoints; len(eps) != 1 || eps[0].Addresses[0] != "192.0.2.7" || eps[0].TargetRef != nil {
		t.Fatalf("the user's slice was changed: %+v", eps)
	}
}
