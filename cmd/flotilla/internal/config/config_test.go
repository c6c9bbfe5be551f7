package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/flotilla-edge/flotilla/edgeagent/oci"
)

func TestResolvePrecedence(t *testing.T) {
	dir := t.TempDir()
	ctxFile := filepath.Join(dir, "context.yaml")
	if err := WriteContext(ctxFile, Context{Server: "nats://file:4222", Token: "file-token"}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(ctxFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("context file mode: %v %v", st.Mode(), err)
	}
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("server: nats://config:4222\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		flag, env  string
		config     bool
		ctxPath    string
		wantServer string
		wantToken  string
		wantNS     string
	}{
		{"context file only", "", "", false, ctxFile, "nats://file:4222", "file-token", "default"},
		{"config file beats context file", "", "", true, ctxFile, "nats://config:4222", "", "default"},
		{"env beats config file", "", "nats://env:4222", true, ctxFile, "nats://env:4222", "", "default"},
		{"flag beats env", "nats://flag:4222", "nats://env:4222", true, ctxFile, "nats://flag:4222", "", "default"},
		{"flag naming the context's server keeps its token", "nats://file:4222", "", false, ctxFile, "nats://file:4222", "file-token", "default"},
		{"nothing anywhere", "", "", false, filepath.Join(dir, "missing.yaml"), "", "", "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("FLOTILLA_SERVER", tc.env)
			t.Setenv("FLOTILLA_TOKEN", "")
			t.Setenv("FLOTILLA_NAMESPACE", "")
			if tc.env == "" {
				os.Unsetenv("FLOTILLA_SERVER")
			}
			os.Unsetenv("FLOTILLA_TOKEN")
			os.Unsetenv("FLOTILLA_NAMESPACE")
			v := NewViper()
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			fs.String(KeyServer, "", "")
			fs.String(KeyToken, "", "")
			fs.String(KeyNamespace, "", "")
			for _, k := range []string{KeyServer, KeyToken, KeyNamespace} {
				if err := v.BindPFlag(k, fs.Lookup(k)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.flag != "" {
				if err := fs.Parse([]string{"--server=" + tc.flag}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.config {
				if err := ReadConfigFile(v, cfgFile); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Resolve(v, tc.ctxPath)
			if err != nil {
				t.Fatal(err)
			}
			if s.Server != tc.wantServer || s.Token != tc.wantToken || s.Namespace != tc.wantNS {
				t.Errorf("got server=%q token=%q ns=%q, want %q %q %q", s.Server, s.Token, s.Namespace, tc.wantServer, tc.wantToken, tc.wantNS)
			}
			if tc.wantServer == "" && !errors.Is(s.RequireServer(), ErrNoFleet) {
				t.Errorf("RequireServer = %v, want ErrNoFleet", s.RequireServer())
			}
		})
	}
}

func TestClientURL(t *testing.T) {
	tests := map[string]string{
		"nats://0.0.0.0:4222":   "nats://127.0.0.1:4222",
		"nats://[::]:4222":      "nats://127.0.0.1:4222",
		"nats://10.0.0.1:4222":  "nats://10.0.0.1:4222",
		"nats://127.0.0.1:4222": "nats://127.0.0.1:4222",
	}
	for in, want := range tests {
		if got := ClientURL(in); got != want {
			t.Errorf("ClientURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRegistriesFromConfigFile(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    map[string]oci.Registry
		wantErr string
	}{
		{"none", "server: nats://x:4222\n", nil, ""},
		{"mirrors and credentials", `
containerd_socket: /run/containerd/containerd.sock
containerd:
  registries:
    docker.io:
      mirrors: ["http://10.0.0.5:5000", "https://mirror.example"]
      username: pi
      password: s3cret
    registry.local:5000:
      mirrors: ["http://10.0.0.5:5001"]
      mirrors_only: true
`, map[string]oci.Registry{
			"docker.io":           {Mirrors: []string{"http://10.0.0.5:5000", "https://mirror.example"}, Username: "pi", Password: "s3cret"},
			"registry.local:5000": {Mirrors: []string{"http://10.0.0.5:5001"}, MirrorsOnly: true},
		}, ""},
		{"unknown key", "containerd:\n  registries:\n    docker.io:\n      mirror: http://x\n", nil, "containerd.registries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			v := NewViper()
			if err := ReadConfigFile(v, path); err != nil {
				t.Fatal(err)
			}
			got, err := Registries(v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Registries = %v, %v; want an error naming %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Registries = %#v, %v; want %#v", got, err, tt.want)
			}
			if v.GetString(KeyContainerdSocket) != "" && v.GetString(KeyContainerdSocket) != "/run/containerd/containerd.sock" {
				t.Fatalf("flat key beside the section: %q", v.GetString(KeyContainerdSocket))
			}
		})
	}
}
