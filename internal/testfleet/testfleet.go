// Package testfleet starts a real fleet for tests: an embedded NATS with
// JetStream, a control plane and any number of agents, each with its own
// data directory, all cleaned up with the test.
package testfleet

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/controlplane/server"
	"github.com/flotilla-edge/flotilla/edgeagent"
	"github.com/flotilla-edge/flotilla/wasmrt/modstore"
)

// AgentSpec describes one board of the test fleet.
type AgentSpec struct {
	Name   string
	Labels map[string]string
	// Containerd enables OCI containers (see ContainerdForTest); nil runs
	// wasm only.
	Containerd *edgeagent.ContainerdConfig
	// DataDir is t.TempDir() when empty; reuse one to restart an agent.
	DataDir string
	// ClusterDNSAddr is where the agent serves cluster DNS; "off" when
	// empty, since only one agent of the machine could bind an address.
	ClusterDNSAddr string
}

// Fleet is a running test fleet.
type Fleet struct {
	Server  *server.Server
	Client  *client.Client
	Modules *modstore.Store
	Agents  map[string]*edgeagent.Agent
}

// Logger is quiet unless FLOTILLA_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("FLOTILLA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Start brings up a control plane and the given agents.
func Start(t testing.TB, agents ...AgentSpec) *Fleet {
	t.Helper()
	ctx := context.Background()
	log := Logger()
	s, err := server.Start(ctx, server.Config{
		DataDir: t.TempDir(), NATSHost: "127.0.0.1", NATSPort: -1, Identity: "test-server", Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	c, err := client.Connect(s.URL(), s.Token(), "testfleet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	js, err := jetstream.New(c.NC)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := modstore.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fleet{Server: s, Client: c, Modules: ms, Agents: map[string]*edgeagent.Agent{}}
	for _, spec := range agents {
		f.StartAgent(t, spec)
	}
	return f
}

// StartAgent starts (or, with the DataDir of a stopped one, restarts) an
// agent of the fleet.
func (f *Fleet) StartAgent(t testing.TB, spec AgentSpec) *edgeagent.Agent {
	t.Helper()
	if spec.DataDir == "" {
		spec.DataDir = t.TempDir()
	}
	cc := edgeagent.ContainerdConfig{Socket: "off"}
	if spec.Containerd != nil {
		cc = *spec.Containerd
	}
	a, err := edgeagent.Start(context.Background(), edgeagent.Config{
		Name: spec.Name, Labels: spec.Labels, NATSURL: f.Server.URL(), Token: f.Server.Token(),
		DataDir: spec.DataDir, Address: "127.0.0.1", HeartbeatInterval: time.Second, Log: Logger().With("node", spec.Name),
		// Agents of one test share the machine: only one could bind the
		// cluster DNS address.
		ClusterDNSAddr: cmp.Or(spec.ClusterDNSAddr, edgeagent.ClusterDNSOff),
		Containerd:     cc,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	f.Agents[spec.Name] = a
	return a
}

// Push builds an example module (see BuildModule) and pushes it as ref.
func (f *Fleet) Push(t testing.TB, pkg, ref string, ldflags ...string) string {
	t.Helper()
	d, err := f.Modules.Push(context.Background(), ref, BuildModule(t, pkg, ldflags...))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var (
	buildMu sync.Mutex
	built   = map[string][]byte{}
)

// BuildModule compiles a Go package of this module for wasip1 once per
// test binary and returns the wasm bytes.
func BuildModule(t testing.TB, pkg string, ldflags ...string) []byte {
	t.Helper()
	key := pkg + " " + strings.Join(ldflags, " ")
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := built[key]; ok {
		return b
	}
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	dir := filepath.Dir(strings.TrimSpace(string(root)))
	out := filepath.Join(t.TempDir(), "m.wasm")
	args := []string{"build", "-o", out}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	cmd := exec.Command("go", append(args, "./"+pkg)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[key] = b
	return b
}

// WaitFor polls cond until it holds or the timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
