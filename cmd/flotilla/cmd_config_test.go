package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/config"
	"github.com/flotilla-edge/flotilla/controlplane/server"
)

// syncBuffer is written by a watching command while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCreateConfigMapAndSecretAndGetEvents(t *testing.T) {
	dir := isolate(t)
	ctx := context.Background()
	s, err := server.Start(ctx, server.Config{
		DataDir: t.TempDir(), NATSHost: "127.0.0.1", NATSPort: -1,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	if err := config.WriteContext(filepath.Join(dir, "context.yaml"), config.Context{Server: s.URL(), Token: s.Token()}); err != nil {
		t.Fatal(err)
	}
	c, err := client.Connect(s.URL(), s.Token(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	cfgFile := filepath.Join(dir, "app.yaml")
	writeFile(t, cfgFile, "level: debug\n")
	envFile := filepath.Join(dir, "app.env")
	writeFile(t, envFile, "# defaults\nMODE=fast\n")
	if out := mustRun(t, "create", "configmap", "app-config", "--from-literal=LOG_LEVEL=debug", "--from-file="+cfgFile, "--from-env-file="+envFile); out != "configmap/app-config created\n" {
		t.Errorf("create configmap: %q", out)
	}
	obj, err := c.Get(ctx, "ConfigMap", "default", "app-config")
	if err != nil {
		t.Fatal(err)
	}
	if cm := obj.(*api.ConfigMap); cm.Data["LOG_LEVEL"] != "debug" || cm.Data["app.yaml"] != "level: debug\n" || cm.Data["MODE"] != "fast" {
		t.Errorf("stored configmap data: %v", cm.Data)
	}
	if _, _, err := flotilla(t, "create", "configmap", "bad", "--from-literal=no good=1"); err == nil || !strings.Contains(err.Error(), `"no good"`) {
		t.Errorf("bad key: err = %v, want it to name the key", err)
	}
	if out := mustRun(t, "create", "secret", "generic", "db", "--from-literal=password=s3cret"); out != "secret/db created\n" {
		t.Errorf("create secret: %q", out)
	}
	obj, err = c.Get(ctx, "Secret", "default", "db")
	if err != nil {
		t.Fatal(err)
	}
	if sec := obj.(*api.Secret); string(sec.Data["password"]) != "s3cret" || sec.Type != "Opaque" {
		t.Errorf("stored secret: %+v", sec)
	}

	tables := []struct {
		args   []string
		header string
		row    []string
	}{
		{[]string{"get", "configmaps"}, "NAME", []string{"app-config", "3"}},
		{[]string{"get", "cm", "app-config"}, "NAME", []string{"app-config", "3"}},
		{[]string{"get", "secrets"}, "NAME", []string{"db", "Opaque", "1"}},
	}
	for _, tt := range tables {
		out := mustRun(t, tt.args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], tt.header) {
			t.Errorf("%v:\n%s", tt.args, out)
			continue
		}
		if f := strings.Fields(lines[1]); len(f) < len(tt.row) || strings.Join(f[:len(tt.row)], " ") != strings.Join(tt.row, " ") {
			t.Errorf("%v row %q, want it to start with %v", tt.args, lines[1], tt.row)
		}
	}

	// Events list oldest first, whatever their names.
	now := time.Now()
	for _, ev := range []struct {
		name, reason string
		age          time.Duration
	}{{"a-newest", "Started", time.Minute}, {"b-oldest", "Pulled", time.Hour}, {"c-middle", "Created", 10 * time.Minute}} {
		ts := api.Time{Time: now.Add(-ev.age).UTC().Truncate(time.Second)}
		if _, err := c.Create(ctx, &api.Event{
			ObjectMeta:     api.ObjectMeta{Name: ev.name},
			InvolvedObject: api.ObjectReference{Kind: "Pod", Name: "web"},
			Reason:         ev.reason, Message: ev.reason + " container web", Type: "Normal",
			FirstTimestamp: ts, LastTimestamp: ts, Count: 1,
		}); err != nil {
			t.Fatal(err)
		}
	}
	out := mustRun(t, "get", "events")
	var reasons []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		reasons = append(reasons, strings.Fields(l)[2])
	}
	if got := strings.Join(reasons, ","); got != "Pulled,Created,Started" {
		t.Errorf("get events order %s, want Pulled,Created,Started:\n%s", got, out)
	}

	// get ev -w prints the current events, then each new one.
	var buf syncBuffer
	cmd := newRootCmd(&buf, io.Discard)
	cmd.SetArgs([]string{"get", "ev", "-w"})
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(wctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "Started") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	ts := api.Now()
	if _, err := c.Create(ctx, &api.Event{
		ObjectMeta:     api.ObjectMeta{Name: "d-new"},
		InvolvedObject: api.ObjectReference{Kind: "Pod", Name: "web"},
		Reason:         "Killing", Message: "Stopping container web", Type: "Normal",
		FirstTimestamp: ts, LastTimestamp: ts, Count: 1,
	}); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(buf.String(), "Killing") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("get ev -w: %v", err)
	}
	if got := buf.String(); !strings.Contains(got, "Pulled") || !strings.Contains(got, "Stopping container web") {
		t.Errorf("get ev -w printed:\n%s", got)
	}
}
