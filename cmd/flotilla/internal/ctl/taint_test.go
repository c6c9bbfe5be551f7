package ctl

import (
	"reflect"
	"strings"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
)

func TestTaintChange(t *testing.T) {
	existing := []api.Taint{{Key: "dedicated", Value: "camera", Effect: api.TaintNoSchedule}, {Key: "dedicated", Value: "camera", Effect: api.TaintNoExecute}}
	tests := []struct {
		name      string
		args      []string
		overwrite bool
		want      []api.Taint // TimeAdded ignored
		wantErr   string
	}{
		{"add with value", []string{"power=low:PreferNoSchedule"}, false, append(append([]api.Taint{}, existing...), api.Taint{Key: "power", Value: "low", Effect: api.TaintPreferNoSchedule}), ""},
		{"add without value", []string{"gpu:NoSchedule"}, false, append(append([]api.Taint{}, existing...), api.Taint{Key: "gpu", Effect: api.TaintNoSchedule}), ""},
		{"remove one effect", []string{"dedicated:NoSchedule-"}, false, existing[1:], ""},
		{"remove every effect of a key", []string{"dedicated-"}, false, []api.Taint{}, ""},
		{"same value again is fine", []string{"dedicated=camera:NoSchedule"}, false, existing, ""},
		{"new value needs overwrite", []string{"dedicated=radio:NoSchedule"}, false, nil, "--overwrite is false"},
		{"overwrite replaces", []string{"dedicated=radio:NoSchedule"}, true, []api.Taint{{Key: "dedicated", Value: "radio", Effect: api.TaintNoSchedule}, existing[1]}, ""},
		{"removing a missing taint fails", []string{"nope:NoSchedule-"}, false, nil, `taint "nope:NoSchedule" not found`},
		{"bad effect", []string{"a=b:Sometimes"}, false, nil, `effect "Sometimes" is not`},
		{"missing effect", []string{"a=b"}, false, nil, `effect "" is not`},
		{"bad key", []string{"-a:NoSchedule"}, false, nil, "invalid taint spec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseTaintArgs(tt.args)
			var got []api.Taint
			if err == nil {
				got, err = c.Apply(existing, tt.overwrite)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				got[i].TimeAdded = api.Time{}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("taints = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseTaintCommand(t *testing.T) {
	for _, args := range [][]string{{"nodes", "pi-1", "a:NoSchedule"}, {"node/pi-1", "a:NoSchedule"}, {"no", "pi-1", "a:NoSchedule"}} {
		node, _, err := ParseTaintCommand(args)
		if err != nil || node != "pi-1" {
			t.Errorf("%v: node %q err %v", args, node, err)
		}
	}
	if _, _, err := ParseTaintCommand([]string{"pods", "web", "a:NoSchedule"}); err == nil {
		t.Error("tainting a pod was accepted")
	}
}
