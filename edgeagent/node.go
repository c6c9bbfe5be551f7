package edgeagent

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/flotilla-edge/flotilla/api"
)

// Well-known node labels the agent owns.
const (
	LabelHostname = "kubernetes.io/hostname"
	LabelOS       = "kubernetes.io/os"
	LabelArch     = "kubernetes.io/arch"
)

// ownLabels are the labels the agent sets on its node: the configured ones
// plus the well-known ones.
func (a *Agent) ownLabels() map[string]string {
	l := map[string]string{}
	for k, v := range a.cfg.Labels {
		l[k] = v
	}
	l[LabelHostname] = a.cfg.Name
	l[LabelOS] = runtime.GOOS
	l[LabelArch] = runtime.GOARCH
	return l
}

// goarm is the GOARM variant the agent was built for ("" off arm).
func goarm() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" {
				return "v" + s.Value
			}
		}
	}
	return ""
}

// fillNode writes everything the agent reports into n, keeping labels the
// user set through the API.
func (a *Agent) fillNode(n *api.Node) {
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	for k, v := range a.ownLabels() {
		n.Labels[k] = v
	}
	cpu := api.MustParseQuantity(strconv.FormatInt(a.cfg.CPUMilli, 10) + "m")
	mem := api.MustParseQuantity(strconv.FormatInt(a.cfg.MemoryBytes, 10))
	n.Status.Capacity = api.ResourceList{"cpu": cpu, "memory": mem}
	n.Status.Allocatable = api.ResourceList{"cpu": cpu, "memory": mem}
	n.Status.Addresses = []api.NodeAddress{
		{Type: "InternalIP", Address: a.cfg.Address},
		{Type: "Hostname", Address: a.cfg.Name},
	}
	n.Status.NodeInfo = api.NodeSystemInfo{
		OperatingSystem: runtime.GOOS,
		Architecture:    runtime.GOARCH,
		Variant:         goarm(),
		KernelVersion:   kernelVersion(),
		AgentVersion:    Version,
	}
	n.Status.DaemonPorts.PodPortRange = fmt.Sprintf("%d-%d", a.cfg.PortRange[0], a.cfg.PortRange[1])
	a.setReady(n)
}

func (a *Agent) setReady(n *api.Node) {
	now := api.Now()
	api.SetCondition(&n.Status.Conditions, api.Condition{
		Type: api.NodeReady, Status: api.ConditionTrue,
		Reason: "AgentReady", Message: "flotilla agent is posting heartbeats",
		LastHeartbeatTime: now,
	})
	a.reportRuntimes(n)
}

// register creates the node object or merges the agent's view into it.
func (a *Agent) register(ctx context.Context) error {
	_, err := a.client.Modify(ctx, "Node", "", a.cfg.Name, func(o api.Object) error {
		a.fillNode(o.(*api.Node))
		return nil
	})
	if errors.Is(err, api.ErrNotFound) {
		n := &api.Node{ObjectMeta: api.ObjectMeta{Name: a.cfg.Name}}
		a.fillNode(n)
		_, err = a.client.Create(ctx, n)
		if errors.Is(err, api.ErrAlreadyExists) {
			return a.register(ctx) // lost a race with another writer; merge instead
		}
	}
	if err != nil {
		return fmt.Errorf("register node %s: %w", a.cfg.Name, err)
	}
	return nil
}

// heartbeat refreshes the Ready condition; a deleted node registers again.
func (a *Agent) heartbeat(ctx context.Context) error {
	_, err := a.client.Modify(ctx, "Node", "", a.cfg.Name, func(o api.Object) error {
		a.setReady(o.(*api.Node))
		return nil
	})
	if errors.Is(err, api.ErrNotFound) {
		return a.register(ctx)
	}
	if err != nil {
		return fmt.Errorf("heartbeat node %s: %w", a.cfg.Name, err)
	}
	return nil
}
