package edgeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/wasmrt"
)

// configRefresh is how often the files of configMap and secret volumes are
// compared with the stored objects, so an update reaches running pods.
// Polling keeps it level-triggered: a missed change costs one period.
var configRefresh = 3 * time.Second

// volumeHost is a volume's directory on the node.
type volumeHost struct {
	path     string
	readOnly bool // configMap, secret, or a read-only claim
	// projected volumes hold files the agent writes; a subPath into them
	// must already exist.
	projected bool
}

// podDir holds what belongs to one pod on this node and goes with it.
func (a *Agent) podDir(uid string) string {
	return filepath.Join(a.cfg.DataDir, "pods", uid)
}

// claimDir is a persistentVolumeClaim's node-local directory; it outlives
// pods so a replacement pod with the same claim finds its data.
func (a *Agent) claimDir(ns, claim string) string {
	return filepath.Join(a.cfg.DataDir, "volumes", ns, claim)
}

// removePodDir deletes the pod's emptyDir and projected volumes once the
// pod has stopped for good.
func (a *Agent) removePodDir(uid string) {
	if uid == "" {
		return
	}
	if err := os.RemoveAll(a.podDir(uid)); err != nil {
		a.log.Warn("remove pod volumes", "uid", uid, "err", err)
	}
}

// prepareVolumes makes every volume of the pod ready on disk: directories
// created, hostPath types checked, ConfigMap and Secret keys written as
// files. It is idempotent and serialised, since containers start in
// parallel.
func (r *podRunner) prepareVolumes(ctx context.Context) (map[string]volumeHost, error) {
	r.volMu.Lock()
	defer r.volMu.Unlock()
	out := map[string]volumeHost{}
	base := filepath.Join(r.a.podDir(r.pod.UID), "volumes")
	for _, v := range r.pod.Spec.Volumes {
		dir := filepath.Join(base, v.Name)
		var vh volumeHost
		switch {
		case v.EmptyDir != nil:
			vh = volumeHost{path: dir}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("emptyDir volume %q: %w", v.Name, err)
			}
		case v.HostPath != nil:
			vh = volumeHost{path: v.HostPath.Path}
			if err := checkHostPath(v.Name, v.HostPath); err != nil {
				return nil, err
			}
		case v.PersistentVolumeClaim != nil:
			dir = r.a.claimDir(r.pod.Namespace, v.PersistentVolumeClaim.ClaimName)
			vh = volumeHost{path: dir, readOnly: v.PersistentVolumeClaim.ReadOnly}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("persistentVolumeClaim volume %q: %w", v.Name, err)
			}
		case v.ConfigMap != nil, v.Secret != nil:
			vh = volumeHost{path: dir, readOnly: true, projected: true}
			if err := r.syncProjected(ctx, v, dir); err != nil {
				return nil, err
			}
		default:
			return nil, configErrorf("volume %q has no source", v.Name)
		}
		out[v.Name] = vh
	}
	return out, nil
}

// checkHostPath enforces the hostPath type: Directory (and the empty
// type, since WASI can only preopen directories) must exist,
// DirectoryOrCreate is created.
func checkHostPath(name string, hp *api.HostPathVolumeSource) error {
	if hp.Type == "DirectoryOrCreate" {
		if err := os.MkdirAll(hp.Path, 0o755); err != nil {
			return configErrorf("hostPath volume %q: create %s: %v", name, hp.Path, err)
		}
		return nil
	}
	fi, err := os.Stat(hp.Path)
	if err != nil {
		return configErrorf("hostPath type check failed: %s is not a directory (volume %q): %v", hp.Path, name, err)
	}
	if !fi.IsDir() {
		return configErrorf("hostPath type check failed: %s is not a directory (volume %q)", hp.Path, name)
	}
	return nil
}

// projection is the source of a configMap or secret volume.
func projection(v api.Volume) (kind, name string, items []api.KeyToPath, optional bool) {
	if v.ConfigMap != nil {
		return "ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items, isOptional(v.ConfigMap.Optional)
	}
	return "Secret", v.Secret.SecretName, v.Secret.Items, isOptional(v.Secret.Optional)
}

// syncProjected writes the keys of the volume's ConfigMap or Secret as
// files in dir and removes files of keys that went away. Each file is
// replaced with a rename, so a module never reads a half-written file and
// its next open sees the new content. A missing object keeps the files it
// had (Kubernetes does the same), or fails when there were none.
func (r *podRunner) syncProjected(ctx context.Context, v api.Volume, dir string) error {
	kind, name, items, optional := projection(v)
	src := configSource{a: r.a, ns: r.pod.Namespace}
	data, ok, err := src.data(ctx, kind, name)
	if err != nil {
		return err
	}
	if !ok {
		if _, statErr := os.Stat(dir); statErr == nil {
			return nil // keep serving the last content we had
		}
		if !optional {
			return configErrorf("%s", notFoundMsg(kind, name))
		}
		data = map[string][]byte{}
	}
	want := map[string][]byte{}
	if len(items) == 0 {
		for k, b := range data {
			want[k] = b
		}
	}
	for _, it := range items {
		b, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return configErrorf("couldn't find key %s in %s %s/%s (volume %q)", it.Key, kind, r.pod.Namespace, name, v.Name)
		}
		want[filepath.Clean(it.Path)] = b
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("volume %q: %w", v.Name, err)
	}
	for rel, b := range want {
		path := filepath.Join(dir, rel)
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, b) {
			continue
		}
		if err := writeFileAtomic(path, b); err != nil {
			return fmt.Errorf("volume %q: write %s: %w", v.Name, rel, err)
		}
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if _, ok := want[rel]; !ok {
			return os.Remove(path)
		}
		return nil
	})
}

// mounts turns the container's volumeMounts into WASI preopens.
func mounts(c api.Container, vols map[string]volumeHost) ([]wasmrt.Mount, error) {
	var out []wasmrt.Mount
	for _, vm := range c.VolumeMounts {
		vh, ok := vols[vm.Name]
		if !ok {
			return nil, configErrorf("volumeMount %q: no such volume", vm.Name)
		}
		host := vh.path
		if vm.SubPath != "" {
			host = filepath.Join(vh.path, filepath.Clean(vm.SubPath))
			if vh.projected {
				if fi, err := os.Stat(host); err != nil || !fi.IsDir() {
					return nil, configErrorf("subPath %q of volume %q is not a directory; wasm modules can only mount directories", vm.SubPath, vm.Name)
				}
			} else if err := os.MkdirAll(host, 0o700); err != nil {
				return nil, configErrorf("subPath %q of volume %q: %v", vm.SubPath, vm.Name, err)
			}
		}
		out = append(out, wasmrt.Mount{HostPath: host, GuestPath: vm.MountPath, ReadOnly: vm.ReadOnly || vh.readOnly})
	}
	return out, nil
}

// refreshLoop keeps the files of the pod's configMap and secret volumes
// equal to the stored objects until ctx ends.
func (r *podRunner) refreshLoop(ctx context.Context) {
	var projected []api.Volume
	for _, v := range r.pod.Spec.Volumes {
		if v.ConfigMap != nil || v.Secret != nil {
			projected = append(projected, v)
		}
	}
	if len(projected) == 0 {
		return
	}
	base := filepath.Join(r.a.podDir(r.pod.UID), "volumes")
	for sleepCtx(ctx, configRefresh) {
		r.volMu.Lock()
		for _, v := range projected {
			dir := filepath.Join(base, v.Name)
			if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
				continue // not prepared yet: the container's start does it
			}
			if err := r.syncProjected(ctx, v, dir); err != nil && ctx.Err() == nil {
				r.log.Debug("refresh volume", "volume", v.Name, "err", err)
			}
		}
		r.volMu.Unlock()
	}
}

// gcPodDirs removes the directories of pods that are neither desired nor
// running: pods deleted while the agent was down or disconnected. It runs
// when the assignments watch has replayed, i.e. when desired is the truth.
func (a *Agent) gcPodDirs() {
	entries, err := os.ReadDir(filepath.Join(a.cfg.DataDir, "pods"))
	if err != nil {
		return // no pod has had a volume yet
	}
	keep := map[string]bool{}
	a.mu.Lock()
	for _, p := range a.desired {
		keep[p.UID] = true
	}
	for _, r := range a.running {
		keep[r.pod.UID] = true
	}
	a.mu.Unlock()
	for _, e := range entries {
		if e.IsDir() && !keep[e.Name()] {
			a.removePodDir(e.Name())
		}
	}
}
