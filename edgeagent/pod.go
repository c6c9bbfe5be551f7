package edgeagent

import (
	"context"
	"log/slog"
	"sync"

	"github.com/flotilla-edge/flotilla/api"
)

// ctrState is the agent's view of one container.
type ctrState struct {
	status api.ContainerStatus
	ran    bool // started at least once
	final  bool // terminated and will not be restarted
	failed bool // final with a non-zero exit or an error
	// runtimeID is the containerd container ID of an OCI container's
	// current run (for exec).
	runtimeID string
}

// podRunner runs one assigned pod: a goroutine per container and one that
// writes the pod's status.
type podRunner struct {
	a   *Agent
	key string // assignment key
	pod *api.Pod
	log *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// volMu serialises writes to the pod's volume directories.
	volMu sync.Mutex

	mu        sync.Mutex
	ctrs      []*ctrState
	startTime api.Time
	dirty     chan struct{} // cap 1: "status changed, write it"
}

func (a *Agent) startPod(key string, pod *api.Pod) *podRunner {
	r := &podRunner{
		a:         a,
		key:       key,
		pod:       pod,
		log:       a.log.With("pod", pod.Name, "ns", pod.Namespace),
		startTime: api.Now(),
		dirty:     make(chan struct{}, 1),
	}
	for _, c := range pod.Spec.Containers {
		r.ctrs = append(r.ctrs, &ctrState{status: api.ContainerStatus{
			Name:    c.Name,
			Runtime: c.Runtime,
			Image:   c.Image,
			State:   api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: ReasonContainerCreate}},
		}})
	}
	ctx, cancel := context.WithCancel(a.ctx)
	r.cancel = cancel
	r.log.Info("starting pod", "uid", pod.UID)
	r.markDirty()
	r.wg.Go(func() { r.statusLoop(ctx) })
	r.wg.Go(func() { r.refreshLoop(ctx) })
	for i := range pod.Spec.Containers {
		r.wg.Go(func() { r.runContainer(ctx, i) })
	}
	return r
}

// stop ends every container and waits for the pod's goroutines.
// detached reports whether the runner's end is the agent's, not the
// pod's: then OCI containers are left running for the next agent to
// adopt. Agent.Stop sets stopping before it cancels the runners' parent
// context, so a runner never mistakes shutdown for deletion.
func (r *podRunner) detached() bool { return r.a.stopping.Load() }

func (r *podRunner) stop() {
	r.mu.Lock()
	var live []string
	for _, s := range r.ctrs {
		// A detached OCI container keeps running: nothing is killed.
		if s.ran && !s.final && !(r.detached() && s.status.Runtime == api.RuntimeOCI) {
			live = append(live, s.status.Name)
		}
	}
	r.mu.Unlock()
	for _, name := range live {
		r.event(api.EventNormal, EventKilling, "Stopping container %s", name)
	}
	r.cancel()
	r.wg.Wait()
	r.log.Info("stopped pod", "uid", r.pod.UID)
}

func (r *podRunner) markDirty() {
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

// update changes container i's state under the lock and schedules a status
// write.
func (r *podRunner) update(i int, fn func(s *ctrState)) {
	r.mu.Lock()
	fn(r.ctrs[i])
	r.mu.Unlock()
	r.markDirty()
}

// waiting sets container i to waiting for reason.
func (r *podRunner) waiting(i int, reason, msg string) {
	r.update(i, func(s *ctrState) {
		s.status.State = api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: reason, Message: msg}}
		s.status.Ready, s.status.Started = false, false
	})
}

// phase derives the pod phase from its containers.
func phase(ctrs []*ctrState) string {
	if len(ctrs) == 0 {
		return api.PodPending
	}
	allFinal, anyFailed, anyNotRan := true, false, false
	for _, s := range ctrs {
		allFinal = allFinal && s.final
		anyFailed = anyFailed || s.failed
		anyNotRan = anyNotRan || !s.ran
	}
	switch {
	case allFinal && anyFailed:
		return api.PodFailed
	case allFinal:
		return api.PodSucceeded
	case anyNotRan:
		return api.PodPending
	}
	return api.PodRunning
}

// observed is the status the agent owns, computed from its containers.
func (r *podRunner) observed() api.PodStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := api.PodStatus{
		Phase:     phase(r.ctrs),
		HostIP:    r.a.cfg.Address,
		PodIP:     r.a.cfg.Address,
		StartTime: r.startTime,
	}
	ready := true
	for _, s := range r.ctrs {
		cs := s.status
		cs.Ports = append([]api.PortStatus(nil), cs.Ports...)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		ready = ready && s.status.Ready
	}
	cond := api.Condition{Type: api.ContainersReady, Status: api.ConditionTrue}
	if !ready {
		cond.Status, cond.Reason = api.ConditionFalse, "ContainersNotReady"
		if st.Phase == api.PodSucceeded || st.Phase == api.PodFailed {
			cond.Reason = "PodCompleted"
		}
	}
	st.Conditions = []api.Condition{cond}
	podReady := cond
	podReady.Type = api.PodReady
	st.Conditions = append(st.Conditions, podReady)
	return st
}
