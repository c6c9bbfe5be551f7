package wasmrt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/flotilla-edge/flotilla/wasmrt/hostcall"
	"github.com/flotilla-edge/flotilla/wasmrt/hostcall/abi"
)

const wasmPageSize = 64 << 10

// Limits bound one instance.
type Limits struct {
	// MemoryBytes caps the linear memory, rounded down to 64 KiB pages.
	// 0 means the wazero default (4 GiB).
	MemoryBytes int64
	// CPUTime bounds a command's whole run, or one HTTP request. It is
	// measured as wall-clock time. 0 means no limit; a persistent HTTP
	// handler without one runs on the faster runtime without termination
	// checks (see Runtime), so its instances stop only between requests or
	// at their next host call.
	CPUTime time.Duration
}

// Mount preopens a host directory for the guest.
type Mount struct {
	HostPath  string
	GuestPath string
	ReadOnly  bool
}

// Spec describes how to run an instance.
type Spec struct {
	Name   string   // argv[0]
	Args   []string // argv[1:]
	Env    []string // "K=V"
	Stdout io.Writer
	Stderr io.Writer
	Limits Limits
	Mounts []Mount
	// Caller identifies the pod to the "flotilla" host module (resolution
	// relative to its namespace, per-pod policy, NATS subject prefix).
	Caller hostcall.Caller

	// unguarded lets an instance without a CPU-time limit run on the fast
	// runtime; only persistent HTTP pools set it, since a command must stay
	// stoppable by its context.
	unguarded bool
}

// Module is a compiled module, shared by every instance of its digest.
type Module struct {
	rt       *Runtime
	compiled wazero.CompiledModule

	// The unguarded compilation (see Runtime) is made on first use; wasm
	// is kept until then.
	fastMu       sync.Mutex
	wasm         []byte
	fastCompiled wazero.CompiledModule
	digest       string
	// minMemBytes is the initial linear memory the module declares; an
	// instance whose MemoryBytes is below it can never start.
	minMemBytes uint64
}

// Digest returns the digest the module was compiled under.
func (m *Module) Digest() string { return m.digest }

// inspect rejects modules that cannot run as WASI commands under this
// runtime, so the failure shows at Compile rather than at every start.
func (m *Module) inspect() error {
	if _, ok := m.compiled.ExportedFunctions()["_start"]; !ok {
		return errors.New("no exported _start function (not a WASI command)")
	}
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == abi.ModuleName && m.rt.hostCalls && slices.Contains(abi.Functions, name) {
			continue
		}
		if mod != wasiModule {
			return fmt.Errorf("unsupported import %s.%s", mod, name)
		}
	}
	for _, mem := range m.compiled.ExportedMemories() {
		m.minMemBytes = max(m.minMemBytes, uint64(mem.Min())*wasmPageSize)
	}
	if len(m.compiled.ImportedMemories()) > 0 {
		return errors.New("imported memories are not supported")
	}
	return nil
}

const wasiModule = "wasi_snapshot_preview1"

// instance is one instantiated module whose _start has not run yet.
type instance struct {
	mod   api.Module
	start api.Function
	mem   *limitedMemory // nil without a memory limit
	// caller is attached to the context _start runs under, which is the
	// context host functions receive.
	caller hostcall.Caller
}

// instantiate creates an instance without running _start, so that failures
// to instantiate are told apart from the guest's own exit.
func (m *Module) instantiate(ctx context.Context, spec Spec, stdin io.Reader, stdout io.Writer) (*instance, error) {
	var mem *limitedMemory
	if spec.Limits.MemoryBytes > 0 {
		limit := uint64(spec.Limits.MemoryBytes) / wasmPageSize * wasmPageSize
		if limit < m.minMemBytes {
			return nil, fmt.Errorf("instantiate %s: %w: module needs %d bytes initially, limit is %d",
				m.digest, ErrMemoryLimit, m.minMemBytes, limit)
		}
		mem = &limitedMemory{limit: limit}
		// Per-instance allocator: wazero's own page limit is per runtime,
		// and one runtime per limit would defeat the shared compile cache.
		ctx = experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(mem.allocate))
	}
	cfg, err := moduleConfig(spec, stdin, stdout)
	if err != nil {
		return nil, fmt.Errorf("instantiate %s: %w", m.digest, err)
	}
	rt, compiled := m.rt.rt, m.compiled
	if spec.Limits.CPUTime == 0 && spec.unguarded {
		cm, err := m.fastModule(ctx, true)
		if err != nil {
			return nil, fmt.Errorf("instantiate %s: %w", m.digest, err)
		}
		rt, compiled = m.rt.fast, cm
	}
	mod, err := rt.InstantiateModule(ctx, compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate %s: %w", m.digest, err)
	}
	return &instance{mod: mod, start: mod.ExportedFunction("_start"), mem: mem, caller: spec.Caller}, nil
}

func moduleConfig(spec Spec, stdin io.Reader, stdout io.Writer) (wazero.ModuleConfig, error) {
	name := spec.Name
	if name == "" {
		name = "module"
	}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous, so many instances coexist
		WithArgs(append([]string{name}, spec.Args...)...).
		WithStartFunctions(). // _start is called by run, see instantiate
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
	for _, kv := range spec.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad env entry %q: want K=V", kv)
		}
		cfg = cfg.WithEnv(k, v)
	}
	if stdin != nil {
		cfg = cfg.WithStdin(stdin)
	}
	if stdout != nil {
		cfg = cfg.WithStdout(stdout)
	}
	if spec.Stderr != nil {
		cfg = cfg.WithStderr(spec.Stderr)
	}
	if len(spec.Mounts) > 0 {
		fs := wazero.NewFSConfig()
		for _, mt := range spec.Mounts {
			if mt.HostPath == "" || mt.GuestPath == "" {
				return nil, fmt.Errorf("bad mount %+v: host and guest path required", mt)
			}
			if mt.ReadOnly {
				fs = fs.WithReadOnlyDirMount(mt.HostPath, mt.GuestPath)
			} else {
				fs = fs.WithDirMount(mt.HostPath, mt.GuestPath)
			}
		}
		cfg = cfg.WithFSConfig(fs)
	}
	return cfg, nil
}

// run calls _start and classifies the outcome. exitCode is the guest's exit
// status, or -1 when it did not exit on its own. cpuCause is the context
// cause that marks a CPU limit expiry.
func (in *instance) run(ctx context.Context, digest string) (int, error) {
	defer in.mod.Close(context.WithoutCancel(ctx))
	_, err := in.start.Call(hostcall.WithCaller(ctx, in.caller))
	code := 0
	var exitErr *sys.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		switch exitErr.ExitCode() {
		case sys.ExitCodeContextCanceled, sys.ExitCodeDeadlineExceeded:
			code = -1
			if cause := context.Cause(ctx); errors.Is(cause, ErrCPUTimeExceeded) {
				err = cause
			} else {
				err = fmt.Errorf("stopped: %w", cause)
			}
		default:
			code = int(exitErr.ExitCode())
			err = nil
		}
	default:
		code = -1
		err = fmt.Errorf("trap: %w", err)
	}
	if in.mem != nil && in.mem.exceeded.Load() {
		// The guest saw memory.grow fail; whatever it did next (a Go guest
		// throws "out of memory" and exits 2), the limit is the cause.
		err = fmt.Errorf("%w (limit %d bytes)", ErrMemoryLimit, in.mem.limit)
		if code == 0 {
			code = -1
		}
	}
	if err != nil {
		return code, fmt.Errorf("run %s: %w", digest, err)
	}
	return code, nil
}

// Run runs the module's _start to completion. It returns the WASI exit code
// (0 on normal return); err is non-nil only for failures that are not a
// plain exit: a trap, an exceeded limit (wrapping ErrCPUTimeExceeded or
// ErrMemoryLimit), an instantiate failure, or ctx being done. exitCode is -1
// when the guest did not exit on its own.
func (m *Module) Run(ctx context.Context, spec Spec) (exitCode int, err error) {
	return m.run(ctx, spec, nil)
}

func (m *Module) run(ctx context.Context, spec Spec, stdin io.Reader) (int, error) {
	if spec.Limits.CPUTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, spec.Limits.CPUTime,
			fmt.Errorf("%w (%s)", ErrCPUTimeExceeded, spec.Limits.CPUTime))
		defer cancel()
	}
	in, err := m.instantiate(ctx, spec, stdin, spec.Stdout)
	if err != nil {
		return -1, err
	}
	return in.run(ctx, m.digest)
}

// limitedMemory backs one instance's linear memory and refuses to grow past
// limit; wazero turns the refusal into memory.grow returning -1.
type limitedMemory struct {
	limit    uint64
	buf      []byte
	exceeded atomic.Bool
}

func (l *limitedMemory) allocate(capacity, maxBytes uint64) experimental.LinearMemory {
	l.buf = make([]byte, 0, min(capacity, l.limit))
	return l
}

func (l *limitedMemory) Reallocate(size uint64) []byte {
	if size > l.limit {
		l.exceeded.Store(true)
		return nil
	}
	if size <= uint64(cap(l.buf)) {
		l.buf = l.buf[:size]
		return l.buf
	}
	// Grow geometrically, as append would, but never past the limit.
	newCap := min(max(size, uint64(cap(l.buf))*2), l.limit)
	nb := make([]byte, size, newCap)
	copy(nb, l.buf)
	l.buf = nb
	return l.buf
}

func (l *limitedMemory) Free() { l.buf = nil }

// fastModule returns the module compiled without termination checks,
// compiling it first when create is set.
func (m *Module) fastModule(ctx context.Context, create bool) (wazero.CompiledModule, error) {
	m.fastMu.Lock()
	defer m.fastMu.Unlock()
	if m.fastCompiled != nil || !create {
		return m.fastCompiled, nil
	}
	cm, err := m.rt.fast.CompileModule(ctx, m.wasm)
	if err != nil {
		return nil, fmt.Errorf("compile without termination checks: %w", err)
	}
	m.fastCompiled, m.wasm = cm, nil
	return cm, nil
}
