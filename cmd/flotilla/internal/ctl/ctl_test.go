package ctl

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseLabelArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		set     map[string]string
		remove  []string
		wantErr string
	}{
		{"set", []string{"zone=north", "tier=web"}, map[string]string{"zone": "north", "tier": "web"}, nil, ""},
		{"remove", []string{"zone-"}, map[string]string{}, []string{"zone"}, ""},
		{"both", []string{"a=1", "b-"}, map[string]string{"a": "1"}, []string{"b"}, ""},
		{"empty value", []string{"a="}, map[string]string{"a": ""}, nil, ""},
		{"prefixed key", []string{"example.com/gpu=yes"}, map[string]string{"example.com/gpu": "yes"}, nil, ""},
		{"value ending in dash is a set", []string{"a=b-"}, nil, nil, `"b-"`},
		{"invalid key is named", []string{"bad key=1"}, nil, nil, `"bad key"`},
		{"invalid value is named", []string{"k=no way"}, nil, nil, `"no way"`},
		{"not a label", []string{"justaword"}, nil, nil, `invalid label spec "justaword"`},
		{"set and remove same key", []string{"a=1", "a-"}, nil, nil, `"a"`},
		{"nothing", nil, nil, nil, "at least one label"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseLabelArgs(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Set, tc.set) || !reflect.DeepEqual(c.Remove, tc.remove) {
				t.Errorf("got set=%v remove=%v, want %v %v", c.Set, c.Remove, tc.set, tc.remove)
			}
		})
	}
}

func TestLabelChangeOverwrite(t *testing.T) {
	c, err := ParseLabelArgs([]string{"zone=south"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Apply(map[string]string{"zone": "north"}, false)
	if err == nil || err.Error() != "'zone' already has a value (north), and --overwrite is false" {
		t.Fatalf("err = %v", err)
	}
	got, err := c.Apply(map[string]string{"zone": "north"}, true)
	if err != nil || got["zone"] != "south" {
		t.Fatalf("overwrite: %v %v", got, err)
	}
	if _, err := c.Apply(map[string]string{"zone": "south"}, false); err != nil {
		t.Fatalf("same value without --overwrite: %v", err)
	}
}

func TestParseRefs(t *testing.T) {
	tests := []struct {
		args    []string
		kind    string
		names   []string
		wantErr bool
	}{
		{[]string{"po"}, "Pod", nil, false},
		{[]string{"deploy", "a", "b"}, "Deployment", []string{"a", "b"}, false},
		{[]string{"deployment/web"}, "Deployment", []string{"web"}, false},
		{[]string{"no/board-1", "nodes/board-2"}, "Node", []string{"board-1", "board-2"}, false},
		{[]string{"widgets"}, "", nil, true},
		{[]string{"pods", "deploy/web"}, "", nil, true},
	}
	for _, tc := range tests {
		ki, refs, err := ParseRefs(tc.args)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseRefs(%q): want error", tc.args)
			}
			continue
		}
		if err != nil || ki.Kind != tc.kind {
			t.Errorf("ParseRefs(%q) = %v, %v", tc.args, ki, err)
			continue
		}
		var names []string
		for _, r := range refs {
			names = append(names, r.Name)
		}
		if !reflect.DeepEqual(names, tc.names) {
			t.Errorf("ParseRefs(%q) names = %q, want %q", tc.args, names, tc.names)
		}
	}
}

func TestContainerName(t *testing.T) {
	tests := map[string]string{
		"hello:v1":            "hello",
		"my_module.v2:latest": "my-module-v2",
		"hello@sha256:" + strings.Repeat("a", 64): "hello",
		"--:x": "main",
	}
	for in, want := range tests {
		if got := ContainerName(in); got != want {
			t.Errorf("ContainerName(%q) = %q, want %q", in, got, want)
		}
	}
}
