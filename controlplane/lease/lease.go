// Package lease elects one leader among control-plane processes sharing a
// NATS: the holder of a key in a KV bucket whose entries expire. Only the
// leader runs controllers and the scheduler; every process serves the API.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket holds leases; its entries expire after TTL unless renewed.
const Bucket = "flotilla-leases"

// Config tunes an election.
type Config struct {
	Name     string        // lease key, e.g. "controllers"
	Identity string        // this process, unique per server
	TTL      time.Duration // default 10s; a dead leader is replaced after at most TTL
	Log      *slog.Logger
}

// Elector campaigns for a lease and runs work while it holds it.
type Elector struct {
	cfg Config
	kv  jetstream.KeyValue

	mu     sync.Mutex
	holder string
}

// New opens the lease bucket.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Elector, error) {
	if cfg.TTL == 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:  Bucket,
		History: 1,
		TTL:     cfg.TTL,
		Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("open lease bucket: %w", err)
	}
	return &Elector{cfg: cfg, kv: kv}, nil
}

// Identity is this process's name in the election.
func (e *Elector) Identity() string { return e.cfg.Identity }

// Holder is the identity of the current leader as last seen, or "".
func (e *Elector) Holder() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holder
}

func (e *Elector) setHolder(h string) {
	e.mu.Lock()
	e.holder = h
	e.mu.Unlock()
}

// Run campaigns until ctx ends. Each time it wins, it calls lead with a
// context that is cancelled as soon as the lease cannot be renewed; lead
// must return promptly then.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) {
	retry := e.cfg.TTL / 5
	for ctx.Err() == nil {
		rev, err := e.kv.Create(ctx, e.cfg.Name, []byte(e.cfg.Identity))
		if err != nil {
			if cur, gerr := e.kv.Get(ctx, e.cfg.Name); gerr == nil {
				e.setHolder(string(cur.Value()))
			}
			sleep(ctx, retry)
			continue
		}
		e.setHolder(e.cfg.Identity)
		e.cfg.Log.Info("became leader", "lease", e.cfg.Name, "identity", e.cfg.Identity)
		e.hold(ctx, rev, lead)
		e.cfg.Log.Info("lost leadership", "lease", e.cfg.Name, "identity", e.cfg.Identity)
	}
}

// hold renews the lease every TTL/3 while lead runs.
func (e *Elector) hold(ctx context.Context, rev uint64, lead func(context.Context)) {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(lctx)
	}()
	t := time.NewTicker(e.cfg.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			cancel()
			<-done
			// Hand over at once rather than making the next leader wait TTL.
			dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
			_ = e.kv.Delete(dctx, e.cfg.Name, jetstream.LastRevision(rev))
			dcancel()
			return
		case <-done:
			cancel()
			return
		case <-t.C:
			nrev, err := e.kv.Update(ctx, e.cfg.Name, []byte(e.cfg.Identity), rev)
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					e.cfg.Log.Warn("lease renewal failed", "lease", e.cfg.Name, "err", err)
				}
				cancel()
				<-done
				e.setHolder("")
				return
			}
			rev = nrev
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
