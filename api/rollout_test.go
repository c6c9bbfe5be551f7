package api

import (
	"strings"
	"testing"
)

func TestDeploymentStrategyValidationNamesTheField(t *testing.T) {
	ios := func(s string) *IntOrString { v := FromString(s); return &v }
	num := func(n int32) *IntOrString { v := FromInt(n); return &v }
	tests := []struct {
		name     string
		strategy DeploymentStrategy
		edit     func(*DeploymentSpec)
		want     string // "" means valid
	}{
		{"defaults are valid", DeploymentStrategy{}, nil, ""},
		{"a bare number string is not a percentage", DeploymentStrategy{RollingUpdate: &RollingUpdateDeployment{MaxSurge: ios("30")}},
			nil, `spec.strategy.rollingUpdate.maxSurge: "30" is not an integer or a percentage`},
		{"negative numbers are rejected", DeploymentStrategy{RollingUpdate: &RollingUpdateDeployment{MaxUnavailable: num(-1)}},
			nil, "spec.strategy.rollingUpdate.maxUnavailable: must be >= 0"},
		{"both zero cannot make progress", DeploymentStrategy{RollingUpdate: &RollingUpdateDeployment{MaxSurge: num(0), MaxUnavailable: ios("0%")}},
			nil, "spec.strategy.rollingUpdate.maxUnavailable: may not be 0 when maxSurge is 0"},
		{"more than 100% unavailable is meaningless", DeploymentStrategy{RollingUpdate: &RollingUpdateDeployment{MaxUnavailable: ios("150%")}},
			nil, "must not be more than 100%"},
		{"Recreate takes no rollingUpdate", DeploymentStrategy{Type: RecreateStrategy, RollingUpdate: &RollingUpdateDeployment{}},
			nil, "spec.strategy.rollingUpdate: may not be specified when strategy type is Recreate"},
		{"unknown types are rejected", DeploymentStrategy{Type: "BlueGreen"}, nil, `spec.strategy.type: "BlueGreen" is not RollingUpdate or Recreate`},
		{"the deadline must exceed minReadySeconds", DeploymentStrategy{},
			func(s *DeploymentSpec) { s.MinReadySeconds = 10; s.ProgressDeadlineSeconds = Int32(10) },
			"spec.progressDeadlineSeconds: must be greater than minReadySeconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Deployment{ObjectMeta: ObjectMeta{Name: "web"}, Spec: DeploymentSpec{
				Strategy: tt.strategy,
				Template: PodTemplateSpec{ObjectMeta: ObjectMeta{Labels: map[string]string{"app": "web"}},
					Spec: PodSpec{Containers: []Container{{Name: "hello", Image: "hello:v1"}}}},
			}}
			if tt.edit != nil {
				tt.edit(&d.Spec)
			}
			Defaults(d)
			err := Validate(d)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDeploymentDefaultsAreKubernetes(t *testing.T) {
	d := &Deployment{}
	Defaults(d)
	s := d.Spec
	if s.Strategy.Type != RollingUpdateStrategy || s.Strategy.RollingUpdate.MaxSurge.String() != "25%" ||
		s.Strategy.RollingUpdate.MaxUnavailable.String() != "25%" || *s.ProgressDeadlineSeconds != 600 {
		t.Fatalf("defaults: %+v %+v", s.Strategy, s.Strategy.RollingUpdate)
	}
}
