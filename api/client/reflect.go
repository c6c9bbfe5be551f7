package client

import (
	"context"
	"log/slog"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// Mirror receives one kind's objects from Reflect.
type Mirror interface {
	// Replace hands over every object after each complete replay of a
	// (re)started watch; the mirror drops what it held before. It is
	// never called with a partial list, so a server restart never empties
	// the mirror in between.
	Replace(objs []api.Object)
	// Apply is one change after the replay; a deleted object comes with
	// its last state.
	Apply(obj api.Object, deleted bool)
}

// ReflectResync restarts a Reflect watch this often: a watch whose server
// went away goes silent rather than failing, and a fresh replay repairs
// whatever was missed.
var ReflectResync = 2 * time.Minute

// Reflect keeps m in step with every object of kind in all namespaces
// until ctx ends, re-watching with backoff when a watch fails or ends. It
// blocks; run it in a goroutine.
func (c *Client) Reflect(ctx context.Context, kind string, m Mirror, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, ReflectResync)
		events, err := c.Watch(wctx, kind, "", "")
		replaying := true
		if err != nil {
			log.Warn("watch failed", "kind", kind, "err", err, "retry_in", backoff)
		} else {
			var listing []api.Object
			for ev := range events {
				backoff = 200 * time.Millisecond
				switch {
				case ev.Type == "SYNCED":
					m.Replace(listing)
					listing, replaying = nil, false
				case ev.Object == nil:
				case replaying:
					listing = append(listing, ev.Object)
				default:
					m.Apply(ev.Object, ev.Type == "DELETED")
				}
			}
		}
		timedOut := wctx.Err() != nil
		cancel()
		if ctx.Err() != nil || (timedOut && !replaying) {
			continue // a resync re-watches at once
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
