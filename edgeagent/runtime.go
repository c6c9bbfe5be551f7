package edgeagent

import (
	"context"
	"errors"
	"io"

	"github.com/flotilla-edge/flotilla/api"
)

// containerRuntime is how the agent runs one kind of container. The seam
// is "run container i of this pod until the pod stops", not start/wait/
// stop of a process, because an HTTP wasm module has no process: the agent
// owns its listener and a pool of instances. Both runtimes share the pod
// runner's pieces: status updates, events, env building, volume
// preparation, port allocation, readiness probes, log writers and the
// restart backoff.
type containerRuntime interface {
	// run pulls, configures and runs container i, restarting it as the
	// pod's restart policy says, until ctx ends (the pod stops) or the
	// container is final.
	run(ctx context.Context, r *podRunner, i int)
	// exec runs cmd inside container i's current run and returns its
	// exit code.
	exec(ctx context.Context, r *podRunner, i int, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error)
}

// runtimes maps api.Container.Runtime to its implementation.
var runtimes = map[string]containerRuntime{
	api.RuntimeWasm: wasmRuntime{},
	api.RuntimeOCI:  ociRuntime{},
}

// errExecWasm: a wasm module has no shell or process to exec into.
var errExecWasm = errors.New("exec is not supported for wasm containers")

// wasmRuntime runs modules through wasmrt (container.go, httpserve.go).
type wasmRuntime struct{}

func (wasmRuntime) run(ctx context.Context, r *podRunner, i int) { r.runWasm(ctx, i) }

func (wasmRuntime) exec(context.Context, *podRunner, int, []string, io.Reader, io.Writer, io.Writer, bool) (int, error) {
	return -1, errExecWasm
}
