package edgeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent/oci"
)

// ReasonContainerRuntimeUnavailable: the pod's OCI container waits for
// containerd on its node.
const ReasonContainerRuntimeUnavailable = "ContainerRuntimeUnavailable"

// ociRuntime runs containers through containerd (edgeagent/oci) with host
// networking: the process listens itself on the host port the agent
// allocated and passes in PORT.
type ociRuntime struct{}

func (ociRuntime) run(ctx context.Context, r *podRunner, i int) { r.runOCI(ctx, i) }

func (ociRuntime) exec(ctx context.Context, r *podRunner, i int, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error) {
	rt, _ := r.a.oci.runtime()
	if rt == nil {
		return -1, r.a.errNoOCI()
	}
	r.mu.Lock()
	id := r.ctrs[i].runtimeID
	running := r.ctrs[i].status.State.Running != nil
	r.mu.Unlock()
	if id == "" || !running {
		return -1, fmt.Errorf("container %s is not running", r.pod.Spec.Containers[i].Name)
	}
	return rt.Exec(ctx, id, cmd, stdin, stdout, stderr, tty)
}

// ociID names a container's run i in containerd: unique per pod uid,
// container and restart, and within containerd's 76 characters.
func ociID(uid, container string, restarts int32) string {
	u := strings.ReplaceAll(uid, "-", "")
	if len(u) > 12 {
		u = u[:12]
	}
	if len(container) > 50 {
		container = container[:50]
	}
	return fmt.Sprintf("%s_%s_%d", u, container, restarts)
}

// runOCI runs container i until the pod stops: wait for containerd, adopt
// a container a previous agent left running or pull, configure and start
// one, and restart it as the restart policy says.
func (r *podRunner) runOCI(ctx context.Context, i int) {
	c := r.pod.Spec.Containers[i]
	rt := r.waitContainerd(ctx, i)
	if rt == nil {
		return
	}
	stdout := r.a.logs.writer(r.pod.Namespace, r.pod.Name, c.Name, "stdout")
	stderr := r.a.logs.writer(r.pod.Namespace, r.pod.Name, c.Name, "stderr")
	defer stdout.Close()
	defer stderr.Close()

	var ctr *oci.Container
	var ports []api.PortStatus
	if info, ok := r.a.oci.takeAdoptable(r.pod.UID, c.Name); ok {
		var err error
		if ctr, err = rt.Adopt(ctx, info.ID, stdout, stderr); err != nil {
			r.log.Warn("adopt container; starting a new one", "id", info.ID, "err", err)
			ctr = nil
		} else {
			ports = r.adoptedPorts(c, info)
			r.update(i, func(s *ctrState) { s.status.RestartCount = restartsOf(info) })
		}
	}
	defer func() {
		for _, p := range ports {
			r.a.ports.release(int(p.HostPort))
		}
	}()
	digest := r.pullImage(ctx, i, rt, ctr != nil)
	if ctx.Err() != nil {
		return
	}
	if ctr == nil {
		var ok bool
		if ports, ok = r.reservePorts(ctx, i, c.Ports); !ok {
			return
		}
	}
	grace := 30 * time.Second
	if g := r.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	bo := newBackoff(restartBackoffMin, restartBackoffMax)
	for {
		started := api.Now()
		if ctr == nil {
			cc := r.configure(ctx, i)
			if cc == nil {
				return
			}
			var err error
			ctr, err = r.startOCI(ctx, i, rt, digest, cc, ports, stdout, stderr)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				d := bo.next()
				r.log.Warn("start container", "container", c.Name, "err", err, "retry_in", d)
				r.event(api.EventWarning, EventFailed, "Error: %v", err)
				r.update(i, func(s *ctrState) {
					s.status.State = api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "RunContainerError", Message: err.Error()}}
					s.status.Ready, s.status.Started = false, false
				})
				if !sleepCtx(ctx, d) {
					return
				}
				continue
			}
		}
		t0 := time.Now()
		id := ctr.ID
		r.update(i, func(s *ctrState) {
			s.status.State = api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: started}}
			s.status.Started, s.ran = true, true
			s.status.Ports = ports
			s.status.ContainerID = "containerd://" + id
			s.runtimeID = id
		})
		rctx, stopReady := context.WithCancel(ctx)
		done := ctr.Done()
		readyDone := make(chan struct{})
		go func() {
			defer close(readyDone)
			r.ociReadiness(rctx, i, c, ports, done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
		}
		stopReady()
		<-readyDone
		if ctx.Err() != nil {
			if r.detached() {
				r.log.Info("agent stopping; container keeps running", "container", c.Name, "id", id)
				return
			}
			if err := rt.Stop(context.WithoutCancel(ctx), id, grace); err != nil {
				r.log.Warn("stop container", "container", c.Name, "id", id, "err", err)
			}
			return
		}
		es, werr := ctr.Wait(ctx)
		ctr = nil
		// The run is over: remove it so the next one starts clean.
		if err := rt.Stop(context.WithoutCancel(ctx), id, 0); err != nil {
			r.log.Warn("remove exited container", "id", id, "err", err)
		}
		_ = stdout.Close()
		_ = stderr.Close()
		term := ociTerminated(es, werr, started)
		r.log.Info("container exited", "container", c.Name, "exitCode", term.ExitCode, "reason", term.Reason)
		if !r.exited(ctx, i, term, term.ExitCode != 0 || werr != nil, time.Since(t0), bo) {
			return
		}
	}
}

// waitContainerd returns the runtime, keeping the container waiting with
// ContainerRuntimeUnavailable while containerd does not answer; nil means
// ctx ended first.
func (r *podRunner) waitContainerd(ctx context.Context, i int) *oci.Runtime {
	for {
		if rt, _ := r.a.oci.runtime(); rt != nil {
			return rt
		}
		r.waiting(i, ReasonContainerRuntimeUnavailable, r.a.errNoOCI().Error())
		if !sleepCtx(ctx, time.Second) {
			return nil
		}
	}
}

// pullImage makes the image available (from an import, else the registry
// unless pulls are off), retrying as the kubelet does: ErrImagePull right
// after a failure, then ImagePullBackOff until the next attempt, which an
// image import brings forward. It returns the image digest ("" when ctx
// ended). An adopted container keeps running whatever the image's state.
func (r *podRunner) pullImage(ctx context.Context, i int, rt *oci.Runtime, adopted bool) string {
	c := r.pod.Spec.Containers[i]
	bo := newBackoff(pullBackoffMin, pullBackoffMax)
	for {
		if !adopted {
			r.event(api.EventNormal, EventPulling, "Pulling image %q", c.Image)
		}
		t0 := time.Now()
		digest, err := rt.EnsureImage(ctx, c.Image, !r.a.cfg.Containerd.NoRegistryPull)
		if err == nil {
			if !adopted {
				r.event(api.EventNormal, EventPulled, "Successfully pulled image %q (%s) in %s", c.Image, digest, time.Since(t0).Round(time.Millisecond))
			}
			r.update(i, func(s *ctrState) { s.status.ImageID = digest })
			return digest
		}
		if ctx.Err() != nil || adopted {
			return ""
		}
		d := bo.next()
		r.log.Warn("pull image", "container", c.Name, "image", c.Image, "err", err, "retry_in", d)
		r.event(api.EventWarning, EventFailed, "Failed to pull image %q: %v", c.Image, err)
		r.event(api.EventWarning, ReasonErrImagePull, "Error: %s", ReasonErrImagePull)
		r.waiting(i, ReasonErrImagePull, err.Error())
		imported := r.a.oci.importedSignal()
		first := min(d/2, time.Second)
		if !sleepOrSignal(ctx, first, imported) {
			return ""
		}
		r.waiting(i, ReasonImagePullBackOff, fmt.Sprintf("Back-off pulling image %q: %v", c.Image, err))
		r.event(api.EventWarning, EventBackOff, "Back-off pulling image %q", c.Image)
		if !sleepOrSignal(ctx, d-first, imported) {
			return ""
		}
	}
}

// sleepOrSignal waits d, until sig is closed, or until ctx ends; it
// reports whether ctx is still live.
func sleepOrSignal(ctx context.Context, d time.Duration, sig <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-sig:
	case <-ctx.Done():
		return false
	}
	return true
}

// reservePorts allocates one host port per declared container port,
// retrying while the range is exhausted; false means ctx ended.
func (r *podRunner) reservePorts(ctx context.Context, i int, decl []api.ContainerPort) ([]api.PortStatus, bool) {
	bo := newBackoff(restartBackoffMin, restartBackoffMax)
	for {
		var ps []api.PortStatus
		var err error
		for _, d := range decl {
			port, perr := r.a.ports.reserve()
			if perr != nil {
				err = perr
				break
			}
			ps = append(ps, api.PortStatus{Name: d.Name, ContainerPort: d.ContainerPort, HostIP: r.a.cfg.Address, HostPort: int32(port), Protocol: d.Protocol})
		}
		if err == nil {
			return ps, true
		}
		for _, p := range ps {
			r.a.ports.release(int(p.HostPort))
		}
		r.waiting(i, "PortAllocationFailed", err.Error())
		if !sleepCtx(ctx, bo.next()) {
			return nil, false
		}
	}
}

// adoptedPorts are the host ports an adopted container was given (from
// its label), claimed again so no other pod gets them.
func (r *podRunner) adoptedPorts(c api.Container, info oci.Info) []api.PortStatus {
	hp := strings.Split(info.Labels[labelHostPorts], ",")
	var ps []api.PortStatus
	for j, d := range c.Ports {
		if j >= len(hp) {
			break
		}
		port, err := strconv.Atoi(hp[j])
		if err != nil {
			continue
		}
		r.a.ports.claim(port)
		ps = append(ps, api.PortStatus{Name: d.Name, ContainerPort: d.ContainerPort, HostIP: r.a.cfg.Address, HostPort: int32(port), Protocol: d.Protocol})
	}
	return ps
}

// startOCI starts one run of container i.
func (r *podRunner) startOCI(ctx context.Context, i int, rt *oci.Runtime, digest string, cc *ctrConfig, ports []api.PortStatus, stdout, stderr io.Writer) (*oci.Container, error) {
	c := r.pod.Spec.Containers[i]
	r.mu.Lock()
	restarts := r.ctrs[i].status.RestartCount
	r.mu.Unlock()
	port := 0
	var hostPorts []string
	for _, p := range ports {
		hostPorts = append(hostPorts, strconv.Itoa(int(p.HostPort)))
	}
	if len(ports) > 0 {
		port = int(ports[0].HostPort)
	}
	spec := oci.Spec{
		ID:          ociID(r.pod.UID, c.Name, restarts),
		Image:       c.Image,
		Command:     c.Command,
		Args:        c.Args,
		WorkingDir:  c.WorkingDir,
		ResolvConf:  r.a.ociResolvConf(r.pod.Namespace),
		Env:         r.env(port, cc.env),
		MemoryLimit: memoryLimit(c),
		Stdout:      stdout,
		Stderr:      stderr,
		Labels: map[string]string{
			labelPodUID: r.pod.UID, labelPodNamespace: r.pod.Namespace, labelPodName: r.pod.Name,
			labelContainer: c.Name, labelRestarts: strconv.Itoa(int(restarts)),
			labelHostPorts: strings.Join(hostPorts, ","),
		},
	}
	if q, ok := c.Resources.Limits["cpu"]; ok {
		spec.CPUMilli = q.MilliValue()
	}
	for _, m := range cc.mounts {
		spec.Mounts = append(spec.Mounts, oci.Mount{HostPath: m.HostPath, ContainerPath: m.GuestPath, ReadOnly: m.ReadOnly})
	}
	// A run left over from an earlier attempt (e.g. an agent killed
	// between create and start) would block the ID.
	_ = rt.Stop(ctx, spec.ID, 0)
	r.event(api.EventNormal, EventCreated, "Created container %s", c.Name)
	ctr, err := rt.Start(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("start container %s (image %s, %s): %w", c.Name, c.Image, digest, err)
	}
	r.event(api.EventNormal, EventStarted, "Started container %s", c.Name)
	return ctr, nil
}

// ociReadiness keeps container i's ready flag: its readinessProbe when it
// has an httpGet one; else a TCP connect to its first host port; else
// ready as soon as it runs. It returns when ctx ends.
func (r *podRunner) ociReadiness(ctx context.Context, i int, c api.Container, ports []api.PortStatus, done <-chan struct{}) {
	alive := func() bool {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil {
		r.probeReadiness(ctx, i, alive, c, ports)
		return
	}
	if len(ports) == 0 {
		r.update(i, func(s *ctrState) { s.status.Ready = true })
		return
	}
	addr := net.JoinHostPort(ports[0].HostIP, strconv.Itoa(int(ports[0].HostPort)))
	ready := false
	delay := 50 * time.Millisecond
	for {
		if !sleepCtx(ctx, delay) {
			return
		}
		now := alive() && tcpProbe(ctx, addr) == nil
		if now != ready {
			ready = now
			r.update(i, func(s *ctrState) { s.status.Ready = now })
		}
		if ready {
			delay = time.Second
		} else {
			delay = min(delay*2, time.Second)
		}
	}
}

// tcpProbe connects to addr, as a tcpSocket probe does.
func tcpProbe(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// ociTerminated maps an OCI exit to the container's terminated state.
func ociTerminated(es oci.ExitStatus, err error, started api.Time) *api.ContainerStateTerminated {
	t := &api.ContainerStateTerminated{ExitCode: int32(es.Code), Reason: es.Reason, StartedAt: started, FinishedAt: api.Now()}
	if err != nil {
		t.ExitCode, t.Reason, t.Message = 1, oci.ReasonError, err.Error()
		if errors.Is(err, context.Canceled) {
			t.Message = "lost track of the container"
		}
	}
	if t.Reason == "" {
		t.Reason = oci.ReasonError
	}
	return t
}
