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

// Config retry bounds: a missing ConfigMap or Secret is looked for again
// with this backoff until it appears.
var (
	configRetryMin = 500 * time.Millisecond
	configRetryMax = 10 * time.Second
)

// ctrConfig is what a container run needs besides its module: the
// variables from env and envFrom, and its volumes as WASI preopens.
type ctrConfig struct {
	env    [][2]string
	mounts []wasmrt.Mount
}

// runContainer runs container i through its runtime until the pod stops.
func (r *podRunner) runContainer(ctx context.Context, i int) {
	c := r.pod.Spec.Containers[i]
	rt, ok := runtimes[c.Runtime]
	if !ok {
		r.waiting(i, "UnsupportedRuntime", fmt.Sprintf("runtime %q is not supported by this node", c.Runtime))
		return
	}
	rt.run(ctx, r, i)
}

// runWasm pulls container i's module and runs it in its mode until the
// pod stops.
func (r *podRunner) runWasm(ctx context.Context, i int) {
	c := r.pod.Spec.Containers[i]
	mod := r.pull(ctx, i)
	if mod == nil {
		return // stopped while pulling
	}
	cc := r.configure(ctx, i)
	if cc == nil {
		return // stopped while waiting for its configuration
	}
	mode := api.WasmCommand
	if c.Wasm != nil {
		mode = c.Wasm.Mode
	}
	switch mode {
	case api.WasmCommand:
		r.runCommand(ctx, i, mod, cc)
	case api.WasmHTTP, api.WasmCGI:
		r.serveHTTP(ctx, i, mod, mode, cc)
	default:
		r.waiting(i, "InvalidWasmMode", fmt.Sprintf("unknown wasm mode %q", mode))
	}
}

// pull fetches and compiles the module, retrying with a doubling backoff;
// nil means ctx ended first. As the kubelet does, the waiting reason is
// ErrImagePull right after a failed attempt and ImagePullBackOff while it
// waits for the next one.
func (r *podRunner) pull(ctx context.Context, i int) *wasmrt.Module {
	c := r.pod.Spec.Containers[i]
	bo := newBackoff(pullBackoffMin, pullBackoffMax)
	for {
		r.event(api.EventNormal, EventPulling, "Pulling module %q", c.Image)
		t0 := time.Now()
		mod, digest, err := r.a.modules.get(ctx, c.Image)
		if err == nil {
			r.event(api.EventNormal, EventPulled, "Successfully pulled module %s (%s) in %s", c.Image, digest, time.Since(t0).Round(time.Millisecond))
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
		d := bo.next()
		r.log.Warn("pull module", "container", c.Name, "image", c.Image, "reason", reason, "err", err, "retry_in", d)
		r.event(api.EventWarning, EventFailed, "Failed to pull module %q: %v", c.Image, err)
		r.event(api.EventWarning, reason, "Error: %s", reason)
		r.waiting(i, reason, err.Error())
		if digest != "" {
			r.update(i, func(s *ctrState) { s.status.ImageID = digest })
		}
		if reason != ReasonErrImagePull {
			if !sleepCtx(ctx, d) {
				return nil
			}
			continue
		}
		// Show ErrImagePull for a moment, then ImagePullBackOff for the
		// rest of the delay.
		first := min(d/2, time.Second)
		if !sleepCtx(ctx, first) {
			return nil
		}
		r.waiting(i, ReasonImagePullBackOff, fmt.Sprintf("Back-off pulling module %q: %v", c.Image, err))
		r.event(api.EventWarning, EventBackOff, "Back-off pulling module %q", c.Image)
		if !sleepCtx(ctx, d-first) {
			return nil
		}
	}
}

// configure resolves container i's environment and volumes, waiting with
// CreateContainerConfigError (and retrying) while a ConfigMap, Secret, key
// or host directory is missing; nil means ctx ended first.
func (r *podRunner) configure(ctx context.Context, i int) *ctrConfig {
	c := r.pod.Spec.Containers[i]
	bo := newBackoff(configRetryMin, configRetryMax)
	for {
		cc, err := r.tryConfigure(ctx, c)
		if err == nil {
			return cc
		}
		if ctx.Err() != nil {
			return nil
		}
		d := bo.next()
		r.log.Warn("container configuration", "container", c.Name, "err", err, "retry_in", d)
		r.waiting(i, ReasonCreateContainerConfigError, err.Error())
		r.event(api.EventWarning, EventFailed, "Error: %v", err)
		if !sleepCtx(ctx, d) {
			return nil
		}
	}
}

func (r *podRunner) tryConfigure(ctx context.Context, c api.Container) (*ctrConfig, error) {
	env, err := r.userEnv(ctx, c)
	if err != nil {
		return nil, err
	}
	cc := &ctrConfig{env: env}
	if len(c.VolumeMounts) == 0 {
		return cc, nil
	}
	vols, err := r.prepareVolumes(ctx)
	if err != nil {
		return nil, err
	}
	if cc.mounts, err = mounts(c, vols); err != nil {
		return nil, err
	}
	return cc, nil
}

// env is the module's environment: what the agent provides, overridden by
// the container's own variables (envFrom, then env).
func (r *podRunner) env(port int, user [][2]string) []string {
	vars := [][2]string{
		{"POD_NAME", r.pod.Name},
		{"POD_NAMESPACE", r.pod.Namespace},
		{"NODE_NAME", r.a.cfg.Name},
		{"HOSTNAME", r.pod.Name},
	}
	if port > 0 {
		vars = append(vars, [2]string{"PORT", strconv.Itoa(port)})
	}
	vars = append(vars, user...)
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
// pod's restart policy says. Each restart resolves the configuration
// again, as a new Kubernetes container would.
func (r *podRunner) runCommand(ctx context.Context, i int, mod *wasmrt.Module, cc *ctrConfig) {
	c := r.pod.Spec.Containers[i]
	stdout := r.a.logs.writer(r.pod.Namespace, r.pod.Name, c.Name, "stdout")
	stderr := r.a.logs.writer(r.pod.Namespace, r.pod.Name, c.Name, "stderr")
	defer stdout.Close()
	defer stderr.Close()
	limits := wasmrt.Limits{MemoryBytes: memoryLimit(c)}
	if ads := r.pod.Spec.ActiveDeadlineSeconds; ads != nil && *ads > 0 {
		limits.CPUTime = time.Duration(*ads) * time.Second
	}
	bo := newBackoff(restartBackoffMin, restartBackoffMax)
	for {
		spec := wasmrt.Spec{Name: c.Name, Args: c.Args, Env: r.env(0, cc.env), Stdout: stdout, Stderr: stderr, Limits: limits, Mounts: cc.mounts, Caller: r.caller()}
		started, t0 := api.Now(), time.Now()
		r.event(api.EventNormal, EventCreated, "Created container %s", c.Name)
		r.update(i, func(s *ctrState) {
			s.status.State = api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: started}}
			s.status.Ready, s.status.Started, s.ran = true, true, true
		})
		r.event(api.EventNormal, EventStarted, "Started container %s", c.Name)
		code, err := mod.Run(ctx, spec)
		if ctx.Err() != nil {
			return // the pod is stopping
		}
		// Flush partial lines so each run's output is complete.
		_ = stdout.Close()
		_ = stderr.Close()
		term := terminated(code, err, started)
		r.log.Info("container exited", "container", c.Name, "exitCode", term.ExitCode, "err", err)
		if !r.exited(ctx, i, term, code != 0 || err != nil, time.Since(t0), bo) {
			return
		}
		if cc = r.configure(ctx, i); cc == nil {
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

// exited records how container i's run ended and, when the restart policy
// restarts it, waits out the crash-loop backoff. It reports whether to run
// the container again; both runtimes share it.
func (r *podRunner) exited(ctx context.Context, i int, term *api.ContainerStateTerminated, failed bool, ran time.Duration, bo *backoff) bool {
	policy := r.pod.Spec.RestartPolicy
	if policy != api.RestartAlways && (policy != api.RestartOnFailure || !failed) {
		r.update(i, func(s *ctrState) {
			s.status.State = api.ContainerState{Terminated: term}
			s.status.Ready, s.status.Started = false, false
			s.final, s.failed = true, failed
			s.runtimeID = ""
		})
		return false
	}
	if ran > healthyRun {
		bo.reset()
	}
	d := bo.next()
	name := r.pod.Spec.Containers[i].Name
	r.update(i, func(s *ctrState) {
		s.status.LastState = api.ContainerState{Terminated: term}
		s.status.RestartCount++
		s.status.State = api.ContainerState{Waiting: &api.ContainerStateWaiting{
			Reason:  ReasonCrashLoopBackOff,
			Message: fmt.Sprintf("back-off %s restarting container %s", d, name),
		}}
		s.status.Ready, s.status.Started = false, false
		s.runtimeID = ""
	})
	r.event(api.EventWarning, EventBackOff, "Back-off restarting failed container %s", name)
	return sleepCtx(ctx, d)
}
