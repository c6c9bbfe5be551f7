// Package modstore keeps wasm modules in a JetStream Object Store, named by
// their sha256 digest, with NAME:TAG references in a KV bucket beside it.
// Pods reference NAME:TAG or NAME@sha256:HEX.
package modstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/wire"
)

// ErrNotFound means no module answers the reference.
var ErrNotFound = errors.New("module not found")

// wasmMagic opens every binary wasm module.
var wasmMagic = []byte{0x00, 'a', 's', 'm'}

// Store is the fleet's module registry.
type Store struct {
	obj  jetstream.ObjectStore
	tags jetstream.KeyValue
}

// Open creates the buckets if needed.
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      wire.ModulesBucket,
		Description: "wasm modules by sha256 digest",
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("open module store: %w", err)
	}
	tags, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:  wire.ModuleTagsBucket,
		History: 5,
		Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("open module tags: %w", err)
	}
	return &Store{obj: obj, tags: tags}, nil
}

// Digest is the sha256 digest of b as "sha256:<hex>".
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseRef splits NAME:TAG or NAME@sha256:HEX.
func ParseRef(ref string) (name, tag, digest string, err error) {
	if err := api.ValidModuleRef(ref); err != nil {
		return "", "", "", err
	}
	if n, d, ok := strings.Cut(ref, "@"); ok {
		return n, "", d, nil
	}
	n, t, _ := strings.Cut(ref, ":")
	return n, t, "", nil
}

func tagKey(name, tag string) string { return name + "." + tag }

// Push stores a module under NAME:TAG and returns its digest. It refuses
// data that is not a binary wasm module.
func (s *Store) Push(ctx context.Context, ref string, wasm []byte) (string, error) {
	name, tag, digest, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	if digest != "" {
		return "", fmt.Errorf("push %s: name the module NAME:TAG, not by digest", ref)
	}
	if !bytes.HasPrefix(wasm, wasmMagic) {
		return "", fmt.Errorf("push %s: not a wasm module (missing \\0asm header)", ref)
	}
	d := Digest(wasm)
	if _, err := s.obj.GetInfo(ctx, d); errors.Is(err, jetstream.ErrObjectNotFound) {
		if _, err := s.obj.PutBytes(ctx, d, wasm); err != nil {
			return "", fmt.Errorf("push %s: %w", ref, err)
		}
	} else if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	b, _ := json.Marshal(wire.ModuleTag{Name: name, Tag: tag, Digest: d, Size: int64(len(wasm)), Pushed: time.Now().UTC().Format(time.RFC3339)})
	if _, err := s.tags.Put(ctx, tagKey(name, tag), b); err != nil {
		return "", fmt.Errorf("tag %s: %w", ref, err)
	}
	return d, nil
}

// Resolve returns the digest a reference names.
func (s *Store) Resolve(ctx context.Context, ref string) (string, error) {
	_, tag, digest, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	if digest != "" {
		if _, err := s.obj.GetInfo(ctx, digest); err != nil {
			return "", fmt.Errorf("%s: %w", ref, ErrNotFound)
		}
		return digest, nil
	}
	name := strings.TrimSuffix(ref, ":"+tag)
	e, err := s.tags.Get(ctx, tagKey(name, tag))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	var t wire.ModuleTag
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	return t.Digest, nil
}

// Fetch reads a module by digest and checks that its bytes hash to it.
func (s *Store) Fetch(ctx context.Context, digest string) ([]byte, error) {
	r, err := s.obj.Get(ctx, digest)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", digest, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", digest, err)
	}
	if got := Digest(b); got != digest {
		return nil, fmt.Errorf("fetch %s: content hashes to %s", digest, got)
	}
	return b, nil
}

// List returns every tag, sorted by name and tag.
func (s *Store) List(ctx context.Context) ([]wire.ModuleTag, error) {
	lister, err := s.tags.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("list modules: %w", err)
	}
	var out []wire.ModuleTag
	if lister != nil {
		for k := range lister.Keys() {
			e, err := s.tags.Get(ctx, k)
			if err != nil {
				continue
			}
			var t wire.ModuleTag
			if json.Unmarshal(e.Value(), &t) == nil {
				out = append(out, t)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Tag < out[j].Tag
	})
	return out, nil
}
