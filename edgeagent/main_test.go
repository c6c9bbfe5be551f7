package edgeagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/wire"
	"github.com/flotilla-edge/flotilla/controlplane/apiserver"
	"github.com/flotilla-edge/flotilla/controlplane/natsembed"
	"github.com/flotilla-edge/flotilla/controlplane/store"
	"github.com/flotilla-edge/flotilla/wasmrt"
	"github.com/flotilla-edge/flotilla/wasmrt/modstore"
)

// wasmDir holds the guest modules built once per test binary.
var wasmDir string

func TestMain(m *testing.M) {
	dir, err := buildGuests()
	if err != nil {
		fmt.Fprintln(os.Stderr, "edgeagent test setup:", err)
		os.Exit(1)
	}
	wasmDir = dir
	// Every test agent shares one compilation cache, warmed here: on a
	// small CI box a dozen agents compiling the same modules at once would
	// take longer than the tests' deadlines.
	if err := warmCompileCache(filepath.Join(dir, "wasm-cache")); err != nil {
		fmt.Fprintln(os.Stderr, "edgeagent test setup:", err)
		os.Exit(1)
	}
	statusResync = time.Second // so a deleted pod object is noticed quickly
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildGuests() (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	dir, err := os.MkdirTemp("", "edgeagent-guests-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./examples/hello", "./examples/batch", "./edgeagent/testdata/fsenv", "./edgeagent/testdata/filesrv")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("build guests: %w\n%s", err, out)
	}
	return dir, nil
}

// compileCache is the wazero cache every test agent uses.
func compileCache() string { return filepath.Join(wasmDir, "wasm-cache") }

func warmCompileCache(cacheDir string) error {
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{CacheDir: cacheDir})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)
	for _, name := range []string{"hello", "batch", "fsenv", "filesrv"} {
		b, err := os.ReadFile(filepath.Join(wasmDir, name))
		if err != nil {
			return err
		}
		if _, err := rt.Compile(ctx, modstore.Digest(b), b); err != nil {
			return fmt.Errorf("compile %s: %w", name, err)
		}
	}
	return nil
}

func guest(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wasmDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testLogger() *slog.Logger {
	if os.Getenv("FLOTILLA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fleet is a control plane for tests: embedded NATS, the object store and
// an API server, with the test acting as scheduler.
type fleet struct {
	dir  string
	srv  *natsembed.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	st   *store.Store
	mods *modstore.Store
	kv   jetstream.KeyValue
	stop func()
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	return newFleetAt(t, t.TempDir(), 0)
}

// newFleetAt starts a fleet on a given store and port, so a test can bring
// NATS back after an outage.
func newFleetAt(t *testing.T, storeDir string, port int) *fleet {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: storeDir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	f := &fleet{dir: storeDir, srv: srv, nc: nc}
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			nc.Close()
			srv.Stop()
		})
	}
	t.Cleanup(f.stop)
	f.js, _ = jetstream.New(nc)
	if f.st, err = store.Open(ctx, f.js, 1); err != nil {
		close(done)
		t.Fatal(err)
	}
	// The API server refuses objects (the agent's events) in a namespace
	// that does not exist, as the real control plane's default one does.
	if _, err := f.st.Create(ctx, &api.Namespace{ObjectMeta: api.ObjectMeta{Name: api.DefaultNamespace}}); err != nil && !errors.Is(err, api.ErrAlreadyExists) {
		close(done)
		t.Fatal(err)
	}
	if f.mods, err = modstore.Open(ctx, f.js); err != nil {
		close(done)
		t.Fatal(err)
	}
	f.kv, err = f.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: wire.AssignmentsBucket, History: 1})
	if err != nil {
		close(done)
		t.Fatal(err)
	}
	as := apiserver.New(nc, f.st, testLogger(), "test", nil)
	go func() {
		defer close(done)
		_ = as.Run(ctx)
	}()
	return f
}

// portBase hands each agent its own port range so tests can run in
// parallel.
var portBase atomic.Int32

func startAgent(t *testing.T, f *fleet, url, dataDir string, mod func(*Config)) *Agent {
	t.Helper()
	lo := 42000 + int(portBase.Add(1))*100
	cfg := Config{
		Name:              "edge-1",
		NATSURL:           url,
		DataDir:           dataDir,
		Address:           "127.0.0.1",
		PortRange:         [2]int{lo, lo + 99},
		HeartbeatInterval: 200 * time.Millisecond,
		CompileCacheDir:   compileCache(),
		Log:               testLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a
}

// schedule creates the pod object and assigns it to node, as the scheduler
// would.
func (f *fleet) schedule(t *testing.T, node string, p *api.Pod) *api.Pod {
	t.Helper()
	ctx := context.Background()
	p.Spec.NodeName = node
	obj, err := f.st.Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	p = obj.(*api.Pod)
	api.SetCondition(&p.Status.Conditions, api.Condition{Type: api.PodScheduled, Status: api.ConditionTrue})
	if obj, err = f.st.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	p = obj.(*api.Pod)
	b, _ := json.Marshal(p)
	if _, err := f.kv.Put(ctx, wire.AssignmentKey(node, p.Namespace, p.Name), b); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fleet) unassign(t *testing.T, node string, p *api.Pod) {
	t.Helper()
	if err := f.kv.Delete(context.Background(), wire.AssignmentKey(node, p.Namespace, p.Name)); err != nil {
		t.Fatal(err)
	}
}

func (f *fleet) pod(t *testing.T, name string) *api.Pod {
	t.Helper()
	obj, err := f.st.Get(context.Background(), "Pod", "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*api.Pod)
}

func (f *fleet) push(t *testing.T, ref string, b []byte) {
	t.Helper()
	if _, err := f.mods.Push(context.Background(), ref, b); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes; describe says
// what was last seen.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool, describe func() string) {
	t.Helper()
	d *= timeScale
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if describe != nil {
				msg = describe()
			}
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", d, what, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// hostPorts lists the host ports of the pods the agent runs.
func (a *Agent) hostPorts() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []int
	for _, r := range a.running {
		r.mu.Lock()
		for _, s := range r.ctrs {
			for _, p := range s.status.Ports {
				out = append(out, int(p.HostPort))
			}
		}
		r.mu.Unlock()
	}
	return out
}
