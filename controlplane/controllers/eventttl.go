package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// eventTTLController deletes events that have not recurred for EventTTL,
// so the event history stays bounded in time.
type eventTTLController struct {
	m     *Manager
	queue *Queue
}

func newEventTTLController(m *Manager) *controller {
	c := &eventTTLController{m: m, queue: newQueue()}
	return &controller{name: "eventttl", workers: 1, queue: c.queue, reconcile: c.reconcile, all: m.keysOf("Event"), resync: max(time.Second, m.opts.EventTTL/10)}
}

func (c *eventTTLController) reconcile(ctx context.Context, key string) error {
	o := c.m.cache("Event").Get(key)
	if o == nil {
		return nil
	}
	ev := o.(*api.Event)
	last := ev.LastTimestamp.Time
	if last.IsZero() {
		last = ev.CreationTimestamp.Time
	}
	if time.Since(last) < c.m.opts.EventTTL {
		return nil
	}
	err := c.m.st.Delete(ctx, "Event", ev.Namespace, ev.Name, ev.ResourceVersion)
	if err != nil && !errors.Is(err, api.ErrNotFound) && !errors.Is(err, api.ErrConflict) {
		return fmt.Errorf("expire event %s: %w", key, err)
	}
	return nil
}
