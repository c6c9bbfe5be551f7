// Package store keeps Flotilla's objects in a JetStream key-value bucket.
// Every write is a compare-and-set on the key's revision, and that revision
// is the object's resourceVersion, so a stale writer gets ErrConflict and a
// process killed mid-write loses nothing that was acknowledged.
package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
)

// Bucket is the KV bucket holding every object.
const Bucket = "flotilla-objects"

// Store reads and writes objects.
type Store struct {
	kv jetstream.KeyValue
}

// Open creates the bucket if needed. replicas > 1 asks a NATS cluster to
// replicate it.
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	if replicas < 1 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   Bucket,
		History:  1,
		Storage:  jetstream.FileStorage,
		Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", Bucket, err)
	}
	return &Store{kv: kv}, nil
}

// Key is the KV key of an object: <kind>.<namespace>.<name>, with "_" for
// cluster-scoped kinds.
func Key(kind, ns, name string) string {
	if ns == "" {
		ns = "_"
	}
	return strings.ToLower(kind) + "." + ns + "." + name
}

func keyOf(obj api.Object) string {
	m := obj.GetMeta()
	return Key(obj.GetType().Kind, m.Namespace, m.Name)
}

// filter is the KV subject filter for a kind in one namespace or all.
func filter(kind, ns string) string {
	if ns == "" {
		return strings.ToLower(kind) + ".*.>"
	}
	return strings.ToLower(kind) + "." + ns + ".>"
}

// decode turns a KV entry into a typed object with its resourceVersion.
func decode(ki *api.KindInfo, e jetstream.KeyValueEntry) (api.Object, error) {
	obj := ki.New()
	if err := json.Unmarshal(e.Value(), obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", e.Key(), err)
	}
	obj.GetMeta().ResourceVersion = strconv.FormatUint(e.Revision(), 10)
	return obj, nil
}

func encode(obj api.Object) ([]byte, error) {
	m := obj.GetMeta()
	rv := m.ResourceVersion
	m.ResourceVersion = "" // the revision lives in the KV, not in the value
	b, err := json.Marshal(obj)
	m.ResourceVersion = rv
	return b, err
}

func kindInfo(kind string) (*api.KindInfo, error) {
	ki, err := api.LookupKind(kind)
	if err != nil {
		return nil, err
	}
	return ki, nil
}

// Get reads one object.
func (s *Store) Get(ctx context.Context, kind, ns, name string) (api.Object, error) {
	ki, err := kindInfo(kind)
	if err != nil {
		return nil, err
	}
	if !ki.Namespaced {
		ns = ""
	}
	e, err := s.kv.Get(ctx, Key(ki.Kind, ns, name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%s %q: %w", strings.ToLower(ki.Kind), name, api.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s/%s: %w", ki.Kind, ns, name, err)
	}
	return decode(ki, e)
}

// Create defaults, validates and stores a new object; it fails with
// ErrAlreadyExists if the name is taken. The returned object carries the
// server-set uid, creationTimestamp, generation and resourceVersion.
func (s *Store) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	api.Defaults(obj)
	m := obj.GetMeta()
	generated := m.Name == "" && m.GenerateName != ""
	for attempt := 0; ; attempt++ {
		if generated {
			m.Name = m.GenerateName + randSuffix()
		}
		if err := api.Validate(obj); err != nil {
			return nil, err
		}
		m.UID = newUID()
		m.CreationTimestamp = api.Now()
		m.Generation = 1
		m.ResourceVersion = ""
		b, err := encode(obj)
		if err != nil {
			return nil, err
		}
		rev, err := s.kv.Create(ctx, keyOf(obj), b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			if generated && attempt < 5 {
				continue
			}
			return nil, fmt.Errorf("%s %q: %w", strings.ToLower(obj.GetType().Kind), m.Name, api.ErrAlreadyExists)
		}
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", keyOf(obj), err)
		}
		m.ResourceVersion = strconv.FormatUint(rev, 10)
		return obj, nil
	}
}

// Update replaces an object if its resourceVersion is still the stored
// revision; otherwise it fails with ErrConflict. An empty resourceVersion
// means "whatever is stored" (an unconditional update, used by apply).
// Immutable metadata (uid, creationTimestamp) is kept from the stored
// object, and generation moves only when the spec changes.
func (s *Store) Update(ctx context.Context, obj api.Object) (api.Object, error) {
	api.Defaults(obj)
	if err := api.Validate(obj); err != nil {
		return nil, err
	}
	m := obj.GetMeta()
	ki, _ := api.KindOf(obj)
	cur, err := s.Get(ctx, ki.Kind, m.Namespace, m.Name)
	if err != nil {
		return nil, err
	}
	cm := cur.GetMeta()
	if m.ResourceVersion != "" && m.ResourceVersion != cm.ResourceVersion {
		return nil, fmt.Errorf("%s %q at resourceVersion %s (stored %s): %w", strings.ToLower(ki.Kind), m.Name, m.ResourceVersion, cm.ResourceVersion, api.ErrConflict)
	}
	if m.UID != "" && m.UID != cm.UID {
		return nil, fmt.Errorf("%s %q: uid %s does not match stored %s: %w", strings.ToLower(ki.Kind), m.Name, m.UID, cm.UID, api.ErrConflict)
	}
	m.UID, m.CreationTimestamp, m.Generation = cm.UID, cm.CreationTimestamp, cm.Generation
	if !bytes.Equal(specOf(obj), specOf(cur)) {
		m.Generation++
	}
	b, err := encode(obj)
	if err != nil {
		return nil, err
	}
	rev, _ := strconv.ParseUint(cm.ResourceVersion, 10, 64)
	nrev, err := s.kv.Update(ctx, keyOf(obj), b, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil, fmt.Errorf("%s %q: %w", strings.ToLower(ki.Kind), m.Name, api.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", keyOf(obj), err)
	}
	m.ResourceVersion = strconv.FormatUint(nrev, 10)
	return obj, nil
}

// specOf is the JSON of an object's spec, for generation bumps.
func specOf(obj api.Object) []byte {
	b, _ := json.Marshal(obj)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	return m["spec"]
}

// Delete removes an object. A non-empty resourceVersion makes it a
// compare-and-set.
func (s *Store) Delete(ctx context.Context, kind, ns, name, resourceVersion string) error {
	ki, err := kindInfo(kind)
	if err != nil {
		return err
	}
	if !ki.Namespaced {
		ns = ""
	}
	key := Key(ki.Kind, ns, name)
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%s %q: %w", strings.ToLower(ki.Kind), name, api.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	rev := e.Revision()
	if resourceVersion != "" {
		want, _ := strconv.ParseUint(resourceVersion, 10, 64)
		if want != rev {
			return fmt.Errorf("%s %q: %w", strings.ToLower(ki.Kind), name, api.ErrConflict)
		}
	}
	err = s.kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("%s %q: %w", strings.ToLower(ki.Kind), name, api.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// ListOptions narrow a list.
type ListOptions struct {
	Namespace string // "" = all namespaces
	Selector  api.Selector
	// Limit caps the page size (0 = everything); Continue is the token a
	// previous page returned.
	Limit    int
	Continue string
}

// List returns the objects of a kind in key order, and a continue token
// when more remain.
func (s *Store) List(ctx context.Context, kind string, o ListOptions) ([]api.Object, string, error) {
	ki, err := kindInfo(kind)
	if err != nil {
		return nil, "", err
	}
	ns := o.Namespace
	if !ki.Namespaced {
		ns = ""
	}
	w, err := s.kv.WatchFiltered(ctx, []string{filter(ki.Kind, ns)}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", ki.Plural, err)
	}
	defer w.Stop()
	var entries []jetstream.KeyValueEntry
	for e := range w.Updates() {
		if e == nil {
			break // initial values done
		}
		if o.Continue != "" && e.Key() <= o.Continue {
			continue
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Key() < entries[j].Key() })
	var out []api.Object
	next := ""
	for _, e := range entries {
		obj, err := decode(ki, e)
		if err != nil {
			return nil, "", err
		}
		if !o.Selector.Matches(obj.GetMeta().Labels) {
			continue
		}
		if o.Limit > 0 && len(out) == o.Limit {
			next = keyOf(out[len(out)-1])
			break
		}
		out = append(out, obj)
	}
	return out, next, nil
}

// EventType says what happened to an object.
type EventType string

// Watch event types. Synced marks the end of the initial list.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
	Synced   EventType = "SYNCED"
)

// Event is one change seen by a watch. A Deleted event carries the last
// state the watch saw.
type Event struct {
	Type   EventType
	Object api.Object
}

// Watch streams the current objects of a kind (as Added, then one Synced)
// and every change after, in revision order, until ctx ends. The channel
// closes when the watch ends.
func (s *Store) Watch(ctx context.Context, kind, ns string) (<-chan Event, error) {
	ki, err := kindInfo(kind)
	if err != nil {
		return nil, err
	}
	if !ki.Namespaced {
		ns = ""
	}
	w, err := s.kv.WatchFiltered(ctx, []string{filter(ki.Kind, ns)})
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", ki.Plural, err)
	}
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		defer w.Stop()
		seen := map[string]api.Object{}
		send := func(ev Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case e, ok = <-w.Updates():
			case <-ctx.Done():
				return
			}
			if !ok {
				return
			}
			if e == nil {
				if !send(Event{Type: Synced}) {
					return
				}
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				last, ok := seen[e.Key()]
				if !ok {
					continue
				}
				delete(seen, e.Key())
				if !send(Event{Type: Deleted, Object: last}) {
					return
				}
				continue
			}
			obj, err := decode(ki, e)
			if err != nil {
				continue // an undecodable value cannot be acted on; skip it
			}
			t := Modified
			prev, ok := seen[e.Key()]
			switch {
			case !ok:
				t = Added
			case prev.GetMeta().UID != obj.GetMeta().UID:
				// A delete and a re-create the watch saw as one put (a
				// consumer that restarted past the delete marker, which
				// the bucket keeps only until the next put): still two
				// objects, so two events.
				if !send(Event{Type: Deleted, Object: prev}) {
					return
				}
				t = Added
			}
			seen[e.Key()] = obj
			if !send(Event{Type: t, Object: obj}) {
				return
			}
		}
	}()
	return out, nil
}

func newUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// randSuffix is a 5-character suffix for generated names, like Kubernetes'.
func randSuffix() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = suffixAlphabet[int(b[i])%len(suffixAlphabet)]
	}
	return string(b)
}
