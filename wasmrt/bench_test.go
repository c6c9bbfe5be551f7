package wasmrt

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// nativeHello is the examples/hello handler compiled natively, as a baseline.
func nativeHello() http.Handler {
	msg := fmt.Sprintf("Hello Flotilla bootcamp! | Running on: %s | v=%s\n", "bench", "1")
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(msg))
	})
	return mux
}

// benchServe drives GETs in parallel through a real loopback server.
func benchServe(b *testing.B, h http.Handler) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 4 * runtime.GOMAXPROCS(0)}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(srv.URL + "/")
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkHTTPNative(b *testing.B) {
	benchServe(b, nativeHello())
}

// BenchmarkHTTPPersistent has no CPU-time limit, so its instances run on
// the runtime without termination checks.
func BenchmarkHTTPPersistent(b *testing.B) {
	h := newHandler(b, "hello", Spec{Env: []string{"POD_NAME=bench"}},
		HTTPConfig{Mode: Persistent, Instances: runtime.GOMAXPROCS(0)})
	benchServe(b, h)
}

// BenchmarkHTTPPersistentLimited has the default 30s per-request limit,
// which needs termination checks in the compiled code.
func BenchmarkHTTPPersistentLimited(b *testing.B) {
	h := newHandler(b, "hello", Spec{Env: []string{"POD_NAME=bench"}, Limits: Limits{CPUTime: 30 * time.Second}},
		HTTPConfig{Mode: Persistent, Instances: runtime.GOMAXPROCS(0)})
	benchServe(b, h)
}

func BenchmarkHTTPCGI(b *testing.B) {
	h := newHandler(b, "hello", Spec{Env: []string{"POD_NAME=bench"}}, HTTPConfig{Mode: CGI})
	benchServe(b, h)
}

// BenchmarkColdStartCached measures starting a command whose digest is
// already compiled: in this runtime's memory, or only in the disk cache (a
// new Runtime, as after an agent restart).
func BenchmarkColdStartCached(b *testing.B) {
	wasm := wasmBytes(b, "batch")
	digest := digestOf(wasm)
	spec := Spec{Args: []string{"10"}, Stdout: io.Discard}
	ctx := context.Background()

	b.Run("memory", func(b *testing.B) {
		module(b, "batch") // warm
		for b.Loop() {
			m, err := sharedRT.Compile(ctx, digest, wasm)
			if err != nil {
				b.Fatal(err)
			}
			if code, err := m.Run(ctx, spec); err != nil || code != 0 {
				b.Fatalf("code=%d err=%v", code, err)
			}
		}
	})
	b.Run("disk", func(b *testing.B) {
		dir := filepath.Join(b.TempDir(), "cache")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		warm, err := New(ctx, Config{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := warm.Compile(ctx, digest, wasm); err != nil {
			b.Fatal(err)
		}
		_ = warm.Close(ctx)
		for b.Loop() {
			rt, err := New(ctx, Config{CacheDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			m, err := rt.Compile(ctx, digest, wasm)
			if err != nil {
				b.Fatal(err)
			}
			if code, err := m.Run(ctx, spec); err != nil || code != 0 {
				b.Fatalf("code=%d err=%v", code, err)
			}
			_ = rt.Close(ctx)
		}
	})
}
