package wasmrt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newHandler(t testing.TB, guest string, spec Spec, cfg HTTPConfig) *HTTPHandler {
	t.Helper()
	h, err := module(t, guest).NewHTTPHandler(context.Background(), spec, cfg)
	if err != nil {
		t.Fatalf("NewHTTPHandler %s: %v", guest, err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestHelloModes(t *testing.T) {
	tests := []struct {
		name  string
		guest string
		env   []string
		cfg   HTTPConfig
		want  string
	}{
		{"persistent", "hello", []string{"POD_NAME=pod-a"}, HTTPConfig{Mode: Persistent, Instances: 2},
			"Hello Flotilla bootcamp! | Running on: pod-a | v=1\n"},
		{"persistent hostname fallback v2", "hello-v2", []string{"HOSTNAME=node-1"}, HTTPConfig{},
			"Hello Flotilla bootcamp! | Running on: node-1 | v=2\n"},
		{"cgi", "hello", []string{"POD_NAME=pod-a"}, HTTPConfig{Mode: CGI},
			"Hello Flotilla bootcamp! | Running on: pod-a | v=1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, tt.guest, Spec{Name: "hello", Env: tt.env}, tt.cfg)
			if !h.Ready() {
				t.Fatal("handler not ready")
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					code, body := get(t, srv.Client(), fmt.Sprintf("%s/some/path%d?x=1", srv.URL, i))
					if code != http.StatusOK || body != tt.want {
						t.Errorf("got %d %q; want 200 %q", code, body, tt.want)
					}
				})
			}
			wg.Wait()
			if code, body := get(t, srv.Client(), srv.URL+"/healthz"); code != http.StatusOK || body != "ok" {
				t.Fatalf("/healthz = %d %q", code, body)
			}
		})
	}
}

func TestHTTPGuestRequests(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, mode := range []HTTPMode{Persistent, CGI} {
		t.Run(string(mode), func(t *testing.T) {
			h := newHandler(t, "httpguest", Spec{}, HTTPConfig{Mode: mode, Instances: 2})
			srv := httptest.NewServer(h)
			defer srv.Close()
			tests := []struct {
				name     string
				method   string
				path     string
				body     io.Reader
				wantCode int
				wantBody string
			}{
				{"echo", http.MethodPost, "/echo", strings.NewReader("hello body"), 200, "hello body"},
				{"echo big", http.MethodPut, "/echo", bytes.NewReader(big), 200, string(big)},
				// A plain io.Reader has no length, so the client sends it chunked.
				{"echo chunked", http.MethodPost, "/echo", io.MultiReader(strings.NewReader("chunk")), 200, "chunk"},
				{"empty post", http.MethodPost, "/echo", nil, 200, ""},
				{"path and query", http.MethodGet, "/a/b?c=d&e=f", nil, 418, "path=/a/b q=c=d&e=f"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					req, err := http.NewRequest(tc.method, srv.URL+tc.path, tc.body)
					if err != nil {
						t.Fatal(err)
					}
					resp, err := srv.Client().Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != tc.wantCode || string(b) != tc.wantBody {
						t.Fatalf("got %d %.100q; want %d %.100q", resp.StatusCode, b, tc.wantCode, tc.wantBody)
					}
					if tc.path == "/echo" && resp.Header.Get("X-Method") != tc.method {
						t.Fatalf("X-Method = %q; want %q", resp.Header.Get("X-Method"), tc.method)
					}
				})
			}
		})
	}
}

func TestPersistentInstanceCrash(t *testing.T) {
	exits := make(chan error, 10)
	h := newHandler(t, "httpguest", Spec{}, HTTPConfig{Instances: 1, OnInstanceExit: func(err error) { exits <- err }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	_, pid1 := get(t, srv.Client(), srv.URL+"/pid")
	code, body := get(t, srv.Client(), srv.URL+"/crash")
	if code != http.StatusBadGateway || !strings.Contains(body, "exited with code 3") {
		t.Fatalf("/crash = %d %q; want 502 naming exit code 3", code, body)
	}
	select {
	case err := <-exits:
		if !strings.Contains(err.Error(), "code 3") {
			t.Fatalf("OnInstanceExit err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnInstanceExit not called")
	}
	// The next request waits for the replacement instance.
	code, pid2 := get(t, srv.Client(), srv.URL+"/pid")
	if code != http.StatusOK || pid2 == pid1 || len(pid2) != 16 {
		t.Fatalf("after crash /pid = %d %q (before %q); want 200 from a new instance", code, pid2, pid1)
	}
	if !h.Ready() {
		t.Fatal("not ready after replacement")
	}
}

func TestPersistentCPUTimeLimit(t *testing.T) {
	exits := make(chan error, 10)
	h := newHandler(t, "httpguest", Spec{Limits: Limits{CPUTime: 300 * time.Millisecond}},
		HTTPConfig{Instances: 1, OnInstanceExit: func(err error) { exits <- err }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	start := time.Now()
	code, body := get(t, srv.Client(), srv.URL+"/spin")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "cpu time limit exceeded") {
		t.Fatalf("/spin = %d %q; want 504", code, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("spinning request took %s", d)
	}
	if err := <-exits; !errors.Is(err, ErrCPUTimeExceeded) {
		t.Fatalf("OnInstanceExit err = %v; want ErrCPUTimeExceeded", err)
	}
	if code, body := get(t, srv.Client(), srv.URL+"/echo"); code != http.StatusOK || body != "" {
		t.Fatalf("after kill /echo = %d %q", code, body)
	}
}

func TestCGILimits(t *testing.T) {
	h := newHandler(t, "httpguest", Spec{Limits: Limits{CPUTime: 300 * time.Millisecond}}, HTTPConfig{Mode: CGI})
	tests := []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/spin", http.StatusGatewayTimeout, "cpu time limit exceeded"},
		{"/crash", http.StatusBadGateway, "exit code 3"},
		{"/pid", http.StatusOK, ""},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
			t.Errorf("%s = %d %q; want %d ~%q", tt.path, rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
		}
	}
}

func TestNewHTTPHandlerFailsFast(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		cfg  HTTPConfig
		want error
	}{
		{"persistent memory below initial", Spec{Limits: Limits{MemoryBytes: 64 << 10}}, HTTPConfig{}, ErrMemoryLimit},
		{"cgi memory below initial", Spec{Limits: Limits{MemoryBytes: 64 << 10}}, HTTPConfig{Mode: CGI}, ErrMemoryLimit},
		{"bad env", Spec{Env: []string{"NOEQUALS"}}, HTTPConfig{}, nil},
		{"bad mode", Spec{}, HTTPConfig{Mode: "fastcgi"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := module(t, "hello").NewHTTPHandler(context.Background(), tt.spec, tt.cfg)
			if err == nil {
				h.Close()
				t.Fatal("NewHTTPHandler succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
		})
	}
}

// TestCloseStopsGoroutines checks Close waits for every instance goroutine.
func TestCloseStopsGoroutines(t *testing.T) {
	m := module(t, "httpguest")
	before := runtime.NumGoroutine()
	var exits atomic.Int32
	h, err := m.NewHTTPHandler(context.Background(), Spec{}, HTTPConfig{Instances: 3, OnInstanceExit: func(error) { exits.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/echo", strings.NewReader("x")))
		if rec.Code != 200 || rec.Body.String() != "x" {
			t.Fatalf("echo = %d %q", rec.Code, rec.Body.String())
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if h.Ready() {
		t.Fatal("Ready after Close")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("after Close = %d; want 503", rec.Code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d after Close, %d before\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := exits.Load(); n != 0 {
		t.Fatalf("OnInstanceExit called %d times on Close; want 0", n)
	}
}
