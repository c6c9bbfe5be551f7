package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RecreateStrategy stops every old pod of a deployment before starting new
// ones; RollingUpdateStrategy (shared with DaemonSet and StatefulSet)
// replaces pods a few at a time, bounded by maxSurge and maxUnavailable.
const RecreateStrategy = "Recreate"

// Annotations the rollout machinery reads and writes.
const (
	// ChangeCauseAnnotation records why a revision exists; the deployment
	// controller copies it from the deployment to the new ReplicaSet, and
	// `rollout history` prints it.
	ChangeCauseAnnotation = "kubernetes.io/change-cause"
	// RestartedAtAnnotation on the pod template makes `rollout restart`
	// a template change, hence a rollout.
	RestartedAtAnnotation = "flotilla.dev/restartedAt"
)

// DefaultProgressDeadlineSeconds is Kubernetes' default.
const DefaultProgressDeadlineSeconds = 600

// DeploymentStrategy says how a deployment replaces old pods with new ones.
type DeploymentStrategy struct {
	Type          string                   `json:"type,omitempty"`
	RollingUpdate *RollingUpdateDeployment `json:"rollingUpdate,omitempty"`
}

// RollingUpdateDeployment bounds a rolling update: how many pods above the
// desired count may exist, and how many below it may be unavailable.
type RollingUpdateDeployment struct {
	MaxSurge       *IntOrString `json:"maxSurge,omitempty"`
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
}

// defaultRollout fills the strategy (RollingUpdate, 25%/25%) and the
// progress deadline the way Kubernetes does.
func defaultRollout(s *DeploymentSpec) {
	if s.Strategy.Type == "" {
		s.Strategy.Type = RollingUpdateStrategy
	}
	if s.Strategy.Type == RollingUpdateStrategy {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &RollingUpdateDeployment{}
		}
		ru := s.Strategy.RollingUpdate
		if ru.MaxSurge == nil {
			v := FromString("25%")
			ru.MaxSurge = &v
		}
		if ru.MaxUnavailable == nil {
			v := FromString("25%")
			ru.MaxUnavailable = &v
		}
	}
	if s.ProgressDeadlineSeconds == nil {
		s.ProgressDeadlineSeconds = Int32(DefaultProgressDeadlineSeconds)
	}
}

// validateRollout checks the strategy, minReadySeconds and the progress
// deadline of a deployment.
func validateRollout(fe *FieldErrors, s *DeploymentSpec) {
	const ru = "spec.strategy.rollingUpdate"
	switch s.Strategy.Type {
	case "", RollingUpdateStrategy:
		if r := s.Strategy.RollingUpdate; r != nil {
			surge, okS := validateFencepost(fe, ru+".maxSurge", r.MaxSurge)
			unavail, okU := validateFencepost(fe, ru+".maxUnavailable", r.MaxUnavailable)
			if okU && r.MaxUnavailable != nil && r.MaxUnavailable.IsString && unavail > 100 {
				fe.add(ru+".maxUnavailable", "%q must not be more than 100%%", r.MaxUnavailable.StrVal)
			}
			// Both zero would make a rollout that can neither add nor remove
			// a pod.
			if okS && okU && r.MaxSurge != nil && r.MaxUnavailable != nil && surge == 0 && unavail == 0 {
				fe.add(ru+".maxUnavailable", "may not be 0 when maxSurge is 0")
			}
		}
	case RecreateStrategy:
		if s.Strategy.RollingUpdate != nil {
			fe.add(ru, "may not be specified when strategy type is Recreate")
		}
	default:
		fe.add("spec.strategy.type", "%q is not RollingUpdate or Recreate", s.Strategy.Type)
	}
	if s.MinReadySeconds < 0 {
		fe.add("spec.minReadySeconds", "must be >= 0, got %d", s.MinReadySeconds)
	}
	if p := s.ProgressDeadlineSeconds; p != nil {
		if *p <= 0 {
			fe.add("spec.progressDeadlineSeconds", "must be > 0, got %d", *p)
		} else if *p <= s.MinReadySeconds {
			fe.add("spec.progressDeadlineSeconds", "must be greater than minReadySeconds (%d), got %d", s.MinReadySeconds, *p)
		}
	}
}

// validateFencepost checks one of maxSurge/maxUnavailable and returns its
// number (the percentage for a string) when it is well formed.
func validateFencepost(fe *FieldErrors, field string, v *IntOrString) (int, bool) {
	if v == nil {
		return 0, true
	}
	if !v.IsString {
		if v.IntVal < 0 {
			fe.add(field, "must be >= 0, got %d", v.IntVal)
			return 0, false
		}
		return int(v.IntVal), true
	}
	s, ok := strings.CutSuffix(v.StrVal, "%")
	p, err := strconv.Atoi(s)
	if !ok || err != nil || p < 0 {
		fe.add(field, "%q is not an integer or a percentage", v.StrVal)
		return 0, false
	}
	return p, true
}

// Fenceposts resolves a rolling update's maxSurge (rounded up) and
// maxUnavailable (rounded down) against the desired replica count. When
// both come out 0 (a small deployment with small percentages), one pod may
// be unavailable, as in Kubernetes, so the rollout can move at all.
func (s *DeploymentSpec) Fenceposts() (surge, unavailable int, err error) {
	desired := 1
	if s.Replicas != nil {
		desired = int(*s.Replicas)
	}
	if s.Strategy.Type == RecreateStrategy {
		return 0, desired, nil
	}
	ru := s.Strategy.RollingUpdate
	if ru == nil {
		ru = &RollingUpdateDeployment{}
	}
	quarter := FromString("25%")
	ms, mu := ru.MaxSurge, ru.MaxUnavailable
	if ms == nil {
		ms = &quarter
	}
	if mu == nil {
		mu = &quarter
	}
	if surge, err = ms.ScaledValue(desired, true); err != nil {
		return 0, 0, fmt.Errorf("maxSurge: %w", err)
	}
	if unavailable, err = mu.ScaledValue(desired, false); err != nil {
		return 0, 0, fmt.Errorf("maxUnavailable: %w", err)
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, min(unavailable, desired), nil
}

// ProgressDeadline is the deployment's progress deadline.
func (s *DeploymentSpec) ProgressDeadline() time.Duration {
	n := int32(DefaultProgressDeadlineSeconds)
	if s.ProgressDeadlineSeconds != nil {
		n = *s.ProgressDeadlineSeconds
	}
	return time.Duration(n) * time.Second
}

// AvailableAt reports whether the pod is available at now: Ready for at
// least minReadySeconds, counted from the Ready condition's transition. When
// it is ready but not yet available, wait says how long until it is.
func (p *Pod) AvailableAt(minReadySeconds int32, now time.Time) (available bool, wait time.Duration) {
	if !p.IsReady() {
		return false, 0
	}
	if minReadySeconds <= 0 {
		return true, 0
	}
	c := FindCondition(p.Status.Conditions, PodReady)
	at := c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second)
	if c.LastTransitionTime.IsZero() || !now.Before(at) {
		return true, 0
	}
	return false, at.Sub(now)
}
