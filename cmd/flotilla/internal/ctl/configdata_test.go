package ctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigDataReadsLiteralsFilesAndEnvFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("app.yaml", "level: debug\n")
	env := write("app.env", "# comment\n\nMODE=fast\nEMPTY=\n")
	sub := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "a.conf"), []byte("A"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := write("bad.env", "NOEQUALS\n")
	tests := []struct {
		name    string
		opts    ConfigDataOptions
		want    map[string]string
		wantErr string
	}{
		{"a literal splits at the first =", ConfigDataOptions{Literals: []string{"URL=a=b"}}, map[string]string{"URL": "a=b"}, ""},
		{"a file is keyed by its base name", ConfigDataOptions{Files: []string{cfg}}, map[string]string{"app.yaml": "level: debug\n"}, ""},
		{"a file can be given a key", ConfigDataOptions{Files: []string{"config=" + cfg}}, map[string]string{"config": "level: debug\n"}, ""},
		{"a directory adds each of its files", ConfigDataOptions{Files: []string{sub}}, map[string]string{"a.conf": "A"}, ""},
		{"an env file skips comments and blank lines", ConfigDataOptions{EnvFiles: []string{env}}, map[string]string{"MODE": "fast", "EMPTY": ""}, ""},
		{"a bad key is an error naming it", ConfigDataOptions{Literals: []string{"bad key=1"}}, nil, `"bad key" is not a valid key name for a ConfigMap`},
		{"a key given twice is an error", ConfigDataOptions{Literals: []string{"K=1", "K=2"}}, nil, `cannot add key "K"`},
		{"a literal without = is an error", ConfigDataOptions{Literals: []string{"K"}}, nil, `invalid literal source "K"`},
		{"an env line without = names the file and line", ConfigDataOptions{EnvFiles: []string{bad}}, nil, "bad.env:1"},
		{"a missing file is an error naming it", ConfigDataOptions{Files: []string{filepath.Join(dir, "nope")}}, nil, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigData("ConfigMap", tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys %v, want %v", len(got), got, tt.want)
			}
			for k, v := range tt.want {
				if string(got[k]) != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestNewConfigMapKeepsBinaryValuesApart(t *testing.T) {
	p := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(p, []byte{0xff, 0xfe, 0x00}, 0o600); err != nil {
		t.Fatal(err)
	}
	cm, err := NewConfigMap("c", ConfigDataOptions{Literals: []string{"t=text"}, Files: []string{p}})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["t"] != "text" || len(cm.BinaryData["blob"]) != 3 {
		t.Errorf("data %v binaryData %v", cm.Data, cm.BinaryData)
	}
}
