package edgeagent

import (
	"slices"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

func TestPhase(t *testing.T) {
	tests := []struct {
		name string
		ctrs []*ctrState
		want string
	}{
		{"no containers is pending", nil, api.PodPending},
		{"a container not started yet keeps the pod pending", []*ctrState{{ran: true}, {}}, api.PodPending},
		{"a started container makes the pod running", []*ctrState{{ran: true}}, api.PodRunning},
		{"all finished without failure is succeeded", []*ctrState{{ran: true, final: true}, {ran: true, final: true}}, api.PodSucceeded},
		{"all finished with one failure is failed", []*ctrState{{ran: true, final: true}, {ran: true, final: true, failed: true}}, api.PodFailed},
		{"one finished and one running is running", []*ctrState{{ran: true, final: true}, {ran: true}}, api.PodRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := phase(tt.ctrs); got != tt.want {
				t.Errorf("phase = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestEnvLetsContainerOverrideAgentVariables(t *testing.T) {
	r := &podRunner{
		a:   &Agent{cfg: Config{Name: "edge-1"}},
		pod: &api.Pod{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "prod"}},
	}
	got := r.env(40001, [][2]string{{"FOO", "bar"}, {"HOSTNAME", "custom"}})
	want := []string{"POD_NAME=web", "POD_NAMESPACE=prod", "NODE_NAME=edge-1", "HOSTNAME=custom", "PORT=40001", "FOO=bar"}
	if !slices.Equal(got, want) {
		t.Errorf("env = %v, want %v", got, want)
	}
}

func TestBackoffDoublesToItsCap(t *testing.T) {
	b := newBackoff(500*time.Millisecond, 3*time.Second)
	var got []time.Duration
	for range 5 {
		got = append(got, b.next())
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("delays = %v, want %v", got, want)
	}
	b.reset()
	if d := b.next(); d != 500*time.Millisecond {
		t.Errorf("after reset: %s", d)
	}
}

func TestLineWriterSplitsLinesAndDropsWhenFull(t *testing.T) {
	s := &shipper{lines: make(chan logLine, 3)}
	w := s.writer("ns", "pod", "c", "stdout")
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\nthree\nfour"))
	_ = w.Close() // "four" does not fit
	var got []string
	for len(s.lines) > 0 {
		l := <-s.lines
		got = append(got, string(l.data))
		if l.subject != "flotilla.logs.ns.pod.c" || l.stream != "stdout" {
			t.Errorf("line %+v", l)
		}
	}
	if want := []string{"one", "two", "three"}; !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
	if n := s.dropped.Load(); n != 1 {
		t.Errorf("dropped = %d, want 1", n)
	}
}

func TestContainerNameserver(t *testing.T) {
	tests := []struct {
		addr string
		want string // "" means none
	}{
		{"127.0.0.153:53", "127.0.0.153"},
		{"10.0.0.7:53", "10.0.0.7"},
		{"0.0.0.0:53", "127.0.0.1"},
		{"[::]:53", "::1"},
		{"[::ffff:10.0.0.7]:53", "10.0.0.7"},
		{"127.0.0.153:5353", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, ok := containerNameserver(tt.addr)
			if (tt.want == "") != !ok || (ok && got.String() != tt.want) {
				t.Fatalf("containerNameserver(%q) = %v, %v; want %q", tt.addr, got, ok, tt.want)
			}
		})
	}
}
