package edgeagent

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

func TestProbeSettingsDefaultAsKubernetes(t *testing.T) {
	tests := []struct {
		name  string
		probe api.Probe
		want  probeSettings
	}{
		{"empty probe gets 10s period, 1s timeout, thresholds 1 and 3", api.Probe{},
			probeSettings{period: 10 * time.Second, timeout: time.Second, success: 1, failure: 3}},
		{"set values are kept", api.Probe{InitialDelaySeconds: 2, PeriodSeconds: 1, TimeoutSeconds: 3, SuccessThreshold: 2, FailureThreshold: 1},
			probeSettings{initialDelay: 2 * time.Second, period: time.Second, timeout: 3 * time.Second, success: 2, failure: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := probeSettingsOf(&tt.probe); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestProbeURLFindsTheHostPortOfTheNamedPort(t *testing.T) {
	ports := []api.PortStatus{
		{Name: "http", ContainerPort: 8080, HostIP: "10.0.0.5", HostPort: 40001},
		{Name: "admin", ContainerPort: 9090, HostIP: "10.0.0.5", HostPort: 40002},
	}
	c := api.Container{Name: "web"}
	port := func(v api.IntOrString) *api.IntOrString { return &v }
	tests := []struct {
		name    string
		get     api.HTTPGetAction
		want    string
		wantErr string
	}{
		{"no port means the first port", api.HTTPGetAction{Path: "/healthz"}, "http://10.0.0.5:40001/healthz", ""},
		{"a port number maps to its host port", api.HTTPGetAction{Path: "/ready", Port: port(api.FromInt(9090))}, "http://10.0.0.5:40002/ready", ""},
		{"a port name maps to its host port", api.HTTPGetAction{Port: port(api.FromString("admin"))}, "http://10.0.0.5:40002/", ""},
		{"an unknown port is an error naming it", api.HTTPGetAction{Port: port(api.FromString("metrics"))}, "", "port metrics is not a port of container web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := probeURL(c, ports, &tt.get)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// fileServerPod runs filesrv with a readiness probe on /healthz, ready while
// HEALTH_FILE exists in the host directory dir.
func fileServerPod(name, dir string, probe *api.Probe) *api.Pod {
	p := webPod(name, "filesrv:v1")
	c := &p.Spec.Containers[0]
	c.Env = []api.EnvVar{{Name: "HEALTH_FILE", Value: "/state/ready"}}
	c.ReadinessProbe = probe
	c.VolumeMounts = []api.VolumeMount{{Name: "state", MountPath: "/state", ReadOnly: true}}
	p.Spec.Volumes = []api.Volume{{Name: "state", HostPath: &api.HostPathVolumeSource{Path: dir, Type: "Directory"}}}
	return p
}

func TestReadinessProbeFollowsTheModuleBothWays(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "filesrv:v1", guest(t, "filesrv"))
	startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	dir := t.TempDir()
	port := api.FromString("http")
	probe := &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/healthz", Port: &port}, PeriodSeconds: 1, FailureThreshold: 1}
	f.schedule(t, "edge-1", fileServerPod("web", dir, probe))
	missing := &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/missing"}, PeriodSeconds: 1}
	f.schedule(t, "edge-1", fileServerPod("web-404", dir, missing))

	running := func(name string) func() bool {
		return func() bool {
			p := f.pod(t, name)
			return p.Status.Phase == api.PodRunning && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].Started
		}
	}
	waitFor(t, 60*time.Second, "web running", running("web"), func() string { return toJSON(f.pod(t, "web").Status) })
	waitFor(t, 60*time.Second, "web-404 running", running("web-404"), func() string { return toJSON(f.pod(t, "web-404").Status) })
	// Several probe periods pass: /healthz answers 503, so not ready.
	time.Sleep(3 * time.Second)
	if f.pod(t, "web").IsReady() {
		t.Fatal("pod ready while /healthz answers 503")
	}
	ready := filepath.Join(dir, "ready")
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "web Ready once /healthz answers 200", func() bool { return f.pod(t, "web").IsReady() },
		func() string { return toJSON(f.pod(t, "web").Status) })
	if err := os.Remove(ready); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "web unready again", func() bool { return !f.pod(t, "web").IsReady() },
		func() string { return toJSON(f.pod(t, "web").Status) })
	if f.pod(t, "web-404").IsReady() {
		t.Error("pod whose probe path answers 404 is ready")
	}
	waitEvent(t, f, "web-404", api.EventWarning, EventUnhealthy, "Readiness probe failed: HTTP probe failed with statuscode: 404")
}

func TestConfigMapUpdateReachesARunningPod(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "filesrv:v1", guest(t, "filesrv"))
	startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	f.create(t, configMap("greeting", map[string]string{"text": "hello"}))
	p := webPod("web", "filesrv:v1")
	p.Spec.Volumes = []api.Volume{{Name: "cfg", ConfigMap: &api.ConfigMapVolumeSource{Name: "greeting"}}}
	p.Spec.Containers[0].VolumeMounts = []api.VolumeMount{{Name: "cfg", MountPath: "/config"}}
	f.schedule(t, "edge-1", p)
	waitFor(t, 60*time.Second, "web Ready", func() bool { return f.pod(t, "web").IsReady() },
		func() string { return toJSON(f.pod(t, "web").Status) })
	cs := f.pod(t, "web").Status.ContainerStatuses[0]
	url := "http://" + net.JoinHostPort(cs.Ports[0].HostIP, strconv.Itoa(int(cs.Ports[0].HostPort))) + "/file?path=/config/text"
	read := func() string {
		resp, err := http.Get(url)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := read(); got != "hello" {
		t.Fatalf("file before the update = %q", got)
	}
	cm := getObj(t, f, "ConfigMap", "greeting").(*api.ConfigMap)
	cm.Data["text"] = "bonjour"
	if _, err := f.st.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	var got string
	waitFor(t, 15*time.Second, "the running pod reading the new content", func() bool {
		got = read()
		return got == "bonjour"
	}, func() string { return got })
}
