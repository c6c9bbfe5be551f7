package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// Deployment condition types and reasons, as Kubernetes names them so
// tooling that knows kubectl's output reads ours.
const (
	DeploymentProgressing = "Progressing"
	DeploymentAvailable   = "Available"

	ReasonNewReplicaSetCreated     = "NewReplicaSetCreated"
	ReasonFoundNewReplicaSet       = "FoundNewReplicaSet"
	ReasonReplicaSetUpdated        = "ReplicaSetUpdated"
	ReasonNewReplicaSetAvailable   = "NewReplicaSetAvailable"
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	ReasonDeploymentPaused         = "DeploymentPaused"
	ReasonDeploymentResumed        = "DeploymentResumed"
)

// updateStatus writes the counts and conditions of s and schedules the
// reconciles no event will bring: a pod turning available after
// minReadySeconds, and the progress deadline.
func (c *deploymentController) updateStatus(ctx context.Context, key string, s *rolloutState) error {
	d := s.d
	desired := *d.Spec.Replicas
	now := c.now()
	st := d.Status
	st.ObservedGeneration = d.Generation
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas, st.UpdatedReplicas = 0, 0, 0, 0
	for _, rs := range append(append([]*api.ReplicaSet(nil), s.old...), s.new) {
		if rs == nil {
			continue
		}
		n := s.counts[rs.UID]
		st.Replicas += int32(n.pods)
		st.ReadyReplicas += int32(n.ready)
		st.AvailableReplicas += int32(n.available)
	}
	if s.new != nil {
		st.UpdatedReplicas = int32(s.counts[s.new.UID].pods)
	}
	st.UnavailableReplicas = max(0, desired-st.AvailableReplicas)
	st.Conditions = append([]api.Condition(nil), d.Status.Conditions...)

	_, maxUnavailable, _ := d.Spec.Fenceposts()
	avail := api.Condition{Type: DeploymentAvailable, Status: api.ConditionTrue, Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability."}
	if int(st.AvailableReplicas) < int(desired)-maxUnavailable {
		avail = api.Condition{Type: DeploymentAvailable, Status: api.ConditionFalse, Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability."}
	}
	api.SetCondition(&st.Conditions, avail)
	recheck := c.setProgressing(s, &st, now)
	if s.wait > 0 && (recheck == 0 || s.wait < recheck) {
		recheck = s.wait
	}
	if recheck > 0 {
		c.queue.AddAfter(key, recheck)
	}

	if statusEqual(st, d.Status) {
		return nil
	}
	cp := *d
	cp.Status = st
	updated, err := c.m.st.Update(ctx, &cp)
	if err != nil {
		return fmt.Errorf("update deployment %s/%s status: %w", d.Namespace, d.Name, err)
	}
	c.m.deploys.Assume(updated)
	return nil
}

// setProgressing sets the Progressing condition the way Kubernetes does:
// True/NewReplicaSetAvailable once the rollout is complete,
// True/ReplicaSetUpdated with a fresh lastUpdateTime whenever it moves, and
// False/ProgressDeadlineExceeded once it has not moved for
// progressDeadlineSeconds. It returns when to look again for the deadline.
func (c *deploymentController) setProgressing(s *rolloutState, st *api.DeploymentStatus, now time.Time) time.Duration {
	d := s.d
	old := api.FindCondition(d.Status.Conditions, DeploymentProgressing)
	if d.Spec.Paused {
		setProgressCondition(st, api.ConditionUnknown, ReasonDeploymentPaused, "Deployment is paused", now, false)
		return 0
	}
	if s.new == nil {
		return 0
	}
	name := s.new.Name
	desired := *d.Spec.Replicas
	if old != nil && old.Reason == ReasonDeploymentPaused {
		setProgressCondition(st, api.ConditionUnknown, ReasonDeploymentResumed, "Deployment is resumed", now, true)
		return time.Second
	}
	complete := st.UpdatedReplicas == desired && st.Replicas == desired && st.AvailableReplicas == desired
	if complete {
		setProgressCondition(st, api.ConditionTrue, ReasonNewReplicaSetAvailable, fmt.Sprintf("ReplicaSet %q has successfully progressed.", name), now, old == nil || old.Reason != ReasonNewReplicaSetAvailable || !mentions(old, name))
		return 0
	}
	switch {
	case s.created:
		setProgressCondition(st, api.ConditionTrue, ReasonNewReplicaSetCreated, fmt.Sprintf("Created new replica set %q", name), now, true)
	case old == nil || !mentions(old, name):
		// Another rollout (undo reuses an old ReplicaSet, resume picks up
		// where pause left): its deadline starts now.
		setProgressCondition(st, api.ConditionTrue, ReasonFoundNewReplicaSet, fmt.Sprintf("Found new replica set %q", name), now, true)
	case progressed(d.Status, *st):
		setProgressCondition(st, api.ConditionTrue, ReasonReplicaSetUpdated, fmt.Sprintf("ReplicaSet %q is progressing.", name), now, true)
	case old.Reason == ReasonProgressDeadlineExceeded:
		return 0
	default:
		deadline := d.Spec.ProgressDeadline()
		last := old.LastUpdateTime.Time
		if last.IsZero() {
			last = old.LastTransitionTime.Time
		}
		if left := last.Add(deadline).Sub(now); left > 0 {
			// Times are kept to the second; look again just after.
			return left + time.Second
		}
		setProgressCondition(st, api.ConditionFalse, ReasonProgressDeadlineExceeded, fmt.Sprintf("ReplicaSet %q has timed out progressing.", name), now, true)
		return 0
	}
	return d.Spec.ProgressDeadline() + time.Second
}

// mentions reports whether a Progressing condition is about ReplicaSet name.
func mentions(c *api.Condition, name string) bool {
	return strings.Contains(c.Message, `"`+name+`"`)
}

// progressed is Kubernetes' test for a rollout having moved: more updated,
// ready or available pods, or fewer old ones.
func progressed(old, cur api.DeploymentStatus) bool {
	return cur.UpdatedReplicas > old.UpdatedReplicas ||
		cur.Replicas-cur.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		cur.ReadyReplicas > old.ReadyReplicas ||
		cur.AvailableReplicas > old.AvailableReplicas
}

// setProgressCondition replaces the Progressing condition; the transition
// time moves with the status, the update time when touch is set.
func setProgressCondition(st *api.DeploymentStatus, status, reason, msg string, now time.Time, touch bool) {
	t := api.Time{Time: now.UTC().Truncate(time.Second)}
	c := api.Condition{Type: DeploymentProgressing, Status: status, Reason: reason, Message: msg, LastTransitionTime: t, LastUpdateTime: t}
	if old := api.FindCondition(st.Conditions, DeploymentProgressing); old != nil {
		if old.Status == status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		if !touch && old.Reason == reason && old.Message == msg {
			c.LastUpdateTime = old.LastUpdateTime
		}
		*old = c
		return
	}
	st.Conditions = append(st.Conditions, c)
}

func statusEqual(a, b api.DeploymentStatus) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
