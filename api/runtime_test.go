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

func TestCommandAndWorkingDirAreForOCIContainersOnly(t *testing.T) {
	tests := []struct {
		name      string
		c         Container
		wantField string // "" means valid
		wantMsg   string
	}{
		{"oci command, args and workingDir", Container{Runtime: RuntimeOCI, Image: "ghcr.io/org/app:v1", Command: []string{"/server"}, Args: []string{"-exit", "3"}, WorkingDir: "/tmp"}, "", ""},
		{"oci relative workingDir", Container{Runtime: RuntimeOCI, Image: "ghcr.io/org/app:v1", WorkingDir: "tmp"}, "spec.containers[0].workingDir", "must be an absolute path"},
		{"wasm args", Container{Runtime: RuntimeWasm, Image: "hello:v1", Args: []string{"-v"}}, "", ""},
		{"wasm command", Container{Runtime: RuntimeWasm, Image: "hello:v1", Command: []string{"hello"}}, "spec.containers[0].command", "not supported for wasm modules; use args"},
		{"defaulted wasm command", Container{Image: "hello:v1", Command: []string{"hello"}}, "spec.containers[0].command", "not supported for wasm modules; use args"},
		{"wasm workingDir", Container{Runtime: RuntimeWasm, Image: "hello:v1", WorkingDir: "/data"}, "spec.containers[0].workingDir", "not supported for wasm modules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Name = "c"
			p := &Pod{ObjectMeta: ObjectMeta{Name: "p", Namespace: "default"}, Spec: PodSpec{Containers: []Container{tt.c}}}
			Defaults(p)
			err := Validate(p)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantField+": "+tt.wantMsg) {
				t.Fatalf("Validate = %v, want %q", err, tt.wantField+": "+tt.wantMsg)
			}
		})
	}
}
