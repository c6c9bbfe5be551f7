// Package servicelb is the agent side of Services: it watches Services and
// EndpointSlices of every namespace and programs the node's datapath —
// the socket load balancer of package netpolicy for cluster IPs (and
// external IPs) used from the node, and its own listeners for node ports
// and LoadBalancer ports reached from outside. See docs/networking.md.
package servicelb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/netpolicy"
	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
	"github.com/flotilla-edge/flotilla/netpolicy/policy"
	"github.com/flotilla-edge/flotilla/netpolicy/userspace"
)

// Config configures the agent's service load balancing.
type Config struct {
	Client   *client.Client
	NodeName string
	// NodeAddress is where node ports are answered.
	NodeAddress string
	// Mode is the netpolicy mode: auto (default), ebpf or userspace.
	Mode string
	// CgroupPath is the cgroup v2 directory the eBPF LB attaches to;
	// default the agent's own cgroup (OwnCgroup).
	CgroupPath string
	// PinDir holds the pinned maps and links; default
	// /sys/fs/bpf/flotilla/<node>, so two agents on one host never share.
	PinDir string
	// NetNS is passed to the userspace LB (tests).
	NetNS string
	// Admit, when set, is installed on a userspace LB
	// (userspace.LB.SetAdmit): the NetworkPolicy check of the proxy. The
	// eBPF LB does not use it.
	Admit userspace.AdmitFunc
	// Policy alone makes the node-port listeners and the TC node-port
	// translation admit a client only to backends whose ingress rules
	// allow its address.
	//
	// Policy and PodCgroups, both set, make an eBPF LB enforce
	// NetworkPolicy at connect time for the local pods PodCgroups lists
	// (cgroup v2 directory -> pod): each cgroup gets its pod's
	// policy.ClientRules (ebpflb.SetPolicy). The LB's CgroupPath must be
	// an ancestor of those cgroups, or the programs never see them.
	Policy     PolicySource
	PodCgroups func() map[string]policy.PodRef
	// LocalHTTP, when set, finds the HTTP handler this process serves on
	// a backend address (a wasm HTTP pod's hostIP:hostPort). A node-port
	// listener of an externalTrafficPolicy Local service hands a
	// connection for such a backend to the handler in-process rather
	// than relaying it, so the pod sees the client's address.
	LocalHTTP LocalHTTP
	Log       *slog.Logger
}

// LocalHTTP looks up the in-process HTTP handler serving addr; nil when
// addr is not served by this process.
type LocalHTTP interface {
	LocalHTTPHandler(addr netip.AddrPort) http.Handler
}

// ConditionType is the node condition reporting the active LB mode.
const ConditionType = "ServiceLoadBalancer"

// Controller runs the watches and keeps the datapath in step.
type Controller struct {
	cfg    Config
	lb     netpolicy.LB
	reason string
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu       sync.Mutex
	services map[string]*api.Service       // ns/name
	slices   map[string]*api.EndpointSlice // ns/name
	synced   map[string]bool               // kind -> initial list seen
	lns      listeners
	applied  map[string]netpolicy.Service // "vip:port/proto" -> what LB holds
	// np translates node ports of Local services at TC (eBPF mode
	// only; nil when it could not attach).
	np *nodePorts
	// noVIPs: the LB cannot serve cluster IPs here (userspace without
	// root); only listeners are kept.
	noVIPs bool
}

// Start creates the load balancer, reports its mode on the Node and starts
// following Services and EndpointSlices. A load balancer that cannot be
// created at all is reported on the node and node ports still work.
func Start(cfg Config) (*Controller, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Client == nil || cfg.NodeName == "" {
		return nil, errors.New("servicelb: a client and a node name are required")
	}
	if cfg.PinDir == "" {
		cfg.PinDir = DefaultPinDir(cfg.NodeName)
	}
	c := &Controller{cfg: cfg, log: cfg.Log.With("component", "servicelb"), kick: make(chan struct{}, 1),
		services: map[string]*api.Service{}, slices: map[string]*api.EndpointSlice{}, synced: map[string]bool{},
		applied: map[string]netpolicy.Service{}}
	c.lns = listeners{log: c.log, running: map[string]*proxy{}, localHTTP: cfg.LocalHTTP, admit: listenerAdmit(cfg.Policy)}
	cgroup := cfg.CgroupPath
	if cgroup == "" {
		if cg, err := OwnCgroup(); err == nil {
			cgroup = cg
		}
	}
	lb, reason, err := netpolicy.New(cfg.Mode, netpolicy.Config{CgroupPath: cgroup, PinDir: cfg.PinDir, NetNS: cfg.NetNS})
	if err != nil {
		c.reason = err.Error()
		c.log.Error("no service load balancer: cluster IPs will not work on this node", "err", err)
	} else {
		c.lb, c.reason = lb, reason
		if us, ok := lb.(*userspace.LB); ok && cfg.Admit != nil {
			us.SetAdmit(cfg.Admit)
		}
		if _, ok := lb.(*ebpflb.LB); ok {
			var why string
			c.np, why = startNodePorts(cfg, c.log)
			c.reason += "; " + why
		} else if os.Geteuid() == 0 {
			// An earlier agent of this node may have run eBPF.
			if err := Clear(cfg.PinDir); err != nil {
				c.log.Warn("remove the eBPF datapath an earlier agent left", "pin_dir", cfg.PinDir, "err", err)
			}
		} else {
			// Every VIP would fail to go on lo: do not try.
			c.noVIPs = true
			c.reason += "; not root: cluster IPs cannot be added to lo, so only wasm pods reach services (their host calls dial endpoints directly); node ports work"
		}
		c.log.Info("service load balancer", "mode", lb.Mode(), "reason", c.reason)
		// What an earlier agent left in pinned maps is known, so stale
		// services are removed on the first sync.
		for _, s := range lb.Services() {
			c.applied[vipKey(s)] = s
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Go(func() { c.reportMode(ctx) })
	c.wg.Go(func() { c.follow(ctx, "Service") })
	c.wg.Go(func() { c.follow(ctx, "EndpointSlice") })
	c.wg.Go(func() { c.syncLoop(ctx) })
	if c.np != nil && cfg.Policy != nil {
		c.wg.Go(func() { c.pokeOnPolicy(ctx) })
	}
	if eb, ok := c.lb.(*ebpflb.LB); ok && cfg.Policy != nil && cfg.PodCgroups != nil {
		c.wg.Go(func() { c.policyLoop(ctx, eb) })
	}
	return c, nil
}

// Mode is the active LB mode ("ebpf", "userspace"), "" when none.
func (c *Controller) Mode() string {
	if c.lb == nil {
		return ""
	}
	return c.lb.Mode()
}

// Reason says why the mode was chosen.
func (c *Controller) Reason() string { return c.reason }

// Stop ends the watches and the node-port listeners and closes the LB's
// handles. Pinned eBPF links and maps stay, so connections to cluster IPs
// keep working while the agent restarts; the next Start picks them up.
func (c *Controller) Stop() {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	c.lns.closeAll()
	if c.np != nil {
		c.np.close()
	}
	c.mu.Unlock()
	if c.lb != nil {
		if err := c.lb.Close(); err != nil {
			c.log.Warn("close load balancer", "err", err)
		}
	}
}

// follow mirrors one kind into memory; see client.Reflect.
func (c *Controller) follow(ctx context.Context, kind string) {
	c.cfg.Client.Reflect(ctx, kind, mirror{c: c, kind: kind}, c.log)
}

// mirror hands one kind's objects to the controller.
type mirror struct {
	c    *Controller
	kind string
}

func (m mirror) Replace(objs []api.Object) {
	fresh := make(map[string]api.Object, len(objs))
	for _, o := range objs {
		fresh[o.GetMeta().Namespace+"/"+o.GetMeta().Name] = o
	}
	m.c.replace(m.kind, fresh)
}

func (m mirror) Apply(o api.Object, deleted bool) {
	m.c.update(m.kind, o.GetMeta().Namespace+"/"+o.GetMeta().Name, deleted, o)
}

func (c *Controller) replace(kind string, objs map[string]api.Object) {
	c.mu.Lock()
	switch kind {
	case "Service":
		c.services = map[string]*api.Service{}
		for k, o := range objs {
			c.services[k] = o.(*api.Service)
		}
	case "EndpointSlice":
		c.slices = map[string]*api.EndpointSlice{}
		for k, o := range objs {
			c.slices[k] = o.(*api.EndpointSlice)
		}
	}
	c.synced[kind] = true
	c.mu.Unlock()
	c.poke()
}

func (c *Controller) update(kind, k string, deleted bool, o api.Object) {
	c.mu.Lock()
	switch kind {
	case "Service":
		if deleted {
			delete(c.services, k)
		} else {
			c.services[k] = o.(*api.Service)
		}
	case "EndpointSlice":
		if deleted {
			delete(c.slices, k)
		} else {
			c.slices[k] = o.(*api.EndpointSlice)
		}
	}
	c.mu.Unlock()
	c.poke()
}

// pokeOnPolicy resyncs after every policy change: the node-port
// translation holds each backend's admitted clients.
func (c *Controller) pokeOnPolicy(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.cfg.Policy.Changed():
			c.poke()
		}
	}
}

func (c *Controller) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// syncLoop programs the datapath after every change, and every 30 s in
// case a write to the LB failed.
func (c *Controller) syncLoop(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		}
		c.sync()
	}
}

func vipKey(s netpolicy.Service) string {
	return fmt.Sprintf("%s:%d/%s", s.VIP, s.Port, s.Protocol)
}

// sync computes the desired state and applies the difference.
func (c *Controller) sync() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.synced["Service"] || !c.synced["EndpointSlice"] {
		return // a partial view would delete what is still wanted
	}
	svcs := make([]*api.Service, 0, len(c.services))
	for _, s := range c.services {
		svcs = append(svcs, s)
	}
	addr, _ := netip.ParseAddr(c.cfg.NodeAddress)
	d := Compute(svcs, c.slices, c.cfg.NodeName, addr, localAddrs())
	c.lns.sync(d.Listeners)
	if c.np != nil {
		var eng *policy.Engine
		if c.cfg.Policy != nil && c.cfg.Policy.Synced() {
			eng = c.cfg.Policy.Engine()
		}
		c.np.sync(d.Listeners, c.cfg.Policy != nil, eng)
	}
	if c.lb == nil || c.noVIPs {
		return
	}
	want := map[string]netpolicy.Service{}
	for _, s := range d.VIPs {
		k := vipKey(s)
		if _, dup := want[k]; dup {
			continue
		}
		want[k] = s
		if old, ok := c.applied[k]; ok && sameService(old, s) {
			continue
		}
		if err := c.lb.Upsert(s); err != nil {
			c.log.Warn("program service", "vip", k, "err", err)
			continue
		}
		c.applied[k] = s
	}
	for k, s := range c.applied {
		if _, ok := want[k]; ok {
			continue
		}
		if err := c.lb.Delete(s.VIP, s.Port, s.Protocol); err != nil && !errors.Is(err, netpolicy.ErrNotFound) {
			c.log.Warn("remove service", "vip", k, "err", err)
			continue
		}
		delete(c.applied, k)
	}
}

func sameService(a, b netpolicy.Service) bool {
	if a.AffinityTimeout != b.AffinityTimeout || len(a.Backends) != len(b.Backends) {
		return false
	}
	for i := range a.Backends {
		if a.Backends[i] != b.Backends[i] {
			return false
		}
	}
	return true
}

// reportMode writes the ServiceLoadBalancer condition on the Node,
// retrying until the node exists and the write lands.
func (c *Controller) reportMode(ctx context.Context) {
	cond := api.Condition{Type: ConditionType, Status: api.ConditionTrue, Message: c.reason}
	switch {
	case c.lb == nil:
		cond.Status, cond.Reason = api.ConditionFalse, "Unavailable"
	case c.lb.Mode() == netpolicy.ModeEBPF:
		cond.Reason = "EBPF"
	default:
		cond.Reason = "Userspace"
	}
	delay := 200 * time.Millisecond
	for {
		_, err := c.cfg.Client.Modify(ctx, "Node", "", c.cfg.NodeName, func(o api.Object) error {
			n := o.(*api.Node)
			cond.LastTransitionTime = api.Now()
			api.SetCondition(&n.Status.Conditions, cond)
			return nil
		})
		if err == nil {
			return
		}
		c.log.Debug("report load balancer mode", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// Run starts the controller, keeps it until ctx ends and stops it; the
// agent runs it as one of its loops. A start failure is logged: pods keep
// running without services. Mode "off" balances nothing: it only removes
// what an earlier eBPF agent of this node pinned, which would otherwise
// keep translating, and returns.
func Run(ctx context.Context, cfg Config) {
	if cfg.Mode == "off" {
		if os.Geteuid() != 0 {
			return
		}
		if cfg.Log == nil {
			cfg.Log = slog.Default()
		}
		pinDir := cfg.PinDir
		if pinDir == "" {
			pinDir = DefaultPinDir(cfg.NodeName)
		}
		if err := Clear(pinDir); err != nil {
			cfg.Log.Warn("remove the eBPF service datapath an earlier agent left", "pin_dir", pinDir, "err", err)
		}
		return
	}
	c, err := Start(cfg)
	if err != nil {
		cfg.Log.Error("service load balancing not started", "err", err)
		return
	}
	<-ctx.Done()
	c.Stop()
}

// localAddrs returns a check for the addresses this host holds now (an
// external IP may be added to an interface at any time; sync runs at
// least every 30 s).
func localAddrs() func(netip.Addr) bool {
	set := map[netip.Addr]bool{}
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				set[p.Addr().Unmap()] = true
			}
		}
	}
	return func(a netip.Addr) bool { return set[a.Unmap()] }
}
