package controllers

import (
	"fmt"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
)

func TestNewReplicaSetGrowsOnlyWithinMaxSurge(t *testing.T) {
	tests := []struct {
		name           string
		desired, surge int
		cur            rsCount
		old            []rsCount
		want           int
	}{
		{"a first rollout takes every replica", 3, 1, rsCount{}, nil, 3},
		{"one surge pod while the old set is full", 3, 1, rsCount{}, []rsCount{{spec: 3, pods: 3, available: 3}}, 1},
		{"no room while surge is used", 3, 1, rsCount{spec: 1, pods: 1}, []rsCount{{spec: 3, pods: 3, available: 3}}, 1},
		{"old pods not deleted yet still take room", 3, 1, rsCount{spec: 1, pods: 1}, []rsCount{{spec: 2, pods: 3, available: 3}}, 1},
		{"room freed by deleted old pods", 3, 1, rsCount{spec: 1, pods: 1}, []rsCount{{spec: 2, pods: 2, available: 2}}, 2},
		{"never beyond desired", 3, 5, rsCount{spec: 1, pods: 1}, []rsCount{{spec: 0}}, 3},
		{"shrinks to desired after a scale-down", 2, 1, rsCount{spec: 4, pods: 4}, nil, 2},
		{"zero surge waits for old pods to go", 4, 0, rsCount{}, []rsCount{{spec: 4, pods: 4, available: 4}}, 0},
		{"pods the new set still has to create count", 4, 2, rsCount{spec: 2, pods: 0}, []rsCount{{spec: 4, pods: 4, available: 4}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := append(append([]rsCount(nil), tt.old...), tt.cur)
			if got := newReplicaSetTarget(tt.desired, tt.surge, tt.cur, all); got != tt.want {
				t.Fatalf("newReplicaSetTarget = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestOldReplicaSetsShrinkOnlyWithinMaxUnavailable(t *testing.T) {
	tests := []struct {
		name                string
		desired, unavailble int
		cur                 rsCount
		old                 []rsCount
		want                []int
	}{
		{"nothing goes while the new pod is not available", 3, 0,
			rsCount{spec: 1, pods: 1}, []rsCount{{spec: 3, pods: 3, available: 3}}, []int{3}},
		{"one goes once the new pod is available", 3, 0,
			rsCount{spec: 1, pods: 1, available: 1}, []rsCount{{spec: 3, pods: 3, available: 3}}, []int{2}},
		{"maxUnavailable lets old pods go before new ones are up", 4, 1,
			rsCount{spec: 1, pods: 1}, []rsCount{{spec: 4, pods: 4, available: 4}}, []int{3}},
		{"unavailable old pods go even while availability is short, within the pod budget", 3, 0,
			rsCount{spec: 1, pods: 1, available: 1}, []rsCount{{spec: 3, pods: 3, available: 1}}, []int{2}},
		{"unavailable old pods go before available ones", 4, 1,
			rsCount{spec: 2, pods: 2, available: 2}, []rsCount{{spec: 3, pods: 3, available: 2}}, []int{1}},
		{"oldest sets shrink first", 4, 1,
			rsCount{spec: 2, pods: 2, available: 2}, []rsCount{{spec: 1, pods: 1, available: 1}, {spec: 2, pods: 2, available: 2}}, []int{0, 1}},
		{"a scale-down in flight is not repeated", 3, 0,
			rsCount{spec: 1, pods: 1, available: 1}, []rsCount{{spec: 2, pods: 3, available: 3}}, []int{2}},
		{"a stalled new set keeps every available old pod", 3, 0,
			rsCount{spec: 1, pods: 1}, []rsCount{{spec: 3, pods: 3, available: 3}}, []int{3}},
		{"everything old goes once the new set is complete", 3, 0,
			rsCount{spec: 3, pods: 3, available: 3}, []rsCount{{spec: 1, pods: 1, available: 1}, {spec: 1, pods: 1}}, []int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := oldReplicaSetTargets(tt.desired, tt.unavailble, tt.cur, tt.old)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("oldReplicaSetTargets = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFencepostsRoundSurgeUpAndUnavailableDown(t *testing.T) {
	pct := func(s string) *api.IntOrString { v := api.FromString(s); return &v }
	num := func(n int32) *api.IntOrString { v := api.FromInt(n); return &v }
	tests := []struct {
		name           string
		desired        int32
		surge, unavail *api.IntOrString
		wantS, wantU   int
	}{
		{"defaults on 3 replicas", 3, nil, nil, 1, 0},
		{"defaults on 10 replicas", 10, nil, nil, 3, 2},
		{"defaults on 1 replica", 1, nil, nil, 1, 0},
		{"30% of 10 is exact", 10, pct("30%"), pct("30%"), 3, 3},
		{"33% of 4 rounds 1.32 up and down", 4, pct("33%"), pct("33%"), 2, 1},
		{"absolute numbers are taken as they are", 5, num(2), num(1), 2, 1},
		{"both rounding to zero allow one unavailable", 3, pct("0%"), pct("10%"), 0, 1},
		{"unavailable is capped at desired", 2, num(1), num(5), 1, 2},
		{"100% surge doubles", 3, pct("100%"), num(0), 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := api.DeploymentSpec{Replicas: api.Int32(tt.desired),
				Strategy: api.DeploymentStrategy{Type: api.RollingUpdateStrategy, RollingUpdate: &api.RollingUpdateDeployment{MaxSurge: tt.surge, MaxUnavailable: tt.unavail}}}
			s, u, err := spec.Fenceposts()
			if err != nil || s != tt.wantS || u != tt.wantU {
				t.Fatalf("Fenceposts = %d, %d, %v; want %d, %d", s, u, err, tt.wantS, tt.wantU)
			}
		})
	}
}

// TestRollingMathKeepsBoundsAtEveryStep simulates a rollout: the deployment
// math, a ReplicaSet controller that deletes and creates one pod a step (new
// pods first, unavailable ones first to go) and pods turning available one a
// step, checking the bounds after every change.
func TestRollingMathKeepsBoundsAtEveryStep(t *testing.T) {
	for _, desired := range []int{1, 2, 3, 5, 10} {
		for _, fp := range [][2]string{{"25%", "25%"}, {"1", "0"}, {"0", "1"}, {"50%", "50%"}, {"100%", "0"}, {"2", "2"}, {"0%", "34%"}} {
			name := fmt.Sprintf("%d replicas, maxSurge %s, maxUnavailable %s", desired, fp[0], fp[1])
			t.Run(name, func(t *testing.T) {
				simulateRollout(t, desired, fp[0], fp[1])
			})
		}
	}
}

func parseIOS(s string) *api.IntOrString {
	var v api.IntOrString
	if err := v.UnmarshalJSON([]byte(s)); err != nil {
		v = api.FromString(s)
	}
	return &v
}

func simulateRollout(t *testing.T, desired int, surgeS, unavailS string) {
	spec := api.DeploymentSpec{Replicas: api.Int32(int32(desired)),
		Strategy: api.DeploymentStrategy{Type: api.RollingUpdateStrategy, RollingUpdate: &api.RollingUpdateDeployment{MaxSurge: parseIOS(surgeS), MaxUnavailable: parseIOS(unavailS)}}}
	surge, unavail, err := spec.Fenceposts()
	if err != nil {
		t.Fatal(err)
	}
	// Pods: available or not, per set. Index 0 is old, 1 is new.
	type set struct {
		spec       int
		avail, not int
	}
	sets := [2]set{{spec: desired, avail: desired}, {}}
	counts := func() (rsCount, []rsCount) {
		c := func(s set) rsCount { return rsCount{spec: s.spec, pods: s.avail + s.not, available: s.avail} }
		return c(sets[1]), []rsCount{c(sets[0])}
	}
	check := func(step int) {
		pods := sets[0].avail + sets[0].not + sets[1].avail + sets[1].not
		avail := sets[0].avail + sets[1].avail
		if pods > desired+surge {
			t.Fatalf("step %d: %d pods > desired %d + maxSurge %d", step, pods, desired, surge)
		}
		if avail < desired-unavail {
			t.Fatalf("step %d: %d available < desired %d - maxUnavailable %d", step, avail, desired, unavail)
		}
	}
	for step := 0; step < 200; step++ {
		cur, old := counts()
		sets[1].spec = newReplicaSetTarget(desired, surge, cur, append(old, cur))
		cur, old = counts()
		sets[0].spec = oldReplicaSetTargets(desired, unavail, cur, old)[0]
		// The ReplicaSet controllers: deletions first (that is the order the
		// real ones cannot promise, so the math must not rely on it either
		// way: here deletions happen first, creations below).
		for i := range sets {
			for sets[i].avail+sets[i].not > sets[i].spec {
				if sets[i].not > 0 {
					sets[i].not--
				} else {
					sets[i].avail--
				}
				check(step)
			}
		}
		for i := range sets {
			for sets[i].avail+sets[i].not < sets[i].spec {
				sets[i].not++
				check(step)
			}
		}
		// One new pod becomes available.
		if sets[1].not > 0 {
			sets[1].not--
			sets[1].avail++
			check(step)
		}
		if sets[1].avail == desired && sets[0].avail+sets[0].not == 0 && sets[0].spec == 0 {
			return
		}
	}
	t.Fatalf("rollout did not finish: %+v", sets)
}
