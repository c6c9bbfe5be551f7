package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
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
