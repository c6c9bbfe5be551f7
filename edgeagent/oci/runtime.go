// Package oci runs Flotilla pods' OCI containers under containerd + runc.
//
// It talks to a containerd daemon through its Go client, in a namespace of
// its own ("flotilla" by default). Containers use host networking, and their
// stdout/stderr are written by containerd's shim straight into files under
// Config.LogDir (one pair per container), so a container keeps running and
// logging while the agent restarts; the agent follows those files and a new
// Runtime can adopt the running tasks (List + Adopt).
package oci

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/typeurl/v2"
)

// DefaultSocket is the socket of the project's containerd (see
// .ci/containerd.sh); DefaultNamespace the containerd namespace used.
const (
	DefaultSocket    = "/run/flotilla-containerd/containerd.sock"
	DefaultNamespace = "flotilla"
	DefaultLogDir    = "/var/log/flotilla/containers"
)

// Errors callers can test with errors.Is.
var (
	// ErrImageNotFound: the image is neither present locally nor pullable.
	ErrImageNotFound = errors.New("image not found")
	// ErrPlatformMismatch: the image has no manifest for the node platform.
	ErrPlatformMismatch = errors.New("image has no variant for this node's platform")
	// ErrNotFound: no such container.
	ErrNotFound = errors.New("container not found")
)

// Config configures a Runtime.
type Config struct {
	// Socket is containerd's gRPC socket; DefaultSocket when empty.
	Socket string
	// Namespace is the containerd namespace; DefaultNamespace when empty.
	Namespace string
	// Snapshotter is containerd's snapshotter; when empty, the namespace's
	// "containerd.io/defaults/snapshotter" label, else overlayfs if the
	// daemon has it working, else native.
	Snapshotter string
	// Log receives the runtime's own diagnostics; slog.Default when nil.
	Log *slog.Logger
	// LogDir holds the containers' stdout/stderr files (LogDir/<id>/) and
	// exec FIFOs; DefaultLogDir when empty. It must survive agent restarts
	// for Adopt to continue logs.
	LogDir string
	// Registries configures mirrors and credentials by registry host
	// ("docker.io", "ghcr.io", ...); others are pulled anonymously.
	Registries map[string]Registry
}

// Runtime runs OCI containers through containerd.
type Runtime struct {
	cfg         Config
	log         *slog.Logger
	client      *containerd.Client
	ns          string
	snapshotter string

	bg     context.Context // lives until Close; carries the namespace
	cancel context.CancelFunc

	mu   sync.Mutex
	ooms map[string]time.Time  // container ID -> time of a TaskOOM event
	live map[string]*Container // containers this Runtime is watching
}

// New connects to containerd. A missing or unresponsive socket gives an
// error saying "containerd socket ... not reachable".
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.LogDir == "" {
		cfg.LogDir = DefaultLogDir
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := validateRegistries(cfg.Registries); err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.Socket); err != nil {
		return nil, fmt.Errorf("containerd socket %s not reachable: %w", cfg.Socket, err)
	}
	cl, err := containerd.New(cfg.Socket, containerd.WithDefaultNamespace(cfg.Namespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd socket %s not reachable: %w", cfg.Socket, err)
	}
	vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cl.Version(vctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("containerd socket %s not reachable: %w", cfg.Socket, err)
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		cl.Close()
		return nil, fmt.Errorf("log dir: %w", err)
	}
	r := &Runtime{
		cfg:    cfg,
		log:    cfg.Log.With("component", "oci"),
		client: cl,
		ns:     cfg.Namespace,
		ooms:   map[string]time.Time{},
		live:   map[string]*Container{},
	}
	r.bg, r.cancel = context.WithCancel(namespaces.WithNamespace(context.Background(), r.ns))
	r.snapshotter = cfg.Snapshotter
	if r.snapshotter == "" {
		r.snapshotter = r.pickSnapshotter(r.nsctx(vctx))
	}
	ready := make(chan struct{})
	go r.watchOOM(ready)
	select {
	case <-ready:
	case <-time.After(2 * time.Second):
	}
	return r, nil
}

// Snapshotter is the snapshotter in use.
func (r *Runtime) Snapshotter() string { return r.snapshotter }

// Namespace is the containerd namespace in use.
func (r *Runtime) Namespace() string { return r.ns }

// Close disconnects from containerd. Containers keep running.
func (r *Runtime) Close() error {
	r.cancel()
	return r.client.Close()
}

func (r *Runtime) nsctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.ns)
}

// pickSnapshotter uses the namespace's default-snapshotter label when set
// (.ci/containerd.sh sets it to what works on the machine), else overlayfs
// when the daemon loaded it, else native.
func (r *Runtime) pickSnapshotter(ctx context.Context) string {
	if l, err := r.client.GetLabel(ctx, defaults.DefaultSnapshotterNSLabel); err == nil && l != "" {
		return l
	}
	resp, err := r.client.IntrospectionService().Plugins(ctx, `type=="io.containerd.snapshotter.v1"`)
	if err != nil {
		r.log.Warn("introspect snapshotters", "err", err)
		return "overlayfs"
	}
	ok := map[string]bool{}
	for _, p := range resp.Plugins {
		if p.InitErr == nil {
			ok[p.ID] = true
		}
	}
	if ok["overlayfs"] || !ok["native"] {
		return "overlayfs"
	}
	return "native"
}

// watchOOM records containerd's TaskOOM events (emitted by the shim from the
// container's memory cgroup) so Wait can tell an OOM kill from any SIGKILL.
func (r *Runtime) watchOOM(ready chan struct{}) {
	filter := fmt.Sprintf(`topic=="/tasks/oom",namespace==%q`, r.ns)
	for r.bg.Err() == nil {
		ctx, cancel := context.WithCancel(r.bg)
		evs, errs := r.client.Subscribe(ctx, filter)
		if ready != nil {
			close(ready)
			ready = nil
		}
	loop:
		for {
			select {
			case env := <-evs:
				if env == nil || env.Event == nil {
					continue
				}
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				if oom, ok := v.(*apievents.TaskOOM); ok {
					r.mu.Lock()
					r.ooms[oom.ContainerID] = time.Now()
					r.mu.Unlock()
					r.log.Info("container OOM", "id", oom.ContainerID)
				}
			case err := <-errs:
				if r.bg.Err() == nil {
					r.log.Warn("containerd event stream", "err", err)
				}
				break loop
			case <-r.bg.Done():
				break loop
			}
		}
		cancel()
		select {
		case <-r.bg.Done():
		case <-time.After(time.Second):
		}
	}
}

func (r *Runtime) sawOOM(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ooms[id]
	return ok
}
