package client_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/api/wire"
	"github.com/flotilla-edge/flotilla/controlplane/natsembed"
)

func startLogs(t *testing.T) (*client.Client, jetstream.JetStream) {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	c, err := client.Connect(srv.URL(), "", "logs-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	js, err := jetstream.New(c.NC)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: wire.LogStream, Subjects: []string{wire.LogSubjects}}); err != nil {
		t.Fatal(err)
	}
	pub := func(ctr string, lines ...string) {
		for _, l := range lines {
			if _, err := js.Publish(ctx, wire.LogSubject("default", "web-1", ctr), []byte(l)); err != nil {
				t.Fatal(err)
			}
		}
	}
	pub("app", "one", "two\n", "three", "four")
	pub("side", "s1")
	return c, js
}

func TestLogs(t *testing.T) {
	c, _ := startLogs(t)
	tests := []struct {
		name, pod, container string
		tail                 int
		want                 string
	}{
		{"all lines of a container", "web-1", "app", -1, "one\ntwo\nthree\nfour\n"},
		{"tail keeps the last lines", "web-1", "app", 2, "three\nfour\n"},
		{"tail larger than history", "web-1", "app", 10, "one\ntwo\nthree\nfour\n"},
		{"tail zero prints nothing", "web-1", "app", 0, ""},
		{"every container", "web-1", "", -1, "one\ntwo\nthree\nfour\ns1\n"},
		{"unknown pod returns at once", "nope", "", -1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var buf bytes.Buffer
			if err := c.Logs(ctx, "default", tc.pod, tc.container, tc.tail, false, &buf); err != nil {
				t.Fatalf("Logs: %v", err)
			}
			if ctx.Err() != nil {
				t.Fatal("Logs did not return before the deadline")
			}
			if got := buf.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// syncBuf is a bytes.Buffer safe to read while Logs writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogsFollow(t *testing.T) {
	c, js := startLogs(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buf syncBuf
	done := make(chan error, 1)
	go func() { done <- c.Logs(ctx, "default", "web-1", "app", 1, true, &buf) }()
	waitFor(t, func() bool { return buf.String() == "four\n" })
	if _, err := js.Publish(ctx, wire.LogSubject("default", "web-1", "app"), []byte("five")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return buf.String() == "four\nfive\n" })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Logs: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Logs did not stop when its context ended")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
