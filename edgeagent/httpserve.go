package edgeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/wasmrt"
)

// serveHTTP serves an HTTP or CGI module on host ports until ctx ends.
func (r *podRunner) serveHTTP(ctx context.Context, i int, mod *wasmrt.Module, mode string, cc *ctrConfig) {
	c := r.pod.Spec.Containers[i]
	decl := c.Ports
	if len(decl) == 0 {
		decl = []api.ContainerPort{{Name: "http", Protocol: "TCP"}} // an HTTP module always gets a port
	}
	lns, ports, err := r.listen(ctx, i, decl)
	if err != nil {
		return // ctx ended while waiting for ports
	}
	defer func() {
		for j, ln := range lns {
			_ = ln.Close()
			r.a.ports.release(int(ports[j].HostPort))
		}
	}()

	stderr := r.a.logs.writer(r.pod.Namespace, r.pod.Name, c.Name, "stderr")
	defer stderr.Close()
	limits := wasmrt.Limits{MemoryBytes: memoryLimit(c)}
	instances := 0
	if c.Wasm != nil {
		if t := c.Wasm.RequestTimeoutSeconds; t != nil {
			limits.CPUTime = time.Duration(*t) * time.Second
		}
		instances = int(c.Wasm.Instances)
	}
	spec := wasmrt.Spec{Name: c.Name, Args: c.Args, Env: r.env(int(ports[0].HostPort), cc.env), Stderr: stderr, Limits: limits, Mounts: cc.mounts, Caller: r.caller()}
	hcfg := wasmrt.HTTPConfig{
		Mode:      httpMode(mode),
		Instances: instances,
		Logger:    r.log.With("container", c.Name),
		OnInstanceExit: func(err error) {
			// The pool replaces the instance; count it as a restart.
			r.update(i, func(s *ctrState) {
				s.status.RestartCount++
				s.status.LastState = api.ContainerState{Terminated: terminated(-1, err, api.Time{})}
			})
		},
	}
	r.event(api.EventNormal, EventCreated, "Created container %s", c.Name)
	h := r.newHandler(ctx, i, mod, spec, hcfg)
	if h == nil {
		return
	}
	defer h.Close()
	// Registered after h.Close is deferred, so removed before it runs.
	for _, ps := range ports {
		if ip, err := netip.ParseAddr(ps.HostIP); err == nil && ps.HostPort > 0 {
			addr := netip.AddrPortFrom(ip, uint16(ps.HostPort))
			r.a.localHTTP.add(addr, h)
			defer r.a.localHTTP.remove(addr, h)
		}
	}

	var serving sync.WaitGroup
	var servers []*http.Server
	for _, ln := range lns {
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
		}
		servers = append(servers, srv)
		serving.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Warn("serve pod port", "addr", ln.Addr().String(), "err", err)
			}
		})
	}
	defer func() {
		for _, srv := range servers {
			_ = srv.Close() // closes the listener and open connections
		}
		serving.Wait()
	}()

	started := api.Now()
	r.update(i, func(s *ctrState) {
		s.status.State = api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: started}}
		s.status.Started, s.ran = true, true
		s.status.Ports = ports
	})
	r.event(api.EventNormal, EventStarted, "Started container %s", c.Name)
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil {
		r.probeReadiness(ctx, i, h.Ready, c, ports)
		return
	}
	r.watchReady(ctx, i, h, ports[0])
}

// localHTTP is the agent's registry of in-process HTTP backends: a wasm
// HTTP pod's hostIP:hostPort -> its handler. servicelb looks a Local
// node port's chosen backend up here and, when found, serves the client
// connection with the handler directly, so the pod sees the client's
// address (docs/networking.md).
type localHTTP struct{ m sync.Map }

func (l *localHTTP) add(addr netip.AddrPort, h http.Handler) { l.m.Store(addr, h) }

// remove drops addr only while it still maps to h.
func (l *localHTTP) remove(addr netip.AddrPort, h http.Handler) { l.m.CompareAndDelete(addr, h) }

// LocalHTTPHandler implements servicelb.LocalHTTP.
func (l *localHTTP) LocalHTTPHandler(addr netip.AddrPort) http.Handler {
	if h, ok := l.m.Load(addr); ok {
		return h.(http.Handler)
	}
	return nil
}

// listen takes one host port per declared container port, retrying while
// the range is exhausted.
func (r *podRunner) listen(ctx context.Context, i int, decl []api.ContainerPort) ([]net.Listener, []api.PortStatus, error) {
	bo := newBackoff(restartBackoffMin, restartBackoffMax)
	for {
		var lns []net.Listener
		var ps []api.PortStatus
		var err error
		for _, d := range decl {
			ln, port, lerr := r.a.ports.listen()
			if lerr != nil {
				err = lerr
				break
			}
			lns = append(lns, ln)
			ps = append(ps, api.PortStatus{Name: d.Name, ContainerPort: d.ContainerPort, HostIP: r.a.cfg.Address, HostPort: int32(port), Protocol: d.Protocol})
		}
		if err == nil {
			return lns, ps, nil
		}
		for j, ln := range lns {
			_ = ln.Close()
			r.a.ports.release(int(ps[j].HostPort))
		}
		r.waiting(i, "PortAllocationFailed", err.Error())
		if !sleepCtx(ctx, bo.next()) {
			return nil, nil, ctx.Err()
		}
	}
}

// newHandler starts the module's instances, retrying with crash-loop
// backoff when they cannot start; nil means ctx ended.
func (r *podRunner) newHandler(ctx context.Context, i int, mod *wasmrt.Module, spec wasmrt.Spec, hcfg wasmrt.HTTPConfig) *wasmrt.HTTPHandler {
	bo := newBackoff(restartBackoffMin, restartBackoffMax)
	for {
		h, err := mod.NewHTTPHandler(ctx, spec, hcfg)
		if err == nil {
			return h
		}
		if ctx.Err() != nil {
			return nil
		}
		d := bo.next()
		r.log.Warn("start http module", "err", err, "retry_in", d)
		r.update(i, func(s *ctrState) {
			s.status.RestartCount++
			s.status.LastState = api.ContainerState{Terminated: terminated(-1, err, api.Time{})}
			s.status.State = api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff, Message: err.Error()}}
			s.status.Ready = false
		})
		r.event(api.EventWarning, EventBackOff, "Back-off restarting failed container %s", spec.Name)
		if !sleepCtx(ctx, d) {
			return nil
		}
	}
}

// watchReady keeps container i's ready flag in step with the handler: it is
// ready when an instance is live and GET / answers without a server error.
func (r *podRunner) watchReady(ctx context.Context, i int, h *wasmrt.HTTPHandler, port api.PortStatus) {
	url := "http://" + net.JoinHostPort(port.HostIP, strconv.Itoa(int(port.HostPort))) + "/"
	ready := false
	// The first look is immediate: a pod's start latency is mostly this
	// wait when the module comes up in a few milliseconds.
	var delay time.Duration
	for n := 0; ; n++ {
		if !sleepCtx(ctx, delay) {
			return
		}
		now := h.Ready()
		// Probe on the way up and every 10th tick after, so a steady pod
		// costs one request every ten seconds.
		if now && (!ready || n%10 == 0) {
			now = r.a.probe(ctx, url) == nil
		}
		if now != ready {
			ready = now
			r.update(i, func(s *ctrState) { s.status.Ready = now })
		}
		if ready {
			delay = time.Second
		} else {
			delay = min(max(2*time.Millisecond, delay*2), time.Second)
		}
	}
}

// probe GETs url and wants an answer below 500.
func (a *Agent) probe(ctx context.Context, url string) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := a.probeClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 500 {
		return fmt.Errorf("probe %s: status %d", url, resp.StatusCode)
	}
	return nil
}
