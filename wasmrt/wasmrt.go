// Package wasmrt runs WebAssembly (WASI preview1) modules for the Flotilla
// edge agent. It hides wazero behind a small surface: compile a module once
// per digest, run it as a command, or serve HTTP from it in persistent or
// CGI (WAGI-compatible) mode.
package wasmrt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/flotilla-edge/flotilla/wasmrt/hostcall"
)

// Sentinel errors; returned errors wrap them.
var (
	// ErrInvalidModule means the bytes are not a valid (or runnable) wasm module.
	ErrInvalidModule = errors.New("invalid wasm module")
	// ErrCPUTimeExceeded means a run or request outlived Limits.CPUTime.
	ErrCPUTimeExceeded = errors.New("cpu time limit exceeded")
	// ErrMemoryLimit means the module needed more than Limits.MemoryBytes.
	ErrMemoryLimit = errors.New("memory limit exceeded")
	// ErrClosed means the Runtime or HTTPHandler was closed.
	ErrClosed = errors.New("wasmrt: closed")
)

// Config for New.
type Config struct {
	// CacheDir is the on-disk wazero compilation cache so a module digest
	// compiles once across agent restarts. Empty means in-memory only.
	CacheDir string
	// HostCalls, when set, exports the "flotilla" host module (outbound
	// HTTP, NATS publish) to every module of this runtime; modules that
	// import it are accepted only then.
	HostCalls *hostcall.Host
}

// Runtime owns the wazero runtimes with WASI preview1 and the compiled
// modules, keyed by digest. It is safe for concurrent use.
//
// There are two wazero runtimes over one compilation cache: rt compiles
// guest code with termination checks, so a context deadline or cancel
// stops even a guest that never calls the host (CPU-time limits, stopping
// a command); fast compiles without them, about 2.5 times quicker per
// request, and serves HTTP instances that have no CPU-time limit.
type Runtime struct {
	rt    wazero.Runtime
	fast  wazero.Runtime
	cache wazero.CompilationCache

	mu      sync.Mutex
	closed  bool
	modules map[string]*compileEntry
	// hostCalls records that the "flotilla" host module is instantiated.
	hostCalls bool
}

// compileEntry lets concurrent Compile calls for one digest share one
// compilation: done is closed once mod or err is set.
type compileEntry struct {
	done chan struct{}
	mod  *Module
	err  error
}

// New creates a Runtime.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("open compilation cache %s: %w", cfg.CacheDir, err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	rt, err := newWazero(ctx, cache, true, cfg.HostCalls)
	if err != nil {
		_ = cache.Close(ctx)
		return nil, err
	}
	fast, err := newWazero(ctx, cache, false, cfg.HostCalls)
	if err != nil {
		_ = rt.Close(ctx)
		_ = cache.Close(ctx)
		return nil, err
	}
	return &Runtime{rt: rt, fast: fast, cache: cache, modules: make(map[string]*compileEntry), hostCalls: cfg.HostCalls != nil}, nil
}

// newWazero makes one wazero runtime with WASI and the host calls.
func newWazero(ctx context.Context, cache wazero.CompilationCache, guarded bool, hc *hostcall.Host) (wazero.Runtime, error) {
	rcfg := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		// Lets a context deadline stop guest code that never calls the host.
		WithCloseOnContextDone(guarded)
	rt := wazero.NewRuntimeWithConfig(ctx, rcfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiate wasi_snapshot_preview1: %w", err)
	}
	if hc != nil {
		if err := hc.Instantiate(ctx, rt); err != nil {
			_ = rt.Close(ctx)
			return nil, err
		}
	}
	return rt, nil
}

// Close closes every module instance and compiled module. Handlers and runs
// still in flight fail.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.modules = nil
	r.mu.Unlock()
	err := errors.Join(r.rt.Close(ctx), r.fast.Close(ctx))
	if cerr := r.cache.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close wasm runtime: %w", err)
	}
	return nil
}

// Compile compiles wasm, or returns the module already compiled for digest.
// Concurrent calls for one digest compile once. If digest has the form
// "sha256:<64 hex>" the bytes are checked against it.
func (r *Runtime) Compile(ctx context.Context, digest string, wasm []byte) (*Module, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("compile %s: %w", digest, ErrClosed)
	}
	if e, ok := r.modules[digest]; ok {
		r.mu.Unlock()
		select {
		case <-e.done:
			return e.mod, e.err
		case <-ctx.Done():
			return nil, fmt.Errorf("compile %s: %w", digest, ctx.Err())
		}
	}
	e := &compileEntry{done: make(chan struct{})}
	r.modules[digest] = e
	r.mu.Unlock()

	e.mod, e.err = r.compile(ctx, digest, wasm)
	if e.err != nil {
		// Forget failures so a later call with fixed bytes can succeed.
		r.mu.Lock()
		if r.modules[digest] == e {
			delete(r.modules, digest)
		}
		r.mu.Unlock()
	}
	close(e.done)
	return e.mod, e.err
}

func (r *Runtime) compile(ctx context.Context, digest string, wasm []byte) (*Module, error) {
	if hexSum, ok := strings.CutPrefix(digest, "sha256:"); ok && len(hexSum) == sha256.Size*2 {
		sum := sha256.Sum256(wasm)
		if !strings.EqualFold(hex.EncodeToString(sum[:]), hexSum) {
			return nil, fmt.Errorf("%w %s: content has digest sha256:%x", ErrInvalidModule, digest, sum)
		}
	}
	cm, err := r.rt.CompileModule(ctx, wasm)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("compile %s: %w", digest, ctx.Err())
		}
		return nil, fmt.Errorf("%w %s: %w", ErrInvalidModule, digest, err)
	}
	m := &Module{rt: r, compiled: cm, digest: digest, wasm: wasm}
	if err := m.inspect(); err != nil {
		_ = cm.Close(ctx)
		return nil, fmt.Errorf("%w %s: %w", ErrInvalidModule, digest, err)
	}
	return m, nil
}

// Evict drops the compiled module for digest from memory (the on-disk cache
// keeps it). Modules and handlers obtained for the digest must be closed or
// no longer used: new instances of an evicted module fail.
func (r *Runtime) Evict(digest string) {
	r.mu.Lock()
	e, ok := r.modules[digest]
	if ok {
		delete(r.modules, digest)
	}
	r.mu.Unlock()
	if !ok {
		return
	}
	<-e.done // an in-flight compile finishes first; it is bounded
	if e.mod != nil {
		_ = e.mod.compiled.Close(context.Background())
		if cm, _ := e.mod.fastModule(context.Background(), false); cm != nil {
			_ = cm.Close(context.Background())
		}
	}
}
