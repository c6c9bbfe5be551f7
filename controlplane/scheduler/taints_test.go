package scheduler

import (
	"errors"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
)

func taint(key, value, effect string) func(*api.Node) {
	return func(n *api.Node) {
		n.Spec.Taints = append(n.Spec.Taints, api.Taint{Key: key, Value: value, Effect: effect})
	}
}

func toleration(key, op, value, effect string) func(*api.Pod) {
	return func(p *api.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, api.Toleration{Key: key, Operator: op, Value: value, Effect: effect})
	}
}

func claimVolume(claim string) func(*api.Pod) {
	return func(p *api.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, api.Volume{Name: "data", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: claim}})
	}
}

func TestTaintAndVolumeFilters(t *testing.T) {
	claims := VolumeNode{ClaimNode: func(ns, claim string) string {
		return map[string]string{"default/data-db-0": "pi-1"}[ns+"/"+claim]
	}}
	tests := []struct {
		name       string
		filter     Filter
		pod        *api.Pod
		node       *api.Node
		wantOK     bool
		wantReason string
	}{
		{"untainted node passes", TaintToleration{}, pod("p"), node("n"), true, ""},
		{"NoSchedule taint rejects", TaintToleration{}, pod("p"), node("n", taint("dedicated", "edge", api.TaintNoSchedule)), false, ReasonUntoleratedTaint},
		{"NoExecute taint rejects", TaintToleration{}, pod("p"), node("n", taint("dedicated", "edge", api.TaintNoExecute)), false, ReasonUntoleratedTaint},
		{"PreferNoSchedule taint does not reject", TaintToleration{}, pod("p"), node("n", taint("busy", "", api.TaintPreferNoSchedule)), true, ""},
		{"Equal toleration tolerates", TaintToleration{}, pod("p", toleration("dedicated", "Equal", "edge", api.TaintNoSchedule)), node("n", taint("dedicated", "edge", api.TaintNoSchedule)), true, ""},
		{"empty operator means Equal", TaintToleration{}, pod("p", toleration("dedicated", "", "edge", "")), node("n", taint("dedicated", "edge", api.TaintNoExecute)), true, ""},
		{"Equal with another value does not tolerate", TaintToleration{}, pod("p", toleration("dedicated", "Equal", "core", "")), node("n", taint("dedicated", "edge", api.TaintNoSchedule)), false, ReasonUntoleratedTaint},
		{"Exists tolerates any value", TaintToleration{}, pod("p", toleration("dedicated", "Exists", "", "")), node("n", taint("dedicated", "edge", api.TaintNoSchedule)), true, ""},
		{"Exists without key tolerates everything", TaintToleration{}, pod("p", toleration("", "Exists", "", "")), node("n", taint("a", "1", api.TaintNoSchedule), taint("b", "2", api.TaintNoExecute)), true, ""},
		{"toleration for another effect does not tolerate", TaintToleration{}, pod("p", toleration("dedicated", "Exists", "", api.TaintNoSchedule)), node("n", taint("dedicated", "edge", api.TaintNoExecute)), false, ReasonUntoleratedTaint},
		{"every taint must be tolerated", TaintToleration{}, pod("p", toleration("a", "Exists", "", "")), node("n", taint("a", "1", api.TaintNoSchedule), taint("b", "2", api.TaintNoSchedule)), false, ReasonUntoleratedTaint},

		{"pod without claims fits anywhere", claims, pod("p"), node("pi-2"), true, ""},
		{"claim bound here fits", claims, pod("p", claimVolume("data-db-0")), node("pi-1"), true, ""},
		{"claim bound elsewhere conflicts", claims, pod("p", claimVolume("data-db-0")), node("pi-2"), false, ReasonVolumeNode},
		{"unbound claim fits anywhere", claims, pod("p", claimVolume("data-db-1")), node("pi-2"), true, ""},
		{"no claim lookup passes", VolumeNode{}, pod("p", claimVolume("data-db-0")), node("pi-2"), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := tt.filter.Filter(tt.pod, NewNodeInfo(tt.node))
			if ok != tt.wantOK || reason != tt.wantReason {
				t.Errorf("%s.Filter = (%v, %q), want (%v, %q)", tt.filter.Name(), ok, reason, tt.wantOK, tt.wantReason)
			}
		})
	}
}

func TestFitErrorNamesTheTaint(t *testing.T) {
	s := New()
	_, err := s.Schedule(pod("p"), infos(
		node("a", taint("dedicated", "edge", api.TaintNoSchedule)),
		node("b", taint("dedicated", "edge", api.TaintNoExecute)),
	))
	var fit *FitError
	if !errors.As(err, &fit) {
		t.Fatalf("want a FitError, got %v", err)
	}
	if want := "0/2 nodes are available: 2 node(s) had untolerated taint {dedicated: edge}."; fit.Error() != want {
		t.Fatalf("got %q, want %q", fit.Error(), want)
	}
}

func TestTaintPreference(t *testing.T) {
	tests := []struct {
		name string
		pod  *api.Pod
		best string
	}{
		{"untolerated PreferNoSchedule node is a last resort", pod("p"), "clean"},
		{"tolerated PreferNoSchedule taint costs nothing", pod("p", toleration("busy", "Exists", "", "")), "busy"}, // name tie-break picks "busy"
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Schedule(tt.pod, infos(node("busy", taint("busy", "", api.TaintPreferNoSchedule)), node("clean")))
			if err != nil {
				t.Fatal(err)
			}
			if got.Node.Name != tt.best {
				t.Fatalf("scheduled on %s, want %s", got.Node.Name, tt.best)
			}
		})
	}
	// The preference never overrides feasibility.
	got, err := New().Schedule(pod("p", nodeSelector("zone", "a")), infos(node("busy", labels("zone", "a"), taint("busy", "", api.TaintPreferNoSchedule)), node("clean")))
	if err != nil || got.Node.Name != "busy" {
		t.Fatalf("want the only feasible node busy, got %v, %v", got, err)
	}
	if s := (TaintPreference{}).Score(pod("p"), NewNodeInfo(node("n", taint("x", "", api.TaintPreferNoSchedule), taint("y", "", api.TaintPreferNoSchedule)))); !(s > 0 && s < 0.5) {
		t.Fatalf("two untolerated taints scored %v, want in (0, 0.5)", s)
	}
}
