package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/nats-io/nats.go/jetstream"
)

// ServiceAllocBucket is the KV bucket recording which service holds each
// cluster IP and node port. Every claim is a KV create, which fails when
// the key exists, so two API servers can never hand out the same value.
const ServiceAllocBucket = "flotilla-service-alloc"

// allocator hands out the values of one range (IPs of a CIDR, node ports)
// as keys <prefix>.<value> in the bucket, valued with the owner
// ("namespace/name").
type allocator struct {
	kv      jetstream.KeyValue
	prefix  string
	size    int                // number of values
	value   func(i int) string // i-th value, as a key token
	exhaust func() error       // the error when nothing is free
}

var errTaken = errors.New("already allocated")

func (a *allocator) key(v string) string { return a.prefix + "." + v }

// claim takes one specific value for owner. Claiming a value the owner
// already holds succeeds, so a retried create is idempotent.
func (a *allocator) claim(ctx context.Context, v, owner string) error {
	_, err := a.kv.Create(ctx, a.key(v), []byte(owner))
	if errors.Is(err, jetstream.ErrKeyExists) {
		e, gerr := a.kv.Get(ctx, a.key(v))
		if gerr == nil && string(e.Value()) == owner {
			return nil
		}
		return errTaken
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", a.key(v), err)
	}
	return nil
}

// next claims a free value for owner. It reads the taken keys first so a
// nearly full range costs one listing, not one failed create per value,
// then starts at a random offset so concurrent servers rarely race for
// the same value (and when they do, the loser moves on).
func (a *allocator) next(ctx context.Context, owner string) (string, error) {
	taken := map[string]bool{}
	lister, err := a.kv.ListKeysFiltered(ctx, a.prefix+".>")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return "", fmt.Errorf("list %s allocations: %w", a.prefix, err)
	}
	if lister != nil {
		for k := range lister.Keys() {
			taken[k] = true
		}
		_ = lister.Stop()
	}
	start := rand.IntN(a.size)
	for i := 0; i < a.size; i++ {
		v := a.value((start + i) % a.size)
		if taken[a.key(v)] {
			continue
		}
		switch err := a.claim(ctx, v, owner); {
		case err == nil:
			return v, nil
		case errors.Is(err, errTaken):
			continue
		default:
			return "", err
		}
	}
	return "", a.exhaust()
}

// release frees v if owner still holds it; the delete is conditional on
// the revision read, so a value re-claimed meanwhile is left alone.
func (a *allocator) release(ctx context.Context, v, owner string) error {
	e, err := a.kv.Get(ctx, a.key(v))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", a.key(v), err)
	}
	if string(e.Value()) != owner {
		return nil
	}
	if err := a.kv.Delete(ctx, a.key(v), jetstream.LastRevision(e.Revision())); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("release %s: %w", a.key(v), err)
	}
	return nil
}
