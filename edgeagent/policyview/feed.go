package policyview

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/flotilla-edge/flotilla/api/client"
)

// ResyncEvery restarts the watches: a watch whose server went away goes
// silent rather than failing, and a fresh replay repairs what was missed.
var ResyncEvery = 2 * time.Minute

// Feed keeps v in step with the fleet until ctx ends. It blocks.
func Feed(ctx context.Context, c *client.Client, v *View, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "policyview")
	var wg sync.WaitGroup
	for _, kind := range Kinds {
		wg.Go(func() { feedKind(ctx, c, kind, v, log) })
	}
	wg.Wait()
}

// feedKind runs one kind's watch, restarting it when it ends. Objects not
// replayed by a fresh watch are dropped once the replay ends (SYNCED), so a
// re-list never empties the view in between.
func feedKind(ctx context.Context, c *client.Client, kind string, v *View, log *slog.Logger) {
	retry := 200 * time.Millisecond
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, ResyncEvery)
		events, err := c.Watch(wctx, kind, "", "")
		if err != nil {
			cancel()
			log.Warn("watch failed", "kind", kind, "err", err, "retry_in", retry)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			retry = min(retry*2, 5*time.Second)
			continue
		}
		retry = 200 * time.Millisecond
		seen := map[string]bool{}
		syncing := true
		for ev := range events {
			if ev.Type == "SYNCED" {
				for _, k := range v.Keys(kind) {
					if !seen[k] {
						ns, name := splitKey(k)
						v.Delete(kind, ns, name)
					}
				}
				syncing = false
				v.MarkSynced(kind)
				continue
			}
			if ev.Object == nil {
				continue
			}
			m := ev.Object.GetMeta()
			if ev.Type == "DELETED" {
				v.Delete(kind, m.Namespace, m.Name)
				continue
			}
			if syncing {
				seen[key(m)] = true
			}
			v.Set(ev.Object)
		}
		cancel()
	}
}

func splitKey(k string) (ns, name string) {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return "", k
}
