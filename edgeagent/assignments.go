package edgeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/wire"
)

// assignmentsFile is the local copy of the assignments, so a restarted agent
// runs its pods even when NATS is unreachable.
func (a *Agent) assignmentsFile() string {
	return filepath.Join(a.cfg.DataDir, "assignments.json")
}

// loadLocalAssignments seeds the desired set from the local copy.
func (a *Agent) loadLocalAssignments() error {
	pods := map[string]*api.Pod{}
	if err := loadJSON(a.assignmentsFile(), &pods); err != nil {
		return err
	}
	a.setDesired(pods, false)
	return nil
}

// watchAssignments keeps the desired set equal to the node's keys in the
// assignments bucket, re-establishing the watch whenever it breaks.
func (a *Agent) watchAssignments(ctx context.Context) {
	bo := newBackoff(500*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		err := a.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("assignments watch ended; retrying", "err", err, "in", bo.peek())
		if !sleepCtx(ctx, bo.next()) {
			return
		}
	}
}

func (a *Agent) watchOnce(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	kv, err := a.js.CreateOrUpdateKeyValue(octx, jetstream.KeyValueConfig{
		Bucket:  wire.AssignmentsBucket,
		History: 1,
		Storage: jetstream.FileStorage,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("open bucket %s: %w", wire.AssignmentsBucket, err)
	}
	w, err := kv.WatchFiltered(ctx, []string{a.cfg.Name + ".>"})
	if err != nil {
		return fmt.Errorf("watch %s.>: %w", a.cfg.Name, err)
	}
	defer w.Stop()
	pods := map[string]*api.Pod{}
	synced := false
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok = <-w.Updates():
		}
		if !ok {
			return fmt.Errorf("watch %s.>: updates closed", a.cfg.Name)
		}
		if e == nil {
			synced = true // initial values replayed: the watch is now the truth
			a.setDesired(pods, true)
			a.gcPodDirs()
			a.gcContainers(ctx)
			continue
		}
		if e.Operation() == jetstream.KeyValuePut {
			p := &api.Pod{}
			if err := json.Unmarshal(e.Value(), p); err != nil {
				a.log.Error("undecodable assignment", "key", e.Key(), "err", err)
				delete(pods, e.Key())
			} else {
				api.Defaults(p)
				pods[e.Key()] = p
			}
		} else {
			delete(pods, e.Key())
		}
		if synced {
			a.setDesired(pods, true)
		}
	}
}

// setDesired replaces the desired set (a copy of pods), optionally saves it
// locally, and wakes the reconcile loop.
func (a *Agent) setDesired(pods map[string]*api.Pod, persist bool) {
	cp := make(map[string]*api.Pod, len(pods))
	for k, p := range pods {
		cp[k] = p
	}
	a.mu.Lock()
	a.desired = cp
	a.mu.Unlock()
	if persist {
		if err := saveJSON(a.assignmentsFile(), cp); err != nil {
			a.log.Error("save local assignments", "err", err)
		}
	}
	a.kick()
}
