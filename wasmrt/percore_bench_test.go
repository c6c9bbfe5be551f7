package wasmrt

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// loadgenEnv makes the test binary a load generator instead of running
// tests: the benchmarks below start it as a separate process so that the
// server's own CPU time can be measured apart from the client's.
const loadgenEnv = "FLOTILLA_LOADGEN_URL"

// runLoadgen sends FLOTILLA_LOADGEN_N GETs over FLOTILLA_LOADGEN_CONNS
// keep-alive connections and returns the exit code.
func runLoadgen(url string) int {
	n, _ := strconv.Atoi(os.Getenv("FLOTILLA_LOADGEN_N"))
	conns, _ := strconv.Atoi(os.Getenv("FLOTILLA_LOADGEN_CONNS"))
	if n <= 0 || conns <= 0 {
		fmt.Fprintln(os.Stderr, "loadgen: bad FLOTILLA_LOADGEN_N or FLOTILLA_LOADGEN_CONNS")
		return 2
	}
	tr := &http.Transport{MaxIdleConnsPerHost: conns}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	work := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		work <- struct{}{}
	}
	close(work)
	var wg sync.WaitGroup
	var failed sync.Once
	code := 0
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				resp, err := client.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Do(func() {
						fmt.Fprintln(os.Stderr, "loadgen:", err)
						code = 1
					})
				}
			}
		}()
	}
	wg.Wait()
	return code
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPerCore serves b.N requests from a load generator in another
// process and reports requests per second of wall time and per second of
// this process's CPU time, that is per core the server used.
func benchPerCore(b *testing.B, h http.Handler) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(),
		loadgenEnv+"="+srv.URL+"/",
		"FLOTILLA_LOADGEN_N="+strconv.Itoa(b.N),
		"FLOTILLA_LOADGEN_CONNS="+strconv.Itoa(2*runtime.GOMAXPROCS(0)))
	cmd.Stderr = os.Stderr
	runtime.GC()
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("load generator: %v", err)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/wall.Seconds(), "req/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "req/s/core")
}

// The per-core benchmarks measure what the target is about: how
// many requests one core of the serving process handles, with the client
// in a process of its own.
func BenchmarkHTTPPerCoreNative(b *testing.B) {
	benchPerCore(b, nativeHello())
}

func BenchmarkHTTPPerCorePersistent(b *testing.B) {
	benchPerCore(b, newHandler(b, "hello", Spec{Env: []string{"POD_NAME=bench"}},
		HTTPConfig{Mode: Persistent, Instances: runtime.GOMAXPROCS(0)}))
}

func BenchmarkHTTPPerCorePersistentLimited(b *testing.B) {
	benchPerCore(b, newHandler(b, "hello", Spec{Env: []string{"POD_NAME=bench"}, Limits: Limits{CPUTime: 30 * time.Second}},
		HTTPConfig{Mode: Persistent, Instances: runtime.GOMAXPROCS(0)}))
}
