package edgeagent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/wasmrt"
)

// Backoff bounds. Package variables so tests can shorten them.
var (
	pullBackoffMin    = 500 * time.Millisecond
	pullBackoffMax    = 60 * time.Second
	restartBackoffMin = time.Second
	restartBackoffMax = 5 * time.Minute
	// healthyRun resets the restart backoff: a container that ran this
	// long before it ended is not crash-looping.
	healthyRun = 10 * time.Minute
)

// runContainer pulls container i's module and runs it in its mode until
// the pod stops.
func (r *podRunner) runContainer(ctx context.Context, i int) {
	c := r.pod.Spec.Containers[i]
	if c.Runtime != api.RuntimeWasm {
		r.waiting(i, "UnsupportedRuntime", fmt.Sprintf("runtime %q is not supported by this node (wasm only)", c.Runtime))
		return
	}
	mod := r.pull(ctx, i)
	if mod == nil {
		return // stopped while pulling
	}
	mode := api.WasmCommand
	if c.Wasm != nil {
		mode = c.Wasm.Mode
	}
	switch mode {
	case api.WasmCommand:
		r.runCommand(ctx, i, mod)
	case api.WasmHTTP, api.WasmCGI:
		r.serveHTTP(ctx, i, mod, mode)
	default:
		r.waiting(i, "InvalidWasmMode", fmt.Sprintf("unknown wasm mode %q", mode))
	}
}

// pull fetches and compiles the module, retrying with backoff; nil means
// ctx ended first.
func (r *podRunner) pull(ctx context.Context, i int) *wasmrt.Module {
	c := r.pod.Spec.Containers[i]
	bo := newBackoff(pullBackoffMin, pullBackoffMax)
	for attempt := 0; ; attempt++ {
		mod, digest, err := r.a.modules.get(ctx, c.Image)
		if err == nil {
			r.update(i, func(s *ctrState) { s.status.ImageID = digest })
			return mod
		}
		if ctx.Err() != nil {
			return nil
		}
		reason := ReasonErrImagePull
		var pe *pullError
		if errors.As(err, &pe) {
			reason = pe.reason
		}
		if reason == ReasonErrImagePull && attempt > 0 {
			reason = ReasonImagePullBackOff
		}
		d := bo.next()
		r.log.Warn("pull module", "container", c.Name, "image", c.Image, "reason", reason, "err", err, "retry_in", d)
		r.waiting(i, reason, err.Error())
		if digest != "" {
			r.update(i, func(s *ctrState) { s.status.ImageID = digest })
		}
		if !sleepCtx(ctx, d) {
			return nil
		}
	}
}

// env is the module's environment: what the agent provides, overridden by
// the container's own variables.
func (r *podRunner) env(c api.Container, port int) []string {
	vars := [][2]string{
		{"POD_NAME", r.pod.Name},
		{"POD_NAMESPACE", r.pod.Namespace},
		{"NODE_NAME", r.a.cfg.Name},
		{"HOSTNAME", r.pod.Name},
	}
	if port > 0 {
		vars = append(vars, [2]string{"PORT", strconv.Itoa(port)})
	}
	for _, e := range c.Env {
		vars = append(vars, [2]string{e.Name, e.Value})
	}
	idx := map[string]int{}
	var out []string
	for _, v := range vars {
		kv := v[0] + "=" + v[1]
		if j, ok := idx[v[0]]; ok {
			out[j] = kv
			continue
		}
		idx[v[0]] = len(out)
		out = append(out, kv)
	}
	return out
}

// memoryLimit is resources.limits.memory in bytes, 0 when unset.
func memoryLimit(c api.Container) int64 {
	if q, ok := c.Resources.Limits["memory"]; ok {
		return q.Value()
	}
	return 0
}

// terminated describes a finished run.
func terminated(code int, err error, started api.Time) *api.ContainerStateTerminated {
	t := &api.ContainerStateTerminated{ExitCode: int32(code), Reason: "Completed", StartedAt: started, FinishedAt: api.Now()}
	if code < 0 {
		t.ExitCode = 1 // the guest did not exit on its own (trap, limit)
	}
	if code != 0 || err != nil {
		t.Reason = "Error"
	}
	if err != nil {
		t.Message = err.Error()
		if errors.Is(err, wasmrt.ErrMemoryLimit) {
			t.Reason = "OOMKilled"
		}
	}
	return t
}

// runCommand runs a command module to completion, restarting it as the
// pod's restart policy says.
func (r *podRunner) runCommand(ctx context.Context, i int, mod *wasmrt.Module) {
	c := r.pod.Spec.Containers[i]
	stdout := r.a.logs.writer(r.pod.Namespace, r.pod.Name, c.Name, "stdout")
	stderr := r.a.logs.writer(r.pod.Namespace, r.pod.Name, c.Name, "stderr")
	defer stdout.Close()
	defer stderr.Close()
	limits := wasmrt.Limits{MemoryBytes: memoryLimit(c)}
	if ads := r.pod.Spec.ActiveDeadlineSeconds; ads != nil && *ads > 0 {
		limits.CPUTime = time.Duration(*ads) * time.Second
	}
	spec := wasmrt.Spec{Name: c.Name, Args: c.Args, Env: r.env(c, 0), Stdout: stdout, Stderr: stderr, Limits: limits}
	policy := r.pod.Spec.RestartPolicy
	bo := newBackoff(restartBackoffMin, restartBackoffMax)
	for {
		started, t0 := api.Now(), time.Now()
		r.update(i, func(s *ctrState) {
			s.status.State = api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: started}}
			s.status.Ready, s.status.Started, s.ran = true, true, true
		})
		code, err := mod.Run(ctx, spec)
		if ctx.Err() != nil {
			return // the pod is stopping
		}
		// Flush partial lines so each run's output is complete.
		_ = stdout.Close()
		_ = stderr.Close()
		term := terminated(code, err, started)
		failed := code != 0 || err != nil
		restart := policy == api.RestartAlways || (policy == api.RestartOnFailure && failed)
		r.log.Info("container exited", "container", c.Name, "exitCode", term.ExitCode, "err", err, "restart", restart)
		if !restart {
			r.update(i, func(s *ctrState) {
				s.status.State = api.ContainerState{Terminated: term}
				s.status.Ready, s.status.Started = false, false
				s.final, s.failed = true, failed
			})
			return
		}
		if time.Since(t0) > healthyRun {
			bo.reset()
		}
		d := bo.next()
		r.update(i, func(s *ctrState) {
			s.status.LastState = api.ContainerState{Terminated: term}
			s.status.RestartCount++
			s.status.State = api.ContainerState{Waiting: &api.ContainerStateWaiting{
				Reason:  ReasonCrashLoopBackOff,
				Message: fmt.Sprintf("back-off %s restarting container %s", d, c.Name),
			}}
			s.status.Ready, s.status.Started = false, false
		})
		if !sleepCtx(ctx, d) {
			return
		}
	}
}

// httpMode maps the API's wasm mode to the runtime's.
func httpMode(mode string) wasmrt.HTTPMode {
	if strings.EqualFold(mode, api.WasmCGI) {
		return wasmrt.CGI
	}
	return wasmrt.Persistent
}
