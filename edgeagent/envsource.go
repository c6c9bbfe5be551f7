package edgeagent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// ReasonCreateContainerConfigError is the waiting reason of a container
// whose configuration (a ConfigMap, Secret, key or volume) is missing.
const ReasonCreateContainerConfigError = "CreateContainerConfigError"

// configError is a container configuration problem that may fix itself
// (the ConfigMap is created later), so the container waits and retries.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// configSource reads ConfigMaps and Secrets of the pod's namespace. When
// the API cannot be reached it falls back to the last copy this agent read.
type configSource struct {
	a  *Agent
	ns string
}

func (s configSource) get(ctx context.Context, kind, name string) (api.Object, error) {
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	key := kind + "/" + s.ns + "/" + name
	obj, err := s.a.client.Get(gctx, kind, s.ns, name)
	switch {
	case err == nil:
		s.a.configCache.Store(key, obj)
		return obj, nil
	case errors.Is(err, api.ErrNotFound):
		s.a.configCache.Delete(key)
	default:
		// NATS or the API is unreachable: a pod restarting during an
		// outage gets the configuration it had rather than none.
		if cached, ok := s.a.configCache.Load(key); ok {
			return cached.(api.Object), nil
		}
	}
	return nil, fmt.Errorf("read %s %s/%s: %w", kind, s.ns, name, err)
}

// data returns the keys of ConfigMap or Secret name as bytes; ok is false
// when the object does not exist.
func (s configSource) data(ctx context.Context, kind, name string) (map[string][]byte, bool, error) {
	obj, err := s.get(ctx, kind, name)
	if errors.Is(err, api.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := map[string][]byte{}
	switch o := obj.(type) {
	case *api.ConfigMap:
		for k, v := range o.BinaryData {
			out[k] = v
		}
		for k, v := range o.Data {
			out[k] = []byte(v)
		}
	case *api.Secret:
		for k, v := range o.Data {
			out[k] = v
		}
		for k, v := range o.StringData {
			out[k] = []byte(v)
		}
	default:
		return nil, false, fmt.Errorf("read %s %s/%s: got a %T", kind, s.ns, name, obj)
	}
	return out, true, nil
}

// notFoundMsg is how the kubelet names a missing object.
func notFoundMsg(kind, name string) string {
	if kind == "ConfigMap" {
		return fmt.Sprintf("configmap %q not found", name)
	}
	return fmt.Sprintf("secret %q not found", name)
}

// userEnv resolves the container's envFrom and env, in that order so env
// wins, as Kubernetes does. A missing object or key that is not optional
// is a configError naming it.
func (r *podRunner) userEnv(ctx context.Context, c api.Container) ([][2]string, error) {
	src := configSource{a: r.a, ns: r.pod.Namespace}
	var out [][2]string
	for _, ef := range c.EnvFrom {
		kind, ref := "ConfigMap", ef.ConfigMapRef
		if ref == nil {
			kind, ref = "Secret", ef.SecretRef
		}
		if ref == nil {
			continue
		}
		data, ok, err := src.data(ctx, kind, ref.Name)
		if err != nil {
			return nil, err
		}
		if !ok {
			if isOptional(ref.Optional) {
				continue
			}
			return nil, configErrorf("%s", notFoundMsg(kind, ref.Name))
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, [2]string{ef.Prefix + k, string(data[k])})
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			out = append(out, [2]string{e.Name, e.Value})
			continue
		}
		v, ok, err := r.envValue(ctx, src, e.ValueFrom)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, [2]string{e.Name, v})
		}
	}
	return out, nil
}

// envValue resolves one valueFrom; ok is false for an optional reference
// that is missing (the variable is left out).
func (r *podRunner) envValue(ctx context.Context, src configSource, vf *api.EnvVarSource) (string, bool, error) {
	if f := vf.FieldRef; f != nil {
		switch f.FieldPath {
		case "metadata.name":
			return r.pod.Name, true, nil
		case "metadata.namespace":
			return r.pod.Namespace, true, nil
		case "metadata.uid":
			return r.pod.UID, true, nil
		case "spec.nodeName":
			return r.a.cfg.Name, true, nil
		case "status.hostIP", "status.podIP":
			// Wasm pods live in the agent's process: the pod IP is the node's.
			return r.a.cfg.Address, true, nil
		}
		return "", false, configErrorf("unsupported fieldRef %q", f.FieldPath)
	}
	kind, sel := "ConfigMap", vf.ConfigMapKeyRef
	if sel == nil {
		kind, sel = "Secret", vf.SecretKeyRef
	}
	if sel == nil {
		return "", false, nil
	}
	data, ok, err := src.data(ctx, kind, sel.Name)
	if err != nil {
		return "", false, err
	}
	if !ok {
		if isOptional(sel.Optional) {
			return "", false, nil
		}
		return "", false, configErrorf("%s", notFoundMsg(kind, sel.Name))
	}
	v, ok := data[sel.Key]
	if !ok {
		if isOptional(sel.Optional) {
			return "", false, nil
		}
		return "", false, configErrorf("couldn't find key %s in %s %s/%s", sel.Key, kind, src.ns, sel.Name)
	}
	return string(v), true, nil
}

func isOptional(b *bool) bool { return b != nil && *b }
