// Package events records Event objects: deduplicated (a repeat bumps the
// count and last timestamp), written in the background so a controller or
// the agent never waits on them, and dropped rather than queued forever
// when the store is unreachable.
package events

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// Writer is the part of the store (or of the API client) events need.
type Writer interface {
	Get(ctx context.Context, kind, ns, name string) (api.Object, error)
	Create(ctx context.Context, obj api.Object) (api.Object, error)
	Update(ctx context.Context, obj api.Object) (api.Object, error)
}

// Recorder writes events for one component.
type Recorder struct {
	w      Writer
	source api.EventSource
	log    *slog.Logger
	queue  chan *api.Event
}

// New returns a recorder; Run must be running for events to be written.
func New(w Writer, component, host string, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.Default()
	}
	return &Recorder{w: w, source: api.EventSource{Component: component, Host: host}, log: log, queue: make(chan *api.Event, 1024)}
}

// Eventf records an event about obj. It never blocks.
func (r *Recorder) Eventf(obj api.Object, typ, reason, format string, args ...any) {
	if r == nil || obj == nil {
		return
	}
	m := obj.GetMeta()
	kind := obj.GetType().Kind
	if kind == "" {
		if ki, err := api.KindOf(obj); err == nil {
			kind = ki.Kind
		}
	}
	ns := m.Namespace
	if ns == "" {
		ns = api.DefaultNamespace
	}
	msg := fmt.Sprintf(format, args...)
	ev := &api.Event{
		ObjectMeta:     api.ObjectMeta{Name: Name(m.Name, kind, m.UID, reason, msg, r.source.Component), Namespace: ns},
		InvolvedObject: api.ObjectReference{Kind: kind, Namespace: m.Namespace, Name: m.Name, UID: m.UID},
		Reason:         reason,
		Message:        msg,
		Source:         r.source,
		Type:           typ,
		Count:          1,
	}
	select {
	case r.queue <- ev:
	default:
		r.log.Debug("event dropped: queue full", "reason", reason, "object", m.Name)
	}
}

// Name is an event's deterministic name, so repeats land on one object.
func Name(object, kind, uid, reason, message, component string) string {
	h := fnv.New64a()
	for _, s := range []string{kind, uid, reason, message, component} {
		_, _ = h.Write([]byte(s))
		_, _ = h.Write([]byte{0})
	}
	base := object
	if len(base) > 200 {
		base = base[:200]
	}
	return strings.TrimSuffix(base, ".") + fmt.Sprintf(".%016x", h.Sum64())
}

// Run writes queued events until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.queue:
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := r.write(wctx, ev); err != nil && ctx.Err() == nil {
				r.log.Debug("write event", "reason", ev.Reason, "object", ev.InvolvedObject.Name, "err", err)
			}
			cancel()
		}
	}
}

func (r *Recorder) write(ctx context.Context, ev *api.Event) error {
	now := api.Now()
	for attempt := 0; attempt < 5; attempt++ {
		cur, err := r.w.Get(ctx, "Event", ev.Namespace, ev.Name)
		if errors.Is(err, api.ErrNotFound) {
			e := *ev
			e.FirstTimestamp, e.LastTimestamp = now, now
			_, err = r.w.Create(ctx, &e)
			if errors.Is(err, api.ErrAlreadyExists) {
				continue
			}
			return err
		}
		if err != nil {
			return err
		}
		e := cur.(*api.Event)
		e.Count++
		e.LastTimestamp = now
		_, err = r.w.Update(ctx, e)
		if errors.Is(err, api.ErrConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("event %s: %w", ev.Name, api.ErrConflict)
}
