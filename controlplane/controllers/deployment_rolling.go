package controllers

// The rolling-update arithmetic, kept free of I/O so it can be tested as a
// table. It follows Kubernetes' deployment controller (rolling.go) with one
// change: every count uses max(spec.replicas, pods that still exist) and
// min(available, spec.replicas), so a scale-down the ReplicaSet controller
// has not carried out yet is never counted twice. Kubernetes tolerates that
// lag because terminating pods linger; here a deleted pod vanishes at once,
// and counting the lag keeps the bounds true at every instant.

// rsCount is what the rolling math needs to know about one ReplicaSet.
type rsCount struct {
	spec      int // spec.replicas
	pods      int // non-terminal pods that exist now
	ready     int // of those, Ready
	available int // of those, available (ready for minReadySeconds)
}

// size is how many pods the ReplicaSet may have at once: the pods it still
// has, or the ones it is about to create.
func (r rsCount) size() int { return max(r.spec, r.pods) }

// effectiveAvailable is how many available pods survive its scale-down: the
// ReplicaSet controller deletes unavailable pods first.
func (r rsCount) effectiveAvailable() int { return min(r.available, r.spec) }

func total(rss []rsCount, f func(rsCount) int) int {
	n := 0
	for _, r := range rss {
		n += f(r)
	}
	return n
}

// newReplicaSetTarget is the replica count the new ReplicaSet may grow to:
// up to desired, while all pods stay within desired+maxSurge.
func newReplicaSetTarget(desired, maxSurge int, cur rsCount, all []rsCount) int {
	if cur.spec >= desired {
		return desired
	}
	room := desired + maxSurge - total(all, rsCount.size)
	if room <= 0 {
		return cur.spec
	}
	return cur.spec + min(room, desired-cur.spec)
}

// oldReplicaSetTargets returns new spec.replicas for the old ReplicaSets
// (ordered oldest first): unavailable old pods go first, as far as the pod
// budget allows, then available ones while availability stays at or above
// desired-maxUnavailable.
func oldReplicaSetTargets(desired, maxUnavailable int, cur rsCount, old []rsCount) []int {
	out := make([]int, len(old))
	for i, r := range old {
		out[i] = r.spec
	}
	if total(old, rsCount.size) == 0 {
		return out
	}
	all := append([]rsCount{cur}, old...)
	minAvailable := desired - maxUnavailable
	newUnavailable := cur.spec - cur.effectiveAvailable()
	// Pods that may go without dropping below minAvailable, even if every
	// unavailable new pod stays unavailable.
	budget := total(all, rsCount.size) - minAvailable - newUnavailable
	if budget <= 0 {
		return out
	}
	for i, r := range old {
		if budget <= 0 {
			break
		}
		unhealthy := r.spec - r.effectiveAvailable()
		if unhealthy <= 0 {
			continue
		}
		n := min(budget, unhealthy)
		out[i] -= n
		budget -= n
	}
	// Removing unavailable pods did not change availability.
	spare := total(all, rsCount.effectiveAvailable) - minAvailable
	for i := range old {
		if spare <= 0 {
			break
		}
		n := min(out[i], spare)
		out[i] -= n
		spare -= n
	}
	return out
}
