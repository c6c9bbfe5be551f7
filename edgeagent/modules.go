package edgeagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/wasmrt"
	"github.com/flotilla-edge/flotilla/wasmrt/modstore"
)

// Container waiting reasons for module problems, as Kubernetes names them.
const (
	ReasonErrImagePull     = "ErrImagePull"
	ReasonImagePullBackOff = "ImagePullBackOff"
	ReasonInvalidImage     = "InvalidImage"
	ReasonCrashLoopBackOff = "CrashLoopBackOff"
	ReasonContainerCreate  = "ContainerCreating"
)

// pullError says why a module could not be made ready to run.
type pullError struct {
	reason string // ErrImagePull or InvalidImage
	err    error
}

func (e *pullError) Error() string { return e.err.Error() }
func (e *pullError) Unwrap() error { return e.err }

// modules turns image references into compiled modules: resolve through the
// fleet's module store, cache bytes on disk by digest, compile once.
type modules struct {
	js  jetstream.JetStream
	rt  *wasmrt.Runtime
	dir string // DataDir/modules
	// online reports whether NATS is connected; offline, known references
	// resolve from the local map without waiting for a timeout.
	online func() bool

	mu    sync.Mutex
	store *modstore.Store
	refs  map[string]string // last known ref -> digest, for offline starts
}

func newModules(js jetstream.JetStream, rt *wasmrt.Runtime, dir string, online func() bool) (*modules, error) {
	m := &modules{js: js, rt: rt, dir: dir, online: online, refs: map[string]string{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("module cache %s: %w", dir, err)
	}
	if err := loadJSON(m.refsFile(), &m.refs); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *modules) refsFile() string { return filepath.Join(m.dir, "refs.json") }

// openStore opens the module store once NATS answers.
func (m *modules) openStore(ctx context.Context) (*modstore.Store, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.store != nil {
		return m.store, nil
	}
	s, err := modstore.Open(ctx, m.js)
	if err != nil {
		return nil, err
	}
	m.store = s
	return s, nil
}

// resolve maps ref to a digest, falling back to the last known digest when
// the store cannot be reached.
func (m *modules) resolve(ctx context.Context, ref string) (string, error) {
	if _, d, ok := strings.Cut(ref, "@"); ok {
		return d, nil
	}
	if !m.online() {
		m.mu.Lock()
		d, ok := m.refs[ref]
		m.mu.Unlock()
		if ok {
			return d, nil
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := m.openStore(rctx)
	var digest string
	if err == nil {
		digest, err = s.Resolve(rctx, ref)
	}
	if errors.Is(err, modstore.ErrNotFound) {
		return "", &pullError{reason: ReasonErrImagePull, err: fmt.Errorf("module %s not found in the fleet's module store", ref)}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if d, ok := m.refs[ref]; ok {
			return d, nil // offline: run what we ran last time
		}
		return "", &pullError{reason: ReasonErrImagePull, err: fmt.Errorf("resolve module %s: %w", ref, err)}
	}
	if m.refs[ref] != digest {
		m.refs[ref] = digest
		refs := make(map[string]string, len(m.refs))
		for k, v := range m.refs {
			refs[k] = v
		}
		if err := saveJSON(m.refsFile(), refs); err != nil {
			return digest, nil // the cache is an optimisation; running matters more
		}
	}
	return digest, nil
}

// bytes returns the module's bytes from the disk cache or the store.
func (m *modules) bytes(ctx context.Context, ref, digest string) ([]byte, error) {
	hex := strings.TrimPrefix(digest, "sha256:")
	path := filepath.Join(m.dir, hex+".wasm")
	if b, err := os.ReadFile(path); err == nil && modstore.Digest(b) == digest {
		return b, nil
	}
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	s, err := m.openStore(fctx)
	if err != nil {
		return nil, &pullError{reason: ReasonErrImagePull, err: fmt.Errorf("fetch module %s: %w", ref, err)}
	}
	b, err := s.Fetch(fctx, digest)
	if errors.Is(err, modstore.ErrNotFound) {
		return nil, &pullError{reason: ReasonErrImagePull, err: fmt.Errorf("module %s (%s) not found in the fleet's module store", ref, digest)}
	}
	if err != nil {
		return nil, &pullError{reason: ReasonErrImagePull, err: fmt.Errorf("fetch module %s: %w", ref, err)}
	}
	if err := writeFileAtomic(path, b); err != nil {
		return b, nil // cannot cache; still runnable
	}
	return b, nil
}

// get returns the compiled module for ref and its digest.
func (m *modules) get(ctx context.Context, ref string) (*wasmrt.Module, string, error) {
	digest, err := m.resolve(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	b, err := m.bytes(ctx, ref, digest)
	if err != nil {
		return nil, digest, err
	}
	mod, err := m.rt.Compile(ctx, digest, b)
	if errors.Is(err, wasmrt.ErrInvalidModule) {
		return nil, digest, &pullError{reason: ReasonInvalidImage, err: fmt.Errorf("module %s: %w", ref, err)}
	}
	if err != nil {
		return nil, digest, fmt.Errorf("compile module %s: %w", ref, err)
	}
	return mod, digest, nil
}
