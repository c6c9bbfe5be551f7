package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

func helloTemplate(app string) api.PodTemplateSpec {
	return api.PodTemplateSpec{
		ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: api.PodSpec{Containers: []api.Container{{
			Name: "hello", Image: "hello:v1",
			Ports: []api.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
}

// TestStatefulSetAndDaemonSetOnRealAgents runs a StatefulSet of two with
// a claim each and a DaemonSet over two real agents.
func TestStatefulSetAndDaemonSetOnRealAgents(t *testing.T) {
	f := testfleet.Start(t, testfleet.AgentSpec{Name: "pi-1"}, testfleet.AgentSpec{Name: "pi-2"})
	ctx := context.Background()
	f.Push(t, "examples/hello", "hello:v1")

	tpl := helloTemplate("web")
	tpl.Spec.Containers[0].VolumeMounts = []api.VolumeMount{{Name: "data", MountPath: "/data"}}
	sts := &api.StatefulSet{
		ObjectMeta: api.ObjectMeta{Name: "web"},
		Spec: api.StatefulSetSpec{
			Replicas: api.Int32(2), ServiceName: "web", Template: tpl,
			VolumeClaimTemplates: []api.PersistentVolumeClaim{{
				ObjectMeta: api.ObjectMeta{Name: "data"},
				Spec:       api.PersistentVolumeClaimSpec{Resources: api.ResourceRequirements{Requests: api.ResourceList{"storage": api.MustParseQuantity("16Mi")}}},
			}},
		},
	}
	if _, err := f.Client.Create(ctx, sts); err != nil {
		t.Fatal(err)
	}
	ds := &api.DaemonSet{ObjectMeta: api.ObjectMeta{Name: "probe"}, Spec: api.DaemonSetSpec{Template: helloTemplate("probe")}}
	if _, err := f.Client.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}

	testfleet.WaitFor(t, "web-0 and web-1 running and ready", 60*time.Second, allRunning(t, f, "app=web", 2))
	names := map[string]bool{}
	for _, p := range listPods(t, f, "app=web") {
		names[p.Name] = true
		if p.Spec.Hostname != p.Name {
			t.Errorf("%s has hostname %q", p.Name, p.Spec.Hostname)
		}
		if body := get(t, endpoint(p)); body == "" {
			t.Errorf("%s answered an empty body", p.Name)
		}
	}
	if !names["web-0"] || !names["web-1"] {
		t.Fatalf("stateful pods %v, want web-0 and web-1", names)
	}
	testfleet.WaitFor(t, "claims bound to their pods' nodes", 10*time.Second, func() bool {
		objs, err := f.Client.List(ctx, "persistentvolumeclaims", "default", "")
		if err != nil || len(objs) != 2 {
			return false
		}
		for _, o := range objs {
			if c := o.(*api.PersistentVolumeClaim); c.Status.Phase != api.ClaimBound || c.Status.NodeName == "" {
				return false
			}
		}
		return true
	})

	testfleet.WaitFor(t, "one running daemon per node", 60*time.Second, allRunning(t, f, "app=probe", 2))
	perNode := map[string]int{}
	for _, p := range listPods(t, f, "app=probe") {
		perNode[p.Spec.NodeName]++
		if !strings.HasPrefix(p.Name, "probe-") {
			t.Errorf("daemon pod named %s", p.Name)
		}
		get(t, endpoint(p))
	}
	if perNode["pi-1"] != 1 || perNode["pi-2"] != 1 {
		t.Fatalf("daemons per node %v, want one on pi-1 and one on pi-2", perNode)
	}
}
