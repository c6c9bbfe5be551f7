package wasmrt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// guests are the wasm programs the tests build once per test binary:
// name -> package path relative to the module root.
var guests = map[string]string{
	"hello":     "./examples/hello",
	"batch":     "./examples/batch",
	"cmd":       "./wasmrt/testdata/cmd",
	"panic":     "./wasmrt/testdata/panic",
	"memhog":    "./wasmrt/testdata/memhog",
	"spin":      "./wasmrt/testdata/spin",
	"fsguest":   "./wasmrt/testdata/fsguest",
	"httpguest": "./wasmrt/testdata/httpguest",
}

var (
	wasmDir string
	// sharedRT is one runtime for tests that do not care about isolation,
	// so each guest compiles once per test binary.
	sharedRT *Runtime
	modMu    sync.Mutex
	modCache = map[string]*Module{}
)

func TestMain(m *testing.M) {
	if url := os.Getenv(loadgenEnv); url != "" {
		os.Exit(runLoadgen(url))
	}
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasmrt test setup:", err)
		os.Exit(1)
	}
	os.Exit(code(m))
}

func setup() (func(*testing.M) int, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	dir, err := os.MkdirTemp("", "wasmrt-guests-")
	if err != nil {
		return nil, err
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, pkg := range guests {
		args = append(args, pkg)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("build guests: %w\n%s", err, out)
	}
	// hello v2, to check the -X version override used by the examples.
	cmd = exec.Command("go", "build", "-ldflags", "-X main.version=2", "-o", filepath.Join(dir, "hello-v2"), "./examples/hello")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("build hello v2: %w\n%s", err, out)
	}
	wasmDir = dir
	rt, err := New(context.Background(), Config{CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	sharedRT = rt
	return func(m *testing.M) int {
		defer os.RemoveAll(dir)
		defer rt.Close(context.Background())
		return m.Run()
	}, nil
}

func wasmBytes(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(wasmDir, name))
	if err != nil {
		tb.Fatalf("read guest %s: %v", name, err)
	}
	return b
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// module compiles a guest in the shared runtime, once.
func module(tb testing.TB, name string) *Module {
	tb.Helper()
	modMu.Lock()
	defer modMu.Unlock()
	if m, ok := modCache[name]; ok {
		return m
	}
	b := wasmBytes(tb, name)
	m, err := sharedRT.Compile(context.Background(), digestOf(b), b)
	if err != nil {
		tb.Fatalf("compile %s: %v", name, err)
	}
	modCache[name] = m
	return m
}
