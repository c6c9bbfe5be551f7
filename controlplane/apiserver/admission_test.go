package apiserver_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
)

// readsKey is a deployment whose container reads key of ConfigMap cm
// as its second variable.
func readsKey(name, cm, key string, optional bool) *api.Deployment {
	d := deployment(name, 1)
	ref := &api.KeySelector{Name: cm, Key: key}
	if optional {
		ref.Optional = &optional
	}
	d.Spec.Template.Spec.Containers[0].Env = []api.EnvVar{
		{Name: "PLAIN", Value: "x"},
		{Name: "LEVEL", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: ref}},
	}
	return d
}

func TestAdmissionRejectsConfigMapKeysThatDoNotExist(t *testing.T) {
	_, c := startServer(t)
	ctx := context.Background()
	if _, err := c.Create(ctx, &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "app-config"}, Data: map[string]string{"MODE": "fast"}}); err != nil {
		t.Fatal(err)
	}
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "p"}, Spec: readsKey("x", "app-config", "LOG_LEVEL", false).Spec.Template.Spec}
	tests := []struct {
		name    string
		obj     api.Object
		wantErr string // "" means admitted
	}{
		{"deployment reading a missing key of an existing ConfigMap is rejected", readsKey("bad", "app-config", "LOG_LEVEL", false),
			`spec.template.spec.containers[0].env[1].valueFrom.configMapKeyRef.key: key "LOG_LEVEL" not found in ConfigMap "app-config"`},
		{"pod reading a missing key is rejected with the pod's field path", pod,
			`spec.containers[0].env[1].valueFrom.configMapKeyRef.key: key "LOG_LEVEL" not found in ConfigMap "app-config"`},
		{"an existing key is admitted", readsKey("good", "app-config", "MODE", false), ""},
		{"an optional missing key is admitted", readsKey("opt", "app-config", "LOG_LEVEL", true), ""},
		{"a ConfigMap that does not exist yet is admitted", readsKey("later", "not-yet", "LOG_LEVEL", false), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, write := range []struct {
				name string
				fn   func(context.Context, api.Object) (api.Object, error)
			}{{"create", c.Create}, {"apply", c.Apply}} {
				_, err := write.fn(ctx, tt.obj)
				if tt.wantErr == "" {
					if err != nil && !errors.Is(err, api.ErrAlreadyExists) {
						t.Fatalf("%s: %v", write.name, err)
					}
					continue
				}
				if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%s: err = %v, want %q", write.name, err, tt.wantErr)
				}
				m := tt.obj.GetMeta()
				if _, err := c.Get(ctx, tt.obj.GetType().Kind, "default", m.Name); !errors.Is(err, api.ErrNotFound) {
					t.Fatalf("%s: rejected object was stored (get: %v)", write.name, err)
				}
			}
		})
	}
}
