package scheduler

import "github.com/flotilla-edge/flotilla/api"

// Tolerated reports whether one of tols tolerates taint.
func Tolerated(tols []api.Toleration, taint api.Taint) bool {
	for _, t := range tols {
		if t.Tolerates(taint) {
			return true
		}
	}
	return false
}

// FirstUntolerated returns the first taint among taints with one of the
// given effects that tols do not tolerate, or nil. Controllers share it
// with the filter so a DaemonSet places pods exactly where the scheduler
// would.
func FirstUntolerated(tols []api.Toleration, taints []api.Taint, effects ...string) *api.Taint {
	for i := range taints {
		t := &taints[i]
		if !hasEffect(effects, t.Effect) {
			continue
		}
		if !Tolerated(tols, *t) {
			return t
		}
	}
	return nil
}

func hasEffect(effects []string, e string) bool {
	for _, x := range effects {
		if x == e {
			return true
		}
	}
	return false
}
