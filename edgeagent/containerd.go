package edgeagent

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent/oci"
)

// DefaultContainerdSocket is the system containerd's socket (Debian's
// containerd package); K3s's is /run/k3s/containerd/containerd.sock.
const DefaultContainerdSocket = "/run/containerd/containerd.sock"

// Labels the agent puts on its containerd containers, so a restarted
// agent can tell which pod container each one is (adoption).
const (
	labelPodUID       = "flotilla.pod.uid"
	labelPodNamespace = "flotilla.pod.namespace"
	labelPodName      = "flotilla.pod.name"
	labelContainer    = "flotilla.container.name"
	labelRestarts     = "flotilla.container.restarts"
	labelHostPorts    = "flotilla.container.hostports"
)

// ContainerdConfig configures the agent's OCI runtime.
type ContainerdConfig struct {
	// Socket is containerd's gRPC socket; DefaultContainerdSocket when
	// empty, "off" disables OCI containers.
	Socket string
	// Namespace is the containerd namespace of the agent's containers;
	// default "flotilla". Two agents on one host need two namespaces.
	Namespace string
	// Snapshotter: empty picks the namespace's default label, else
	// overlayfs when it works, else native.
	Snapshotter string
	// LogDir holds the containers' output files; default
	// DataDir/containers. It must survive agent restarts.
	LogDir string
	// NoRegistryPull makes a missing image an ErrImagePull at once instead
	// of a registry pull (air-gapped fleets import images instead).
	NoRegistryPull bool
	// RetryInterval is how often a missing containerd is dialled again;
	// default 10s.
	RetryInterval time.Duration
	// Registries sets mirrors and credentials by registry host
	// ("docker.io", "ghcr.io", "registry.local:5000").
	Registries map[string]oci.Registry
}

func (c *ContainerdConfig) setDefaults(dataDir string) {
	if c.Socket == "" {
		c.Socket = DefaultContainerdSocket
	}
	if c.Namespace == "" {
		c.Namespace = oci.DefaultNamespace
	}
	if c.LogDir == "" {
		c.LogDir = filepath.Join(dataDir, "containers")
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 10 * time.Second
	}
}

// ociState is the agent's connection to containerd: nil runtime and the
// dial error while containerd does not answer.
type ociState struct {
	mu  sync.Mutex
	rt  *oci.Runtime
	err error
	// adoptable are the agent's containers found running at connect,
	// by adoptKey, until a pod runner takes them over.
	adoptable map[string]oci.Info
	// imported is closed and replaced whenever an image is imported, to
	// wake containers backing off on a missing image.
	imported chan struct{}
}

func adoptKey(uid, container string) string { return uid + "/" + container }

// runtime returns the connected runtime, or the reason there is none.
func (s *ociState) runtime() (*oci.Runtime, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rt, s.err
}

// importedSignal is closed at the next image import.
func (s *ociState) importedSignal() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.imported
}

func (s *ociState) signalImported() {
	s.mu.Lock()
	close(s.imported)
	s.imported = make(chan struct{})
	s.mu.Unlock()
}

// takeAdoptable hands a running container found at connect to the pod
// runner of its pod, once.
func (s *ociState) takeAdoptable(uid, container string) (oci.Info, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, ok := s.adoptable[adoptKey(uid, container)]
	delete(s.adoptable, adoptKey(uid, container))
	return info, ok
}

// connectContainerd dials containerd once and indexes the containers a
// previous agent left running. It reports whether it connected.
func (a *Agent) connectContainerd(ctx context.Context) bool {
	cc := a.cfg.Containerd
	if cc.Socket == "off" {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rt, err := oci.New(cctx, oci.Config{Socket: cc.Socket, Namespace: cc.Namespace, Snapshotter: cc.Snapshotter, LogDir: cc.LogDir, Registries: cc.Registries, Log: a.log})
	if err != nil {
		a.oci.mu.Lock()
		first := a.oci.err == nil
		a.oci.err = err
		a.oci.mu.Unlock()
		if first {
			a.log.Warn("containerd unavailable; OCI containers wait for it", "socket", cc.Socket, "err", err)
		}
		return false
	}
	adoptable := map[string]oci.Info{}
	infos, err := rt.List(cctx)
	if err != nil {
		a.log.Warn("list containers to adopt", "err", err)
	}
	for _, in := range infos {
		uid, name := in.Labels[labelPodUID], in.Labels[labelContainer]
		if uid != "" && name != "" && in.Running {
			adoptable[adoptKey(uid, name)] = in
		}
	}
	a.oci.mu.Lock()
	a.oci.rt, a.oci.err, a.oci.adoptable = rt, nil, adoptable
	a.oci.mu.Unlock()
	a.log.Info("containerd connected", "socket", cc.Socket, "namespace", rt.Namespace(), "snapshotter", rt.Snapshotter(), "adoptable", len(adoptable))
	return true
}

// containerdLoop dials containerd until it answers, then imports the
// fleet's images for this node; the node status follows (heartbeats
// carry the runtimes and the ContainerRuntimeReady condition).
func (a *Agent) containerdLoop(ctx context.Context, connected bool) {
	if a.cfg.Containerd.Socket == "off" {
		return
	}
	for !connected {
		if !sleepCtx(ctx, a.cfg.Containerd.RetryInterval) {
			return
		}
		connected = a.connectContainerd(ctx)
		if connected {
			a.kick()
		}
	}
	a.watchImages(ctx)
}

// closeContainerd disconnects; containers keep running for the next agent.
func (a *Agent) closeContainerd() {
	a.oci.mu.Lock()
	rt := a.oci.rt
	a.oci.rt = nil
	a.oci.mu.Unlock()
	if rt != nil {
		_ = rt.Close()
	}
}

// reportRuntimes sets the node's runtimes and ContainerRuntimeReady.
// Runtimes lists the runtimes the node offers now.
func (a *Agent) Runtimes() []string {
	if rt, _ := a.oci.runtime(); rt != nil {
		return []string{api.RuntimeWasm, api.RuntimeOCI}
	}
	return []string{api.RuntimeWasm}
}

func (a *Agent) reportRuntimes(n *api.Node) {
	rt, err := a.oci.runtime()
	n.Status.Runtimes = []string{api.RuntimeWasm}
	cond := api.Condition{Type: api.NodeContainerRuntimeReady, Status: api.ConditionTrue,
		Reason: "ContainerdReady", Message: "containerd answers on " + a.cfg.Containerd.Socket}
	switch {
	case rt != nil:
		n.Status.Runtimes = append(n.Status.Runtimes, api.RuntimeOCI)
	case a.cfg.Containerd.Socket == "off":
		cond.Status, cond.Reason, cond.Message = api.ConditionFalse, "ContainerdDisabled", "the agent runs wasm modules only"
	default:
		msg := "containerd is not connected yet"
		if err != nil {
			msg = err.Error()
		}
		cond.Status, cond.Reason, cond.Message = api.ConditionFalse, "ContainerdUnavailable", msg
	}
	api.SetCondition(&n.Status.Conditions, cond)
}

// gcContainers stops the agent's containers whose pod is no longer
// assigned here (deleted while the agent was down). It runs when the
// assignments watch has replayed, i.e. when desired is the truth.
func (a *Agent) gcContainers(ctx context.Context) {
	rt, _ := a.oci.runtime()
	if rt == nil {
		return
	}
	infos, err := rt.List(ctx)
	if err != nil {
		a.log.Warn("list containers for garbage collection", "err", err)
		return
	}
	keep := map[string]bool{}
	a.mu.Lock()
	for _, p := range a.desired {
		keep[p.UID] = true
	}
	for _, r := range a.running {
		keep[r.pod.UID] = true
	}
	a.mu.Unlock()
	for _, in := range infos {
		uid := in.Labels[labelPodUID]
		if uid == "" || keep[uid] {
			continue
		}
		a.oci.mu.Lock()
		delete(a.oci.adoptable, adoptKey(uid, in.Labels[labelContainer]))
		a.oci.mu.Unlock()
		grace := 30 * time.Second
		a.log.Info("stopping a container of a pod no longer assigned", "id", in.ID, "pod", in.Labels[labelPodNamespace]+"/"+in.Labels[labelPodName])
		a.wg.Go(func() {
			if err := rt.Stop(context.WithoutCancel(ctx), in.ID, grace); err != nil {
				a.log.Warn("stop unassigned container", "id", in.ID, "err", err)
			}
		})
	}
}

// restartsOf reads the restart count label of an adopted container.
func restartsOf(in oci.Info) int32 {
	n, _ := strconv.Atoi(in.Labels[labelRestarts])
	return int32(n)
}

// errNoOCI explains why a node cannot run a container now.
func (a *Agent) errNoOCI() error {
	_, err := a.oci.runtime()
	if a.cfg.Containerd.Socket == "off" {
		return fmt.Errorf("OCI containers are disabled on node %s (containerd socket \"off\")", a.cfg.Name)
	}
	if err == nil {
		return fmt.Errorf("containerd on node %s is not connected yet", a.cfg.Name)
	}
	return err
}
