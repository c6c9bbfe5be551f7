package edgeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// probeSettings are a readiness probe's timings with Kubernetes' defaults
// filled in: period 10s, timeout 1s, success 1, failure 3, no delay.
type probeSettings struct {
	initialDelay, period, timeout time.Duration
	success, failure              int
}

func probeSettingsOf(p *api.Probe) probeSettings {
	ps := probeSettings{
		initialDelay: time.Duration(p.InitialDelaySeconds) * time.Second,
		period:       time.Duration(p.PeriodSeconds) * time.Second,
		timeout:      time.Duration(p.TimeoutSeconds) * time.Second,
		success:      int(p.SuccessThreshold),
		failure:      int(p.FailureThreshold),
	}
	if ps.period <= 0 {
		ps.period = 10 * time.Second
	}
	if ps.timeout <= 0 {
		ps.timeout = time.Second
	}
	if ps.success <= 0 {
		ps.success = 1
	}
	if ps.failure <= 0 {
		ps.failure = 3
	}
	return ps
}

// probeURL is where an httpGet probe is sent: the host port serving the
// container port it names (a number or a port name; the first port when
// unset). Container ports are virtual for wasm modules, so the probe must
// go to the agent's listener for that port.
func probeURL(c api.Container, ports []api.PortStatus, g *api.HTTPGetAction) (string, error) {
	if len(ports) == 0 {
		return "", fmt.Errorf("container %s has no port to probe", c.Name)
	}
	port := ports[0]
	if g.Port != nil {
		found := false
		for _, p := range ports {
			if (g.Port.IsString && p.Name == g.Port.StrVal) || (!g.Port.IsString && p.ContainerPort == g.Port.IntVal) {
				port, found = p, true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("port %s is not a port of container %s", g.Port, c.Name)
		}
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return "http://" + net.JoinHostPort(port.HostIP, strconv.Itoa(int(port.HostPort))) + path, nil
}

// probeReadiness runs container i's readiness probe until ctx ends. The
// container starts unready, becomes ready after successThreshold
// successes in a row and unready again after failureThreshold failures in
// a row; the probe never stops, so a pod can go unready and come back.
// Status is written only when readiness flips.
// alive tells whether the container can serve at all (a live module
// instance; a running process).
func (r *podRunner) probeReadiness(ctx context.Context, i int, alive func() bool, c api.Container, ports []api.PortStatus) {
	ps := probeSettingsOf(c.ReadinessProbe)
	url, urlErr := probeURL(c, ports, c.ReadinessProbe.HTTPGet)
	if !sleepCtx(ctx, ps.initialDelay) {
		return
	}
	ready := false
	succ, fail := 0, 0
	for {
		err := urlErr
		if err == nil {
			if !alive() {
				err = errors.New("container is not running")
			} else {
				err = r.a.httpProbe(ctx, url, ps.timeout)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			succ, fail = succ+1, 0
			if !ready && succ >= ps.success {
				ready = true
				r.update(i, func(s *ctrState) { s.status.Ready = true })
			}
		} else {
			succ, fail = 0, fail+1
			r.event(api.EventWarning, EventUnhealthy, "Readiness probe failed: %v", err)
			if ready && fail >= ps.failure {
				ready = false
				r.update(i, func(s *ctrState) { s.status.Ready = false })
			}
		}
		if !sleepCtx(ctx, ps.period) {
			return
		}
	}
}

// httpProbe GETs url as the kubelet does: a status from 200 to 399 within
// timeout is a success.
func (a *Agent) httpProbe(ctx context.Context, url string, timeout time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "flotilla-probe/"+Version)
	resp, err := a.probeClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}
