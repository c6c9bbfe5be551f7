package controllers

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api/wire"
)

// imageCache mirrors the flotilla-images bucket (written by `flotilla image
// import`) so the scheduler can tell which platforms an OCI image offers.
type imageCache struct {
	mu        sync.RWMutex
	platforms map[string][]string // ImageKey -> "os/arch[/variant]"
	onChange  func()
}

// lookup returns the platforms of image, nil when it was never imported.
func (c *imageCache) lookup(image string) []string {
	n, err := reference.ParseDockerRef(image)
	if err != nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.platforms[wire.ImageKey(n.String())]
}

// run watches the bucket until ctx ends, re-opening it when the watch
// breaks.
func (c *imageCache) run(ctx context.Context, js jetstream.JetStream) {
	for ctx.Err() == nil {
		c.watch(ctx, js)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (c *imageCache) watch(ctx context.Context, js jetstream.JetStream) {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	kv, err := js.CreateOrUpdateKeyValue(octx, jetstream.KeyValueConfig{Bucket: wire.ImagesBucket, History: 1, Storage: jetstream.FileStorage})
	cancel()
	if err != nil {
		return
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return
	}
	defer w.Stop()
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return
		case e, ok = <-w.Updates():
		}
		if !ok {
			return
		}
		if e == nil {
			continue
		}
		var ps []string
		if e.Operation() == jetstream.KeyValuePut {
			var rec wire.ImageRecord
			if json.Unmarshal(e.Value(), &rec) != nil {
				continue
			}
			for _, p := range rec.Platforms {
				ps = append(ps, p.String())
			}
		}
		c.mu.Lock()
		if ps == nil {
			delete(c.platforms, e.Key())
		} else {
			c.platforms[e.Key()] = ps
		}
		c.mu.Unlock()
		if c.onChange != nil {
			c.onChange() // a pending pod may fit now
		}
	}
}
