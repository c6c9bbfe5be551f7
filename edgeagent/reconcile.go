package edgeagent

import (
	"context"
	"sync"
	"time"
)

// resyncEvery makes reconciling level-triggered even if a wake-up is lost.
const resyncEvery = 5 * time.Second

// kick asks the reconcile loop to run.
func (a *Agent) kick() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// podGone records that the pod object with uid no longer exists, so the
// agent stops it even while its assignment lingers.
func (a *Agent) podGone(uid string) {
	a.mu.Lock()
	a.gone[uid] = true
	a.mu.Unlock()
	a.kick()
}

// reconcileLoop drives the running pods toward the desired set until ctx
// ends, then stops them all.
func (a *Agent) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(resyncEvery)
	defer t.Stop()
	for {
		a.reconcile()
		select {
		case <-ctx.Done():
			a.mu.Lock()
			all := a.running
			a.running = map[string]*podRunner{}
			a.mu.Unlock()
			// The agent is going away, not the pods: their OCI containers
			// stay up for the next agent to adopt (podRunner.detached).
			stopAll(all)
			return
		case <-a.wake:
		case <-t.C:
		}
	}
}

// reconcile stops pods that are no longer desired (or were replaced by a
// pod with a new uid) and starts the desired ones that do not run.
func (a *Agent) reconcile() {
	a.mu.Lock()
	stale := map[string]*podRunner{}
	for key, r := range a.running {
		p, ok := a.desired[key]
		if !ok || p.UID != r.pod.UID || a.gone[r.pod.UID] {
			stale[key] = r
			delete(a.running, key)
		}
	}
	a.mu.Unlock()
	// Stop before starting, so a restarted pod's ports and name are free.
	stopAll(stale)
	// These pods are gone for good (unlike at agent shutdown, when the
	// local copy restarts them): their emptyDir and projected files go too.
	for _, r := range stale {
		a.removePodDir(r.pod.UID)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	live := map[string]bool{}
	for key, p := range a.desired {
		live[p.UID] = true
		if _, ok := a.running[key]; ok || a.gone[p.UID] || a.ctx.Err() != nil {
			continue
		}
		a.running[key] = a.startPod(key, p)
	}
	for uid := range a.gone {
		if !live[uid] {
			delete(a.gone, uid) // the assignment is gone too
		}
	}
}

// stopAll stops pods in parallel: each may wait on module instances.
func stopAll(rs map[string]*podRunner) {
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(r.stop)
	}
	wg.Wait()
}
