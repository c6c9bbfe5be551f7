package api

import (
	"strings"
	"testing"
)

func TestValidateStatefulSetAndDaemonSet(t *testing.T) {
	tpl := func() PodTemplateSpec {
		return PodTemplateSpec{ObjectMeta: ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: PodSpec{Containers: []Container{{Name: "web", Image: "hello:v1"}}}}
	}
	sts := func(mod func(*StatefulSet)) Object {
		s := &StatefulSet{ObjectMeta: ObjectMeta{Name: "web"}, Spec: StatefulSetSpec{Replicas: Int32(3), Template: tpl()}}
		mod(s)
		return s
	}
	ds := func(mod func(*DaemonSet)) Object {
		d := &DaemonSet{ObjectMeta: ObjectMeta{Name: "logship"}, Spec: DaemonSetSpec{Template: tpl()}}
		mod(d)
		return d
	}
	str := func(s string) *IntOrString { v := FromString(s); return &v }
	num := func(n int32) *IntOrString { v := FromInt(n); return &v }
	tests := []struct {
		name string
		obj  Object
		want string // "" means valid
	}{
		{"valid statefulset", sts(func(*StatefulSet) {}), ""},
		{"negative replicas", sts(func(s *StatefulSet) { s.Spec.Replicas = Int32(-1) }), "spec.replicas: must be >= 0, got -1"},
		{"partition above replicas", sts(func(s *StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &RollingUpdateStatefulSetStrategy{Partition: Int32(5)}
		}), "spec.updateStrategy.rollingUpdate.partition: 5 is above replicas 3"},
		{"selector not matching template", sts(func(s *StatefulSet) {
			s.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{"app": "db"}}
		}), "spec.selector: selector"},
		{"bad pod management policy", sts(func(s *StatefulSet) { s.Spec.PodManagementPolicy = "Random" }), `spec.podManagementPolicy: "Random" is not OrderedReady or Parallel`},
		{"bad statefulset strategy", sts(func(s *StatefulSet) { s.Spec.UpdateStrategy.Type = "Recreate" }), `spec.updateStrategy.type: "Recreate" is not RollingUpdate or OnDelete`},
		{"claim template without storage", sts(func(s *StatefulSet) {
			s.Spec.VolumeClaimTemplates = []PersistentVolumeClaim{{ObjectMeta: ObjectMeta{Name: "data"}}}
		}), "spec.volumeClaimTemplates[0].spec.resources.requests.storage: is required"},
		{"valid daemonset", ds(func(*DaemonSet) {}), ""},
		{"percentage maxUnavailable", ds(func(d *DaemonSet) {
			d.Spec.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxUnavailable: str("25%")}
		}), ""},
		{"zero maxUnavailable", ds(func(d *DaemonSet) {
			d.Spec.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxUnavailable: num(0)}
		}), "spec.updateStrategy.rollingUpdate.maxUnavailable: must be at least 1, got 0"},
		{"word maxUnavailable", ds(func(d *DaemonSet) {
			d.Spec.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{MaxUnavailable: str("many")}
		}), "spec.updateStrategy.rollingUpdate.maxUnavailable:"},
		{"bad daemonset strategy", ds(func(d *DaemonSet) { d.Spec.UpdateStrategy.Type = "Surge" }), `spec.updateStrategy.type: "Surge" is not RollingUpdate or OnDelete`},
		{"daemonset selector not matching", ds(func(d *DaemonSet) {
			d.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{"app": "other"}}
		}), "spec.selector: selector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Defaults(tt.obj)
			err := Validate(tt.obj)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestStatefulSetDefaults(t *testing.T) {
	s := &StatefulSet{ObjectMeta: ObjectMeta{Name: "web"}, Spec: StatefulSetSpec{Template: PodTemplateSpec{ObjectMeta: ObjectMeta{Labels: map[string]string{"app": "web"}}}}}
	Defaults(s)
	if *s.Spec.Replicas != 1 || s.Spec.PodManagementPolicy != OrderedReadyPodManagement || s.Spec.UpdateStrategy.Type != RollingUpdateStrategy ||
		*s.Spec.UpdateStrategy.RollingUpdate.Partition != 0 || s.Spec.Selector.MatchLabels["app"] != "web" {
		t.Fatalf("defaults: %+v", s.Spec)
	}
	d := &DaemonSet{ObjectMeta: ObjectMeta{Name: "ds"}}
	Defaults(d)
	if d.Spec.UpdateStrategy.Type != RollingUpdateStrategy || d.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.String() != "1" {
		t.Fatalf("daemonset defaults: %+v", d.Spec.UpdateStrategy)
	}
}
