package api

import (
	"strings"
	"testing"
)

func TestDefaultRuntimeFollowsTheImageReference(t *testing.T) {
	tests := []struct {
		image, want string
	}{
		{"hello:v1", RuntimeWasm},
		{"hello@sha256:" + strings.Repeat("a", 64), RuntimeWasm},
		{"flotilla.test/server:v1", RuntimeOCI},
		{"docker.io/library/nginx:1.27", RuntimeOCI},
		{"registry.local:5000/app:v1", RuntimeOCI},
		{"nginx", RuntimeOCI},
		{"ghcr.io/org/app@sha256:" + strings.Repeat("b", 64), RuntimeOCI},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			if got := DefaultRuntime(tt.image); got != tt.want {
				t.Fatalf("DefaultRuntime(%q) = %q, want %q", tt.image, got, tt.want)
			}
		})
	}
}

func TestMalformedOCIImageReferenceNamesTheField(t *testing.T) {
	for _, image := range []string{"Bad/Upper:case", "x:y:z/w", "a@sha256:short", ""} {
		t.Run(image, func(t *testing.T) {
			p := &Pod{ObjectMeta: ObjectMeta{Name: "p", Namespace: "default"},
				Spec: PodSpec{Containers: []Container{{Name: "c", Runtime: RuntimeOCI, Image: image}}}}
			Defaults(p)
			err := Validate(p)
			if err == nil || !strings.Contains(err.Error(), "spec.containers[0].image") {
				t.Fatalf("Validate = %v, want an error naming spec.containers[0].image", err)
			}
		})
	}
}
