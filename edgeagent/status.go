package edgeagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// statusResync is how often a pod's stored status is checked even when
// nothing changed locally.
var statusResync = 30 * time.Second

var (
	// errPodGone means the pod object was deleted or replaced by one with
	// another uid: the agent must stop running it.
	errPodGone = errors.New("pod object is gone")
	// errUnchanged aborts a Modify whose write would change nothing.
	errUnchanged = errors.New("status unchanged")
)

// statusLoop writes the pod's status whenever it changes, retrying failed
// writes with backoff (NATS may be down for a while).
func (r *podRunner) statusLoop(ctx context.Context) {
	var last []byte // the observed status last written successfully
	bo := newBackoff(500*time.Millisecond, 10*time.Second)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	// Resync now and then: it notices a deleted pod object and repairs a
	// status someone else overwrote; unchanged status costs one read.
	resync := time.NewTicker(statusResync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.dirty:
		case <-retry.C:
		case <-resync.C:
			last = nil
		}
		st := r.observed()
		b, _ := json.Marshal(st)
		if bytes.Equal(b, last) {
			continue
		}
		err := r.writeStatus(ctx, st)
		switch {
		case err == nil:
			last = b
			bo.reset()
		case errors.Is(err, errPodGone):
			r.log.Info("pod object is gone; stopping the pod")
			r.a.podGone(r.pod.UID)
			return
		case ctx.Err() != nil:
			return
		default:
			d := bo.next()
			r.log.Warn("write pod status; will retry", "err", err, "in", d)
			retry.Reset(d)
		}
	}
}

// writeStatus merges st into the stored pod with a compare-and-set write.
// Conditions the agent does not own (PodScheduled) are kept.
func (r *podRunner) writeStatus(ctx context.Context, st api.PodStatus) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := r.a.client.Modify(wctx, "Pod", r.pod.Namespace, r.pod.Name, func(o api.Object) error {
		p, ok := o.(*api.Pod)
		if !ok {
			return fmt.Errorf("pod %s/%s: got a %T", r.pod.Namespace, r.pod.Name, o)
		}
		if r.pod.UID != "" && p.UID != r.pod.UID {
			return errPodGone
		}
		before, _ := json.Marshal(p.Status)
		merged := st
		merged.Conditions = append([]api.Condition(nil), p.Status.Conditions...)
		for _, c := range st.Conditions {
			api.SetCondition(&merged.Conditions, c)
		}
		merged.Reason, merged.Message = p.Status.Reason, p.Status.Message
		after, _ := json.Marshal(merged)
		if bytes.Equal(before, after) {
			return errUnchanged
		}
		p.Status = merged
		return nil
	})
	switch {
	case err == nil, errors.Is(err, errUnchanged):
		return nil
	case errors.Is(err, api.ErrNotFound), errors.Is(err, errPodGone):
		return errPodGone
	}
	return fmt.Errorf("status of pod %s/%s: %w", r.pod.Namespace, r.pod.Name, err)
}
