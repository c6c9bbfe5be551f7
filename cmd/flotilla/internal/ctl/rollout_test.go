package ctl

import (
	"strings"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
)

func TestRolloutStatusMessageReadsLikeKubectl(t *testing.T) {
	dep := func(gen, observed int64, st api.DeploymentStatus) *api.Deployment {
		return &api.Deployment{ObjectMeta: api.ObjectMeta{Name: "web", Generation: gen},
			Spec: api.DeploymentSpec{Replicas: api.Int32(3)}, Status: func() api.DeploymentStatus { st.ObservedGeneration = observed; return st }()}
	}
	deadline := api.DeploymentStatus{Conditions: []api.Condition{{Type: "Progressing", Status: api.ConditionFalse, Reason: "ProgressDeadlineExceeded"}}}
	tests := []struct {
		name    string
		d       *api.Deployment
		want    string
		done    bool
		wantErr string
	}{
		{"an unobserved spec waits", dep(2, 1, api.DeploymentStatus{}), "Waiting for deployment spec update to be observed...", false, ""},
		{"counts updated replicas", dep(1, 1, api.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1}), `Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...`, false, ""},
		{"then old replicas", dep(1, 1, api.DeploymentStatus{Replicas: 4, UpdatedReplicas: 3}), `Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...`, false, ""},
		{"then availability", dep(1, 1, api.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2}), `Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...`, false, ""},
		{"complete", dep(1, 1, api.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}), `deployment "web" successfully rolled out`, true, ""},
		{"a passed deadline is an error", dep(1, 1, deadline), "", false, `deployment "web" exceeded its progress deadline`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, done, err := RolloutStatusMessage(tt.d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || msg != tt.want || done != tt.done {
				t.Fatalf("got %q, %t, %v; want %q, %t", msg, done, err, tt.want, tt.done)
			}
		})
	}
}

func TestParseSetImageArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantRef string
		wantErr string
	}{
		{"type/name and one pair", []string{"deployment/web", "hello=hello:v2"}, "web", ""},
		{"type name and two pairs", []string{"deployments", "web", "a=x:1", "b=y:2"}, "web", ""},
		{"no pair", []string{"deployment/web"}, "", "CONTAINER=IMAGE"},
		{"an empty image", []string{"deployment/web", "hello="}, "", "want CONTAINER=IMAGE"},
		{"two objects", []string{"deployment/a", "deployment/b", "c=x:1"}, "", "expected one object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, _, err := ParseSetImageArgs(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || ref.Name != tt.wantRef {
				t.Fatalf("ref %+v, err %v", ref, err)
			}
		})
	}
}

func TestSetImagesNamesAMissingContainer(t *testing.T) {
	spec := &api.PodSpec{Containers: []api.Container{{Name: "hello", Image: "hello:v1"}}}
	if _, err := setImages(spec, map[string]string{"nope": "x:1"}); err == nil || !strings.Contains(err.Error(), `unable to find container named "nope"`) {
		t.Fatalf("err = %v", err)
	}
	if changed, err := setImages(spec, map[string]string{"*": "hello:v2"}); err != nil || !changed || spec.Containers[0].Image != "hello:v2" {
		t.Fatalf("* did not set every container: %v %v", changed, err)
	}
}
