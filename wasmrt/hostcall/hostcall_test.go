package hostcall_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/flotilla-edge/flotilla/wasmrt"
	"github.com/flotilla-edge/flotilla/wasmrt/hostcall"
	"github.com/flotilla-edge/flotilla/wasmrt/hostcall/abi"
)

// buildGuest compiles testdata/client for wasip1 once per test binary.
var buildGuest = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "hostcall-guest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "client.wasm")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/client")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build guest: %w\n%s", err, b)
	}
	return os.ReadFile(out)
})

// cacheDir is a wazero compilation cache shared by the tests' runtimes, so
// the guest compiles once.
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hostcall-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func guestWasm(t *testing.T) []byte {
	t.Helper()
	b, err := buildGuest()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func quietLog() *slog.Logger {
	if os.Getenv("FLOTILLA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startNATS runs a real nats-server on a random loopback port.
func startNATS(t *testing.T) *nats.Conn {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// fixture is one runtime with the host module, a loopback HTTP backend and
// a NATS connection, shared by the table's cases.
type fixture struct {
	rt      *wasmrt.Runtime
	mod     *wasmrt.Module
	backend string // 127.0.0.1:port
	nc      *nats.Conn

	mu       sync.Mutex
	resolved []string // "ns host:port" the resolver was asked for
}

const big = 300 << 10 // larger than the guest's first 64 KiB buffer

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{nc: startNATS(t)}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Test", "host="+r.Host)
		fmt.Fprint(w, "hello from backend")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Test", r.Method)
		_, _ = w.Write(bytes.ToUpper(b))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("0123456789abcdef"), big/16))
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 2<<20)) // over MaxResponseBytes
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.backend = srv.Listener.Addr().String()

	host := hostcall.New(hostcall.Config{
		// The test's cluster: service "backend" in namespace "shop" is the
		// loopback server; "gone" exists but has no ready endpoint.
		Resolve: func(ctx context.Context, c hostcall.Caller, h string, port int) (string, bool, error) {
			f.mu.Lock()
			f.resolved = append(f.resolved, fmt.Sprintf("%s %s:%d", c.Namespace, h, port))
			f.mu.Unlock()
			switch {
			case (h == "backend" && c.Namespace == "shop") || h == "backend.shop.svc.cluster.local":
				return f.backend, true, nil
			case h == "gone":
				return "", true, errors.New("no ready endpoint")
			}
			return "", false, nil
		},
		Allow: func(ctx context.Context, c hostcall.Caller, h string, port int) error {
			if h == "forbidden" || c.Pod == "jailed" {
				return errors.New("denied by test policy")
			}
			return nil
		},
		Publish:          f.nc.Publish,
		Timeout:          500 * time.Millisecond,
		MaxResponseBytes: 1 << 20,
		Log:              quietLog(),
	})
	t.Cleanup(host.Close)
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{HostCalls: host, CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(ctx) })
	wasm := guestWasm(t)
	f.rt = rt
	if f.mod, err = rt.Compile(ctx, "client", wasm); err != nil {
		t.Fatal(err)
	}
	return f
}

// run runs the guest as pod ns/pod and returns its stdout and exit code.
func (f *fixture) run(t *testing.T, ns, pod string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code, err := f.mod.Run(context.Background(), wasmrt.Spec{
		Name: "client", Args: args, Stdout: &out, Stderr: os.Stderr,
		Caller: hostcall.Caller{Namespace: ns, Pod: pod},
	})
	if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return strings.TrimSpace(out.String()), code
}

func TestHTTPRequest(t *testing.T) {
	f := newFixture(t)
	bigSum := fmt.Sprintf("%x", sha256.Sum256(bytes.Repeat([]byte("0123456789abcdef"), big/16)))
	tests := []struct {
		name      string
		ns, pod   string
		args      []string
		want      string // substring of stdout
		wantCode  int
		maxTime   time.Duration
		resolveAs string // what the resolver must have been asked
	}{
		{"service short name in pod namespace", "shop", "web-1", []string{"get", "http://backend/hello"},
			"status=200 len=18", 0, 0, "shop backend:80"},
		{"Host header is the name the pod wrote", "shop", "web-1", []string{"get", "http://backend/hello"},
			"hdr=host=backend body=hello from backend", 0, 0, ""},
		{"fully qualified from another namespace", "other", "x", []string{"get", "http://backend.shop.svc.cluster.local/hello"},
			"status=200", 0, 0, "other backend.shop.svc.cluster.local:80"},
		{"POST body round trip", "shop", "web-1", []string{"post", "http://backend/echo", "ping"},
			"status=200 len=4 sum=" + fmt.Sprintf("%x", sha256.Sum256([]byte("PING"))) + " hdr=POST body=PING", 0, 0, ""},
		{"response larger than the guest buffer is fetched again", "shop", "web-1", []string{"get", "http://backend/big"},
			fmt.Sprintf("status=200 len=%d sum=%s", big, bigSum), 0, 0, ""},
		{"IP literal is dialled as is", "shop", "web-1", []string{"get", "http://" + f.backend + "/hello"},
			"status=200", 0, 0, ""},
		{"short name outside the pod namespace is unknown", "other", "x", []string{"get", "http://backend/hello"},
			fmt.Sprintf("err=%d", abi.ErrResolve), 3, 0, ""},
		{"resolver error", "shop", "web-1", []string{"get", "http://gone/"},
			fmt.Sprintf("err=%d", abi.ErrResolve), 3, 0, ""},
		{"policy denies a host", "shop", "web-1", []string{"get", "http://forbidden/"},
			fmt.Sprintf("err=%d", abi.ErrDenied), 3, 0, ""},
		{"policy denies per pod", "shop", "jailed", []string{"get", "http://backend/hello"},
			fmt.Sprintf("err=%d", abi.ErrDenied), 3, 0, ""},
		{"timeout", "shop", "web-1", []string{"get", "http://backend/slow"},
			fmt.Sprintf("err=%d", abi.ErrTimeout), 3, 3 * time.Second, ""},
		{"response over the limit", "shop", "web-1", []string{"get", "http://backend/huge"},
			fmt.Sprintf("err=%d", abi.ErrTooLarge), 3, 0, ""},
		{"connection refused", "shop", "web-1", []string{"get", "http://127.0.0.1:1/"},
			fmt.Sprintf("err=%d", abi.ErrConnect), 3, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out, code := f.run(t, tc.ns, tc.pod, tc.args...)
			if code != tc.wantCode || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, out %q; want exit %d and %q", code, out, tc.wantCode, tc.want)
			}
			if tc.maxTime > 0 && time.Since(start) > tc.maxTime {
				t.Errorf("took %s, want under %s", time.Since(start), tc.maxTime)
			}
			if tc.resolveAs != "" {
				f.mu.Lock()
				defer f.mu.Unlock()
				if len(f.resolved) == 0 || f.resolved[len(f.resolved)-1] != tc.resolveAs {
					t.Errorf("resolver asked %q, want last %q", f.resolved, tc.resolveAs)
				}
			}
		})
	}
}

func TestNATSPublish(t *testing.T) {
	f := newFixture(t)
	sub, err := f.nc.SubscribeSync("flotilla.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		ns      string
		subject string
		ok      bool
	}{
		{"own namespace", "shop", "flotilla.apps.shop.orders", true},
		{"deeper subject", "shop", "flotilla.apps.shop.orders.eu.created", true},
		{"other namespace", "shop", "flotilla.apps.bank.orders", false},
		{"the API", "shop", "flotilla.api.v1.create", false},
		{"wildcard", "shop", "flotilla.apps.shop.*", false},
		{"prefix only", "shop", "flotilla.apps.shop.", false},
		{"empty token", "shop", "flotilla.apps.shop..x", false},
		{"no namespace", "", "flotilla.apps..x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code := f.run(t, tc.ns, "pub", "publish", tc.subject, "data:"+tc.name)
			if !tc.ok {
				if code != 3 || out != fmt.Sprintf("err=%d", abi.ErrSubject) {
					t.Fatalf("exit %d out %q, want a subject error", code, out)
				}
				return
			}
			if code != 0 || out != "published" {
				t.Fatalf("exit %d out %q", code, out)
			}
			m, err := sub.NextMsg(2 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tc.subject || string(m.Data) != "data:"+tc.name {
				t.Fatalf("got %s %q", m.Subject, m.Data)
			}
		})
	}
	// Nothing denied leaked through.
	if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("unexpected message on %s", m.Subject)
	}
}

// TestCompileNeedsHostCalls checks a module importing "flotilla" is
// rejected by a runtime without host calls, with a clear reason.
func TestCompileNeedsHostCalls(t *testing.T) {
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	_, err = rt.Compile(ctx, "client", guestWasm(t))
	if !errors.Is(err, wasmrt.ErrInvalidModule) || !strings.Contains(err.Error(), "unsupported import flotilla.") {
		t.Fatalf("err %v, want an unsupported flotilla import", err)
	}
}

// TestConcurrentCallers runs instances of pods in two namespaces at once:
// each host call must see its own instance's caller, so the same short
// name resolves only for the pods of namespace shop.
func TestConcurrentCallers(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := range 8 {
		wg.Go(func() {
			ns := "shop"
			if i%2 == 1 {
				ns = "other"
			}
			out, code := f.run(t, ns, fmt.Sprintf("p%d", i), "get", "http://backend/hello")
			wantOK := ns == "shop"
			if (code == 0) != wantOK {
				errs <- fmt.Sprintf("pod p%d in %s: exit %d out %q", i, ns, code, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
