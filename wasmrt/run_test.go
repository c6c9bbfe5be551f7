package wasmrt

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// trapWasm is a hand-assembled module whose _start executes `unreachable`:
// a real wasm trap, which Go guests cannot produce (they panic and exit 2).
var trapWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: func () -> ()
	0x03, 0x02, 0x01, 0x00, // function 0 has type 0
	0x05, 0x03, 0x01, 0x00, 0x01, // memory: min 1 page
	0x07, 0x13, 0x02, // exports: 2
	0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00,
	0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00,
	0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // code: unreachable; end
}

// noStartWasm is trapWasm with _start renamed to _stop.
var noStartWasm = bytes.Replace(trapWasm, []byte("_start"), []byte("_stop_"), 1)

func TestRunBatch(t *testing.T) {
	m := module(t, "batch")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"default", nil, 0, "primes: 1000, last: 7919\n", ""},
		{"ten", []string{"10"}, 0, "primes: 10, last: 29\n", ""},
		{"bad arg", []string{"x"}, 2, "", "batch: bad argument \"x\": want a positive integer\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code, err := m.Run(context.Background(), Spec{Name: "batch", Args: tt.args, Stdout: &out, Stderr: &errOut})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if code != tt.wantCode || out.String() != tt.wantOut || errOut.String() != tt.wantErr {
				t.Fatalf("got code=%d out=%q err=%q; want %d %q %q", code, out.String(), errOut.String(), tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		guest      string
		spec       Spec
		wantCode   int
		wantOut    string
		wantStderr string
	}{
		{"args env exit 3", "cmd",
			Spec{Name: "prog", Args: []string{"a", "b c"}, Env: []string{"FOO=bar=baz", "EXIT_CODE=3"}},
			3, "args=prog,a,b c\nFOO=bar=baz\n", "to stderr"},
		{"exit 0", "cmd", Spec{Name: "prog"}, 0, "args=prog\nFOO=\n", "to stderr"},
		{"go panic exits 2", "panic", Spec{Name: "panic"}, 2, "", "panic: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			tt.spec.Stdout, tt.spec.Stderr = &out, &errOut
			code, err := module(t, tt.guest).Run(context.Background(), tt.spec)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if code != tt.wantCode || out.String() != tt.wantOut || !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Fatalf("got code=%d out=%q stderr=%q; want %d %q ~%q", code, out.String(), errOut.String(), tt.wantCode, tt.wantOut, tt.wantStderr)
			}
		})
	}
}

func TestRunTrap(t *testing.T) {
	m, err := sharedRT.Compile(context.Background(), "trap", trapWasm)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	code, err := m.Run(context.Background(), Spec{})
	if err == nil || !strings.Contains(err.Error(), "unreachable") || code != -1 {
		t.Fatalf("got code=%d err=%v; want -1 and an unreachable trap", code, err)
	}
}

func TestCompileInvalid(t *testing.T) {
	batch := wasmBytes(t, "batch")
	tests := []struct {
		name   string
		digest string
		wasm   []byte
		want   string
	}{
		{"garbage", "sha256:garbage", []byte("not wasm at all"), "invalid wasm module sha256:garbage: "},
		{"truncated", "trunc", batch[:len(batch)/2], "invalid wasm module trunc: "},
		{"digest mismatch", digestOf([]byte("other")), batch, "content has digest " + digestOf(batch)},
		{"no _start", "nostart", noStartWasm, "no exported _start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sharedRT.Compile(context.Background(), tt.digest, tt.wasm)
			if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.digest) {
				t.Fatalf("err = %v; want ErrInvalidModule containing %q and the digest", err, tt.want)
			}
		})
	}
}

func TestCompileConcurrentOnce(t *testing.T) {
	rt, err := New(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	b := wasmBytes(t, "cmd")
	const n = 8
	mods := make([]*Module, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, err := rt.Compile(context.Background(), digestOf(b), b)
			if err != nil {
				t.Error(err)
			}
			mods[i] = m
		})
	}
	wg.Wait()
	for _, m := range mods[1:] {
		if m != mods[0] {
			t.Fatal("concurrent Compile of one digest returned different modules")
		}
	}
	rt.Evict(digestOf(b))
	m, err := rt.Compile(context.Background(), digestOf(b), b)
	if err != nil || m == mods[0] {
		t.Fatalf("after Evict: m=%p err=%v; want a fresh module", m, err)
	}
}

func TestCompileCacheDir(t *testing.T) {
	dir := t.TempDir()
	b := wasmBytes(t, "batch")
	var took [2]time.Duration
	for i := range took {
		rt, err := New(context.Background(), Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		m, err := rt.Compile(context.Background(), digestOf(b), b)
		took[i] = time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if code, err := m.Run(context.Background(), Spec{Args: []string{"5"}, Stdout: &out}); err != nil || code != 0 || out.String() != "primes: 5, last: 11\n" {
			t.Fatalf("run %d: code=%d err=%v out=%q", i, code, err, out.String())
		}
		if err := rt.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			var files int
			_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
				if d != nil && !d.IsDir() {
					files++
				}
				return nil
			})
			if files == 0 {
				t.Fatal("cache dir has no files after compile")
			}
		}
	}
	t.Logf("compile cold %s, from disk cache %s", took[0], took[1])
}

func TestMemoryLimit(t *testing.T) {
	t.Run("grow past limit", func(t *testing.T) {
		var stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		code, err := module(t, "memhog").Run(ctx, Spec{Stderr: &stderr, Limits: Limits{MemoryBytes: 64 << 20}})
		if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "memory limit exceeded") {
			t.Fatalf("code=%d err=%v; want ErrMemoryLimit", code, err)
		}
		t.Logf("code=%d err=%v stderr: %.80q", code, err, stderr.String())
	})
	t.Run("below initial memory", func(t *testing.T) {
		_, err := module(t, "batch").Run(context.Background(), Spec{Limits: Limits{MemoryBytes: 64 << 10}})
		if !errors.Is(err, ErrMemoryLimit) {
			t.Fatalf("err=%v; want ErrMemoryLimit", err)
		}
	})
	t.Run("within limit", func(t *testing.T) {
		var out bytes.Buffer
		code, err := module(t, "batch").Run(context.Background(), Spec{Stdout: &out, Limits: Limits{MemoryBytes: 128 << 20}})
		if err != nil || code != 0 || out.String() != "primes: 1000, last: 7919\n" {
			t.Fatalf("code=%d err=%v out=%q", code, err, out.String())
		}
	})
}

func TestCPUTimeLimit(t *testing.T) {
	spin := module(t, "spin") // compile outside the timed part
	start := time.Now()
	code, err := spin.Run(context.Background(), Spec{Limits: Limits{CPUTime: 200 * time.Millisecond}})
	if !errors.Is(err, ErrCPUTimeExceeded) || code != -1 {
		t.Fatalf("code=%d err=%v; want ErrCPUTimeExceeded", code, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s to stop a spinning module", d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = spin.Run(ctx, Spec{})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrCPUTimeExceeded) {
		t.Fatalf("err=%v; want the caller's deadline, not a CPU limit", err)
	}
}

func TestMounts(t *testing.T) {
	tests := []struct {
		name      string
		readOnly  bool
		wantOut   string
		wantWrote bool
	}{
		{"read-only", true, "read: hi\nwrite error\n", false},
		{"read-write", false, "read: hi\nwrite ok\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte("hi"), 0o644); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			code, err := module(t, "fsguest").Run(context.Background(), Spec{
				Stdout: &out,
				Mounts: []Mount{{HostPath: dir, GuestPath: "/data", ReadOnly: tt.readOnly}},
			})
			if err != nil || code != 0 || out.String() != tt.wantOut {
				t.Fatalf("code=%d err=%v out=%q; want %q", code, err, out.String(), tt.wantOut)
			}
			_, statErr := os.Stat(filepath.Join(dir, "out.txt"))
			if wrote := statErr == nil; wrote != tt.wantWrote {
				t.Fatalf("out.txt written=%v; want %v", wrote, tt.wantWrote)
			}
		})
	}
	t.Run("no mount no fs", func(t *testing.T) {
		var out bytes.Buffer
		code, _ := module(t, "fsguest").Run(context.Background(), Spec{Stdout: &out})
		if code != 1 || !strings.Contains(out.String(), "read error") {
			t.Fatalf("code=%d out=%q; want a read error", code, out.String())
		}
	})
}
