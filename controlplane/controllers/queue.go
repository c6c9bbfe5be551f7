package controllers

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Queue de-duplicates keys waiting for a reconcile and retries failed ones
// with exponential backoff. A key is never reconciled by two workers at
// once.
type Queue struct {
	mu       sync.Mutex
	pending  map[string]bool
	active   map[string]bool
	dirty    map[string]bool // re-added while active
	order    []string
	failures map[string]int
	wake     chan struct{}
}

func newQueue() *Queue {
	return &Queue{pending: map[string]bool{}, active: map[string]bool{}, dirty: map[string]bool{}, failures: map[string]int{}, wake: make(chan struct{}, 64)}
}

// Add asks for key to be reconciled.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.active[key] {
		q.dirty[key] = true
		return
	}
	if !q.pending[key] {
		q.pending[key] = true
		q.order = append(q.order, key)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// AddAfter adds key after d.
func (q *Queue) AddAfter(key string, d time.Duration) {
	time.AfterFunc(d, func() { q.Add(key) })
}

func (q *Queue) next() (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return "", false
	}
	k := q.order[0]
	q.order = q.order[1:]
	delete(q.pending, k)
	q.active[k] = true
	return k, true
}

func (q *Queue) done(key string) {
	q.mu.Lock()
	delete(q.active, key)
	again := q.dirty[key]
	delete(q.dirty, key)
	q.mu.Unlock()
	if again {
		q.Add(key)
	}
}

// Run calls reconcile for each key with `workers` goroutines until ctx ends.
func (q *Queue) Run(ctx context.Context, name string, workers int, log *slog.Logger, reconcile func(context.Context, string) error) {
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k, ok := q.next()
				if !ok {
					select {
					case <-ctx.Done():
						return
					case <-q.wake:
						continue
					case <-time.After(time.Second):
						continue
					}
				}
				err := reconcile(ctx, k)
				q.done(k)
				q.mu.Lock()
				if err != nil {
					q.failures[k]++
					n := q.failures[k]
					q.mu.Unlock()
					if ctx.Err() != nil {
						return
					}
					d := time.Duration(1<<min(n, 8)) * 10 * time.Millisecond
					log.Debug("reconcile failed", "controller", name, "key", k, "err", err, "retry", d)
					q.AddAfter(k, d)
				} else {
					delete(q.failures, k)
					q.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}
