package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

// configuredDeployment runs filesrv reading ConfigMap cm: key as env
// LEVEL and every key as a file under /config.
func configuredDeployment(name, cm, key string) *api.Deployment {
	d := webDeployment(name, 2, nil)
	spec := &d.Spec.Template.Spec
	spec.Containers[0].Image = "filesrv:v1"
	spec.Containers[0].Env = []api.EnvVar{{Name: "LEVEL", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.KeySelector{Name: cm, Key: key}}}}
	spec.Containers[0].VolumeMounts = []api.VolumeMount{{Name: "config", MountPath: "/config"}}
	spec.Volumes = []api.Volume{{Name: "config", ConfigMap: &api.ConfigMapVolumeSource{Name: cm}}}
	return d
}

func fetch(addr, path string) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestConfigMapReachesPodsThroughEnvAndVolumeAndUpdates(t *testing.T) {
	f := testfleet.Start(t, testfleet.AgentSpec{Name: "pi-1"}, testfleet.AgentSpec{Name: "pi-2"})
	ctx := context.Background()
	f.Push(t, "edgeagent/testdata/filesrv", "filesrv:v1")
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "app-config"}, Data: map[string]string{"LOG_LEVEL": "debug"}}
	if _, err := f.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}

	// A key the existing ConfigMap lacks is refused at admission.
	_, err := f.Client.Create(ctx, configuredDeployment("broken", "app-config", "LEVEL_TYPO"))
	want := `spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.key: key "LEVEL_TYPO" not found in ConfigMap "app-config"`
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("create with a missing key: err = %v, want %q", err, want)
	}
	if _, err := f.Client.Get(ctx, "Deployment", "default", "broken"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("refused deployment was stored: %v", err)
	}

	if _, err := f.Client.Create(ctx, configuredDeployment("web", "app-config", "LOG_LEVEL")); err != nil {
		t.Fatal(err)
	}
	testfleet.WaitFor(t, "2 pods Running and Ready", 90*time.Second, allRunning(t, f, "app=web", 2))
	pods := listPods(t, f, "app=web")
	for _, p := range pods {
		addr := endpoint(p)
		if got := fetch(addr, "/env?name=LEVEL"); got != "debug" {
			t.Errorf("pod %s env LEVEL = %q, want debug", p.Name, got)
		}
		if got := fetch(addr, "/file?path=/config/LOG_LEVEL"); got != "debug" {
			t.Errorf("pod %s /config/LOG_LEVEL = %q, want debug", p.Name, got)
		}
	}

	// The update reaches the running pods' files (env keeps the value the
	// container started with, as in Kubernetes).
	if _, err := f.Client.Modify(ctx, "ConfigMap", "default", "app-config", func(o api.Object) error {
		o.(*api.ConfigMap).Data["LOG_LEVEL"] = "info"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		addr := endpoint(p)
		var got string
		testfleet.WaitFor(t, "pod "+p.Name+" reading the updated file", 20*time.Second, func() bool {
			got = fetch(addr, "/file?path=/config/LOG_LEVEL")
			return got == "info"
		})
	}

	// The agents reported what they did as events about the pods.
	testfleet.WaitFor(t, "Pulled and Started events from the agents", 10*time.Second, func() bool {
		evs, err := f.Client.List(ctx, "Event", "default", "")
		if err != nil {
			return false
		}
		seen := map[string]bool{}
		for _, o := range evs {
			e := o.(*api.Event)
			if e.Source.Component == "flotilla-agent" && e.InvolvedObject.UID == pods[0].UID {
				seen[e.Reason] = true
			}
		}
		return seen["Pulled"] && seen["Started"]
	})
}
