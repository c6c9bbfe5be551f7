// Package apiserver serves Flotilla's API over NATS request/reply
// (subjects in api/wire): it decodes strictly, defaults, validates and
// writes through the store, which makes every write a compare-and-set.
package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/wire"
	"github.com/flotilla-edge/flotilla/controlplane/store"
)

// Server answers API requests.
type Server struct {
	nc      *nats.Conn
	store   *store.Store
	log     *slog.Logger
	version string
	leader  func() string
	svcNet  *serviceNetwork // nil: services get no cluster IP or node ports

	mu      sync.Mutex
	watches map[string]*watch // by inbox
}

type watch struct {
	cancel   context.CancelFunc
	lastSeen time.Time
}

// New makes a server; Start subscribes it.
func New(nc *nats.Conn, st *store.Store, log *slog.Logger, version string, leader func() string) *Server {
	return &Server{nc: nc, store: st, log: log, version: version, leader: leader, watches: map[string]*watch{}}
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	handlers := map[string]func(context.Context, []byte) any{
		wire.SubjectGet:     s.get,
		wire.SubjectList:    s.list,
		wire.SubjectCreate:  s.create,
		wire.SubjectUpdate:  s.update,
		wire.SubjectApply:   s.apply,
		wire.SubjectDelete:  s.delete,
		wire.SubjectVersion: s.versionInfo,
	}
	var subs []*nats.Subscription
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
	for subj, h := range handlers {
		h := h
		sub, err := s.nc.QueueSubscribe(subj, wire.QueueGroup, func(m *nats.Msg) {
			// Each request gets its own goroutine so a slow list does not
			// hold up gets behind it.
			go func() {
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				reply := h(rctx, m.Data)
				b, _ := json.Marshal(reply)
				_ = m.Respond(b)
			}()
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		subs = append(subs, sub)
	}
	sub, err := s.nc.QueueSubscribe(wire.SubjectWatch, wire.QueueGroup, func(m *nats.Msg) { s.startWatch(ctx, m) })
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", wire.SubjectWatch, err)
	}
	subs = append(subs, sub)
	// Keepalives and stops go to every server: only the one holding the
	// watch acts on them.
	for subj, h := range map[string]func(string){wire.SubjectKeepalive: s.keepalive, wire.SubjectStop: s.stopWatch} {
		h := h
		sub, err := s.nc.Subscribe(subj, func(m *nats.Msg) {
			var c wire.WatchControl
			if json.Unmarshal(m.Data, &c) == nil {
				h(c.Inbox)
			}
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		subs = append(subs, sub)
	}
	t := time.NewTicker(wire.KeepaliveEvery * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for _, w := range s.watches {
				w.cancel()
			}
			s.mu.Unlock()
			return nil
		case <-t.C:
			s.expireWatches()
		}
	}
}

func wireError(err error) *wire.Error {
	if err == nil {
		return nil
	}
	return &wire.Error{Code: api.Code(err), Message: err.Error()}
}

func objectReply(obj api.Object, err error) any {
	if err != nil {
		return wire.Reply{Error: wireError(err)}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return wire.Reply{Error: wireError(err)}
	}
	return wire.Reply{Object: b}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", api.ErrInvalid, fmt.Sprintf(format, args...))
}

func (s *Server) get(ctx context.Context, data []byte) any {
	var r wire.ObjectRef
	if err := json.Unmarshal(data, &r); err != nil {
		return objectReply(nil, invalid("get request: %v", err))
	}
	return objectReply(s.store.Get(ctx, r.Kind, nsOrDefault(r.Kind, r.Namespace), r.Name))
}

func nsOrDefault(kind, ns string) string {
	if ki, err := api.LookupKind(kind); err == nil && ki.Namespaced && ns == "" {
		return api.DefaultNamespace
	}
	return ns
}

func (s *Server) list(ctx context.Context, data []byte) any {
	var r wire.ListRequest
	if err := json.Unmarshal(data, &r); err != nil {
		return wire.ListReply{Error: wireError(invalid("list request: %v", err))}
	}
	sel, err := api.ParseSelector(r.LabelSelector)
	if err != nil {
		return wire.ListReply{Error: wireError(fmt.Errorf("labelSelector: %w: %v", api.ErrInvalid, err))}
	}
	objs, next, err := s.store.List(ctx, r.Kind, store.ListOptions{Namespace: r.Namespace, Selector: sel, Limit: r.Limit, Continue: r.Continue})
	if err != nil {
		return wire.ListReply{Error: wireError(err)}
	}
	items := make([]json.RawMessage, 0, len(objs))
	for _, o := range objs {
		b, _ := json.Marshal(o)
		items = append(items, b)
	}
	return wire.ListReply{Items: items, Continue: next}
}

// decodeWrite decodes the object of a write request strictly.
func decodeWrite(data []byte) (api.Object, error) {
	var r wire.WriteRequest
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, invalid("write request: %v", err)
	}
	if len(r.Object) == 0 {
		return nil, api.FieldErrors{{Field: "object", Detail: "is required"}}
	}
	return api.DecodeOne(r.Object)
}

func (s *Server) create(ctx context.Context, data []byte) any {
	obj, err := decodeWrite(data)
	if err != nil {
		return objectReply(nil, err)
	}
	if err := s.admit(ctx, obj); err != nil {
		return objectReply(nil, err)
	}
	alloc, err := s.allocateService(ctx, obj, nil)
	if err != nil {
		return objectReply(nil, err)
	}
	created, err := s.store.Create(ctx, obj)
	alloc.finish(ctx, err)
	return objectReply(created, err)
}

// checkNamespace refuses objects in a namespace that does not exist.
func (s *Server) checkNamespace(ctx context.Context, obj api.Object) error {
	ki, err := api.KindOf(obj)
	if err != nil || !ki.Namespaced {
		return err
	}
	ns := obj.GetMeta().Namespace
	if ns == "" {
		ns = api.DefaultNamespace
	}
	if _, err := s.store.Get(ctx, "Namespace", "", ns); err != nil {
		if errors.Is(err, api.ErrNotFound) {
			return api.FieldErrors{{Field: "metadata.namespace", Detail: fmt.Sprintf("namespace %q does not exist", ns)}}
		}
		return err
	}
	return nil
}

func (s *Server) update(ctx context.Context, data []byte) any {
	obj, err := decodeWrite(data)
	if err != nil {
		return objectReply(nil, err)
	}
	cur, _ := s.store.Get(ctx, obj.GetType().Kind, obj.GetMeta().Namespace, obj.GetMeta().Name)
	alloc, err := s.allocateService(ctx, obj, cur)
	if err != nil {
		return objectReply(nil, err)
	}
	updated, err := s.store.Update(ctx, obj)
	alloc.finish(ctx, err)
	return objectReply(updated, err)
}

// apply creates the object, or replaces the user-owned parts of the stored
// one (labels, annotations, spec), keeping what the system owns (status,
// owner references). It retries its read-modify-write on conflicts.
func (s *Server) apply(ctx context.Context, data []byte) any {
	obj, err := decodeWrite(data)
	if err != nil {
		return objectReply(nil, err)
	}
	api.Defaults(obj)
	if err := api.Validate(obj); err != nil {
		return objectReply(nil, err)
	}
	if err := s.admit(ctx, obj); err != nil {
		return objectReply(nil, err)
	}
	m := obj.GetMeta()
	for attempt := 0; attempt < 5; attempt++ {
		cur, err := s.store.Get(ctx, obj.GetType().Kind, m.Namespace, m.Name)
		if errors.Is(err, api.ErrNotFound) {
			alloc, err := s.allocateService(ctx, obj, nil)
			if err != nil {
				return objectReply(nil, err)
			}
			created, err := s.store.Create(ctx, obj)
			alloc.finish(ctx, err)
			if errors.Is(err, api.ErrAlreadyExists) {
				continue
			}
			return objectReply(created, err)
		}
		if err != nil {
			return objectReply(nil, err)
		}
		merged := mergeApplied(cur, obj)
		alloc, err := s.allocateService(ctx, merged, cur)
		if err != nil {
			return objectReply(nil, err)
		}
		updated, err := s.store.Update(ctx, merged)
		alloc.finish(ctx, err)
		if errors.Is(err, api.ErrConflict) {
			continue
		}
		return objectReply(updated, err)
	}
	return objectReply(nil, fmt.Errorf("apply %s %q: %w", obj.GetType().Kind, m.Name, api.ErrConflict))
}

// mergeApplied copies every user-owned top-level field of applied (spec,
// data, ... everything but metadata and status) and its labels and
// annotations onto cur. It works on JSON so new kinds need no case here.
func mergeApplied(cur, applied api.Object) api.Object {
	var c, a map[string]json.RawMessage
	cb, _ := json.Marshal(cur)
	ab, _ := json.Marshal(applied)
	_ = json.Unmarshal(cb, &c)
	_ = json.Unmarshal(ab, &a)
	for k := range c {
		if _, ok := a[k]; !ok && k != "metadata" && k != "status" {
			delete(c, k) // the user dropped the field
		}
	}
	for k, v := range a {
		if k != "metadata" && k != "status" {
			c[k] = v
		}
	}
	mb, _ := json.Marshal(c)
	ki, _ := api.KindOf(cur)
	out := ki.New()
	_ = json.Unmarshal(mb, out)
	am, om := applied.GetMeta(), out.GetMeta()
	om.Labels, om.Annotations = am.Labels, am.Annotations
	return out
}

func (s *Server) delete(ctx context.Context, data []byte) any {
	var r wire.ObjectRef
	if err := json.Unmarshal(data, &r); err != nil {
		return objectReply(nil, invalid("delete request: %v", err))
	}
	ns := nsOrDefault(r.Kind, r.Namespace)
	// Without a resourceVersion the caller means "whatever is there now", so
	// a status write racing the delete is retried, not reported.
	for attempt := 0; ; attempt++ {
		obj, err := s.store.Get(ctx, r.Kind, ns, r.Name)
		if err != nil {
			return objectReply(nil, err)
		}
		rv := r.ResourceVersion
		if rv == "" {
			rv = obj.GetMeta().ResourceVersion
		}
		err = s.store.Delete(ctx, r.Kind, ns, r.Name, rv)
		if errors.Is(err, api.ErrConflict) && r.ResourceVersion == "" && attempt < 10 {
			continue
		}
		if err != nil {
			return objectReply(nil, err)
		}
		s.releaseService(ctx, obj)
		return objectReply(obj, nil)
	}
}

func (s *Server) versionInfo(context.Context, []byte) any {
	v := wire.VersionReply{Version: s.version, APIVersion: api.Version}
	if s.leader != nil {
		v.Leader = s.leader()
	}
	return v
}

func (s *Server) startWatch(parent context.Context, m *nats.Msg) {
	inbox := m.Reply
	if inbox == "" {
		return
	}
	send := func(ev wire.WatchEvent) {
		b, _ := json.Marshal(ev)
		_ = s.nc.Publish(inbox, b)
	}
	var r wire.WatchRequest
	if err := json.Unmarshal(m.Data, &r); err != nil {
		send(wire.WatchEvent{Type: "ERROR", Error: wireError(invalid("watch request: %v", err))})
		return
	}
	sel, err := api.ParseSelector(r.LabelSelector)
	if err != nil {
		send(wire.WatchEvent{Type: "ERROR", Error: wireError(fmt.Errorf("labelSelector: %w: %v", api.ErrInvalid, err))})
		return
	}
	ctx, cancel := context.WithCancel(parent)
	events, err := s.store.Watch(ctx, r.Kind, r.Namespace)
	if err != nil {
		cancel()
		send(wire.WatchEvent{Type: "ERROR", Error: wireError(err)})
		return
	}
	s.mu.Lock()
	s.watches[inbox] = &watch{cancel: cancel, lastSeen: time.Now()}
	s.mu.Unlock()
	go func() {
		defer s.stopWatch(inbox)
		f := selectorFilter{sel: sel, in: map[string]bool{}}
		for ev := range events {
			t, ok := f.pass(ev)
			if !ok {
				continue
			}
			b, _ := json.Marshal(ev.Object)
			if ev.Object == nil {
				b = nil
			}
			send(wire.WatchEvent{Type: string(t), Object: b})
		}
	}()
}

// selectorFilter turns a kind's event stream into the stream of the
// objects a label selector matches, as Kubernetes does: an object whose
// labels stop matching is DELETED from the watcher's view (with its new
// state), one that starts matching is ADDED.
type selectorFilter struct {
	sel api.Selector
	in  map[string]bool // namespace/name of the objects the watcher holds
}

func (f *selectorFilter) pass(ev store.Event) (store.EventType, bool) {
	if ev.Object == nil {
		return ev.Type, true // SYNCED
	}
	m := ev.Object.GetMeta()
	key := m.Namespace + "/" + m.Name
	was, match := f.in[key], f.sel.Matches(m.Labels)
	switch {
	case ev.Type == store.Deleted:
		delete(f.in, key)
		return ev.Type, was
	case match && !was:
		f.in[key] = true
		return store.Added, true
	case !match && was:
		delete(f.in, key)
		return store.Deleted, true
	}
	return ev.Type, match
}

func (s *Server) keepalive(inbox string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.watches[inbox]; ok {
		w.lastSeen = time.Now()
	}
}

func (s *Server) stopWatch(inbox string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.watches[inbox]; ok {
		w.cancel()
		delete(s.watches, inbox)
	}
}

func (s *Server) expireWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for inbox, w := range s.watches {
		if time.Since(w.lastSeen) > 3*wire.KeepaliveEvery*time.Second {
			w.cancel()
			delete(s.watches, inbox)
		}
	}
}

// Watches reports how many watches the server holds (for tests and status).
func (s *Server) Watches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watches)
}
