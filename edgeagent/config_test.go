package edgeagent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
)

// logLines is the whole log of a container, one entry per line.
func (f *fleet) logLines(t *testing.T, pod, container string) []string {
	t.Helper()
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.New(f.nc).Logs(ctx, "default", pod, container, -1, false, &buf); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
}

// waitLogged waits until the container's log holds every one of want.
func (f *fleet) waitLogged(t *testing.T, pod string, want ...string) []string {
	t.Helper()
	var lines []string
	waitFor(t, 15*time.Second, pod+" logging "+strings.Join(want, ", "), func() bool {
		lines = f.logLines(t, pod, "main")
		for _, w := range want {
			if !slices.Contains(lines, w) {
				return false
			}
		}
		return true
	}, func() string { return strings.Join(lines, " | ") })
	return lines
}

func (f *fleet) create(t *testing.T, obj api.Object) api.Object {
	t.Helper()
	out, err := f.st.Create(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func configMap(name string, data map[string]string) *api.ConfigMap {
	return &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Data: data}
}

func yes() *bool { v := true; return &v }

// waitWaiting waits for the pod's first container to wait with reason
// and a message containing msg. Waits on a first start are long: the agent
// compiles the module first, which on a loaded two-core box takes a while.
func (f *fleet) waitWaiting(t *testing.T, pod, reason, msg string) {
	t.Helper()
	waitFor(t, 60*time.Second, pod+" waiting with "+reason+": "+msg, func() bool {
		st := f.pod(t, pod).Status
		if len(st.ContainerStatuses) != 1 {
			return false
		}
		w := st.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == reason && strings.Contains(w.Message, msg)
	}, func() string { return toJSON(f.pod(t, pod).Status) })
}

func (f *fleet) waitPhase(t *testing.T, pod, phase string) {
	t.Helper()
	waitFor(t, 60*time.Second, pod+" "+phase, func() bool { return f.pod(t, pod).Status.Phase == phase },
		func() string { return toJSON(f.pod(t, pod).Status) })
}

func TestEnvComesFromConfigMapsSecretsAndPodFields(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "fsenv:v1", guest(t, "fsenv"))
	startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	f.create(t, configMap("app-config", map[string]string{"LOG_LEVEL": "debug", "MODE": "fast"}))
	f.create(t, &api.Secret{ObjectMeta: api.ObjectMeta{Name: "creds", Namespace: "default"}, Data: map[string][]byte{"password": []byte("s3cret")}})

	pod := cmdPod("env", "fsenv:v1", api.RestartNever, "env")
	c := &pod.Spec.Containers[0]
	c.EnvFrom = []api.EnvFromSource{
		{ConfigMapRef: &api.LocalObjectReference{Name: "app-config"}, Prefix: "CFG_"},
		{SecretRef: &api.LocalObjectReference{Name: "absent", Optional: yes()}},
	}
	c.Env = []api.EnvVar{
		{Name: "LEVEL", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.KeySelector{Name: "app-config", Key: "LOG_LEVEL"}}},
		{Name: "PASSWORD", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.KeySelector{Name: "creds", Key: "password"}}},
		{Name: "MY_UID", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
		{Name: "MY_NODE", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "MY_IP", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "MAYBE", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.KeySelector{Name: "app-config", Key: "NOPE", Optional: yes()}}},
		{Name: "CFG_MODE", Value: "env wins over envFrom"},
	}
	p := f.schedule(t, "edge-1", pod)
	f.waitPhase(t, "env", api.PodSucceeded)
	lines := f.waitLogged(t, "env", "LEVEL=debug")
	for _, want := range []string{
		"CFG_LOG_LEVEL=debug", "CFG_MODE=env wins over envFrom", "LEVEL=debug", "PASSWORD=s3cret",
		"MY_UID=" + p.UID, "MY_NODE=edge-1", "MY_IP=127.0.0.1", "POD_NAME=env",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("env lacks %q: %v", want, lines)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "MAYBE=") {
			t.Errorf("optional missing key was set: %q", l)
		}
	}
}

func TestMissingConfigWaitsWithCreateContainerConfigErrorUntilItAppears(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "fsenv:v1", guest(t, "fsenv"))
	startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	f.create(t, configMap("partial", map[string]string{"OTHER": "x"}))
	tests := []struct {
		pod   string
		ref   *api.KeySelector
		msg   string
		heal  func(t *testing.T)
		value string
	}{
		{
			pod: "no-configmap", ref: &api.KeySelector{Name: "late-config", Key: "LOG_LEVEL"},
			msg:   `configmap "late-config" not found`,
			heal:  func(t *testing.T) { f.create(t, configMap("late-config", map[string]string{"LOG_LEVEL": "info"})) },
			value: "info",
		},
		{
			pod: "no-key", ref: &api.KeySelector{Name: "partial", Key: "LOG_LEVEL"},
			msg: "couldn't find key LOG_LEVEL in ConfigMap default/partial",
			heal: func(t *testing.T) {
				cm := getObj(t, f, "ConfigMap", "partial").(*api.ConfigMap)
				cm.Data["LOG_LEVEL"] = "warn"
				if _, err := f.st.Update(context.Background(), cm); err != nil {
					t.Fatal(err)
				}
			},
			value: "warn",
		},
	}
	for _, tt := range tests {
		t.Run(tt.pod, func(t *testing.T) {
			pod := cmdPod(tt.pod, "fsenv:v1", api.RestartNever, "env")
			pod.Spec.Containers[0].Env = []api.EnvVar{{Name: "LEVEL", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: tt.ref}}}
			f.schedule(t, "edge-1", pod)
			f.waitWaiting(t, tt.pod, ReasonCreateContainerConfigError, tt.msg)
			if ph := f.pod(t, tt.pod).Status.Phase; ph != api.PodPending {
				t.Errorf("phase %s while the config is missing, want Pending", ph)
			}
			tt.heal(t)
			f.waitPhase(t, tt.pod, api.PodSucceeded)
			f.waitLogged(t, tt.pod, "LEVEL="+tt.value)
		})
	}
}

func getObj(t *testing.T, f *fleet, kind, name string) api.Object {
	t.Helper()
	obj, err := f.st.Get(context.Background(), kind, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func volumePod(name string, vols []api.Volume, mounts []api.VolumeMount, args ...string) *api.Pod {
	p := cmdPod(name, "fsenv:v1", api.RestartNever, args...)
	p.Spec.Volumes = vols
	p.Spec.Containers[0].VolumeMounts = mounts
	return p
}

func TestVolumesArePreopenedDirectories(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "fsenv:v1", guest(t, "fsenv"))
	dataDir := t.TempDir()
	a := startAgent(t, f, f.srv.URL(), dataDir, nil)
	f.create(t, configMap("site", map[string]string{"greeting": "hello", "color": "blue"}))
	f.create(t, &api.Secret{ObjectMeta: api.ObjectMeta{Name: "tls", Namespace: "default"}, Data: map[string][]byte{"key.pem": []byte("PRIVATE")}})
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "motd"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	created := filepath.Join(t.TempDir(), "made", "by", "agent")

	tests := []struct {
		pod    string
		vols   []api.Volume
		mounts []api.VolumeMount
		args   []string
		want   []string
	}{
		{
			pod:    "cm-files",
			vols:   []api.Volume{{Name: "cfg", ConfigMap: &api.ConfigMapVolumeSource{Name: "site"}}},
			mounts: []api.VolumeMount{{Name: "cfg", MountPath: "/etc/site"}},
			args:   []string{"cat", "/etc/site/greeting", "/etc/site/color"},
			want:   []string{"/etc/site/greeting: hello", "/etc/site/color: blue"},
		},
		{
			pod:    "cm-items",
			vols:   []api.Volume{{Name: "cfg", ConfigMap: &api.ConfigMapVolumeSource{Name: "site", Items: []api.KeyToPath{{Key: "greeting", Path: "conf/hi.txt"}}}}},
			mounts: []api.VolumeMount{{Name: "cfg", MountPath: "/cfg"}},
			args:   []string{"cat", "/cfg/conf/hi.txt", "/cfg/color"},
			want:   []string{"/cfg/conf/hi.txt: hello"},
		},
		{
			pod:    "secret-files",
			vols:   []api.Volume{{Name: "tls", Secret: &api.SecretVolumeSource{SecretName: "tls"}}},
			mounts: []api.VolumeMount{{Name: "tls", MountPath: "/tls"}},
			args:   []string{"cat", "/tls/key.pem"},
			want:   []string{"/tls/key.pem: PRIVATE"},
		},
		{
			pod:    "cm-read-only",
			vols:   []api.Volume{{Name: "cfg", ConfigMap: &api.ConfigMapVolumeSource{Name: "site"}}},
			mounts: []api.VolumeMount{{Name: "cfg", MountPath: "/etc/site"}},
			args:   []string{"write", "/etc/site/greeting", "hacked"},
		},
		{
			pod:    "empty-dir",
			vols:   []api.Volume{{Name: "scratch", EmptyDir: &api.EmptyDirVolumeSource{}}},
			mounts: []api.VolumeMount{{Name: "scratch", MountPath: "/tmp"}},
			args:   []string{"write", "/tmp/x", "y"},
			want:   []string{"wrote /tmp/x"},
		},
		{
			pod:    "read-only-mount",
			vols:   []api.Volume{{Name: "scratch", EmptyDir: &api.EmptyDirVolumeSource{}}},
			mounts: []api.VolumeMount{{Name: "scratch", MountPath: "/tmp", ReadOnly: true}},
			args:   []string{"write", "/tmp/x", "y"},
		},
		{
			pod:    "host-path",
			vols:   []api.Volume{{Name: "host", HostPath: &api.HostPathVolumeSource{Path: hostDir, Type: "Directory"}}},
			mounts: []api.VolumeMount{{Name: "host", MountPath: "/host"}},
			args:   []string{"cat", "/host/motd"},
			want:   []string{"/host/motd: from the host"},
		},
		{
			pod:    "host-path-create",
			vols:   []api.Volume{{Name: "host", HostPath: &api.HostPathVolumeSource{Path: created, Type: "DirectoryOrCreate"}}},
			mounts: []api.VolumeMount{{Name: "host", MountPath: "/out", SubPath: "sub"}},
			args:   []string{"write", "/out/file", "z"},
			want:   []string{"wrote /out/file"},
		},
	}
	for _, tt := range tests {
		f.schedule(t, "edge-1", volumePod(tt.pod, tt.vols, tt.mounts, tt.args...))
	}
	for _, tt := range tests {
		t.Run(tt.pod, func(t *testing.T) {
			f.waitPhase(t, tt.pod, api.PodSucceeded)
			if len(tt.want) > 0 {
				f.waitLogged(t, tt.pod, tt.want...)
				return
			}
			// A write that must fail: the module reports the error.
			var lines []string
			waitFor(t, 10*time.Second, "the refused write logged", func() bool {
				lines = f.logLines(t, tt.pod, "main")
				return len(lines) > 0 && strings.HasPrefix(lines[0], "write ")
			}, func() string { return strings.Join(lines, " | ") })
		})
	}
	if b, err := os.ReadFile(filepath.Join(created, "sub", "file")); err != nil || string(b) != "z" {
		t.Errorf("hostPath DirectoryOrCreate with subPath: %q, %v", b, err)
	}

	// Deleting the pods removes their emptyDir and projected files.
	p := f.pod(t, "empty-dir")
	f.unassign(t, "edge-1", p)
	waitFor(t, 10*time.Second, "the pod's directory removed", func() bool {
		_, err := os.Stat(a.podDir(p.UID))
		return errors.Is(err, os.ErrNotExist)
	}, nil)
}

func TestHostPathDirectoryMustExist(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "fsenv:v1", guest(t, "fsenv"))
	startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	missing := filepath.Join(t.TempDir(), "nope")
	f.schedule(t, "edge-1", volumePod("hp", []api.Volume{{Name: "h", HostPath: &api.HostPathVolumeSource{Path: missing, Type: "Directory"}}},
		[]api.VolumeMount{{Name: "h", MountPath: "/h"}}, "cat", "/h/x"))
	f.waitWaiting(t, "hp", ReasonCreateContainerConfigError, missing+" is not a directory")
	if err := os.Mkdir(missing, 0o755); err != nil {
		t.Fatal(err)
	}
	f.waitPhase(t, "hp", api.PodSucceeded)
}

func TestPersistentVolumeClaimOutlivesThePod(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.push(t, "fsenv:v1", guest(t, "fsenv"))
	a := startAgent(t, f, f.srv.URL(), t.TempDir(), nil)
	claim := []api.Volume{{Name: "data", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: "db"}}}
	mount := []api.VolumeMount{{Name: "data", MountPath: "/data"}}

	first := f.schedule(t, "edge-1", volumePod("writer", claim, mount, "write", "/data/state", "kept"))
	f.waitPhase(t, "writer", api.PodSucceeded)
	f.waitLogged(t, "writer", "wrote /data/state")
	f.unassign(t, "edge-1", first)
	if err := f.st.Delete(context.Background(), "Pod", "default", "writer", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "writer stopped", func() bool { return len(a.Pods()) == 0 }, nil)

	f.schedule(t, "edge-1", volumePod("reader", claim, mount, "cat", "/data/state"))
	f.waitPhase(t, "reader", api.PodSucceeded)
	f.waitLogged(t, "reader", "/data/state: kept")

	readOnly := []api.Volume{{Name: "data", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: "db", ReadOnly: true}}}
	f.schedule(t, "edge-1", volumePod("ro-writer", readOnly, mount, "write", "/data/state", "lost"))
	f.waitPhase(t, "ro-writer", api.PodSucceeded)
	if b, err := os.ReadFile(filepath.Join(a.claimDir("default", "db"), "state")); err != nil || string(b) != "kept" {
		t.Errorf("read-only claim was written: %q, %v", b, err)
	}
}

func TestVolumesOfPodsDeletedWhileTheAgentWasDownAreRemoved(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	dataDir := t.TempDir()
	stale := filepath.Join(dataDir, "pods", "uid-of-a-deleted-pod", "volumes", "scratch")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	startAgent(t, f, f.srv.URL(), dataDir, nil)
	waitFor(t, 10*time.Second, "the stale pod directory removed", func() bool {
		_, err := os.Stat(filepath.Dir(filepath.Dir(stale)))
		return errors.Is(err, os.ErrNotExist)
	}, nil)
}
