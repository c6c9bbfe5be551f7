package api

import (
	"fmt"

	"github.com/distribution/reference"
)

// NodeContainerRuntimeReady is the node condition saying whether the
// agent's containerd answers; wasm pods do not depend on it.
const NodeContainerRuntimeReady = "ContainerRuntimeReady"

// DefaultRuntime is the runtime of a container whose runtime is empty.
//
// The rule: a reference that is a valid module reference (NAME:TAG or
// NAME@sha256:HEX, a single lower-case path component, no registry host,
// no '/') is a wasm module, because modules live in the fleet's own module
// store and are named that way; anything else ("nginx" without a tag,
// "docker.io/library/nginx:1.27", "ghcr.io/org/app@sha256:...",
// "registry.local:5000/app:v1") is an OCI image. Write `runtime: oci` to
// run an image named like a module (e.g. "nginx:1.27") as a container.
func DefaultRuntime(image string) string {
	if ValidModuleRef(image) == nil {
		return RuntimeWasm
	}
	return RuntimeOCI
}

// ValidImageRef checks an OCI image reference the way containerd parses it
// ([HOST[:PORT]/]PATH[:TAG][@DIGEST]).
func ValidImageRef(s string) error {
	if s == "" {
		return fmt.Errorf("is required")
	}
	if _, err := reference.ParseDockerRef(s); err != nil {
		return fmt.Errorf("%q is not an image reference: %v", s, err)
	}
	return nil
}
