package dns

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
)

func testLog() *slog.Logger {
	if os.Getenv("FLOTILLA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func TestResolverResolve(t *testing.T) {
	st := testStore()
	tests := []struct {
		name     string
		direct   bool
		ns, host string
		port     int
		want     []string // any of
		cluster  bool
		wantErr  error
	}{
		{"short name in pod namespace", false, "default", "web", 80, []string{"10.96.0.10:80"}, true, nil},
		{"name.namespace", false, "other", "web.default", 80, []string{"10.96.0.10:80"}, true, nil},
		{"name.namespace.svc", false, "other", "web.default.svc", 80, []string{"10.96.0.10:80"}, true, nil},
		{"fully qualified with dot", false, "other", "web.default.svc.cluster.local.", 80, []string{"10.96.0.10:80"}, true, nil},
		{"direct picks the endpoint port", true, "default", "web", 80, []string{"192.168.1.20:40001"}, true, nil},
		{"headless picks a ready endpoint", false, "db", "pg", 5432, []string{"192.168.1.21:40010", "192.168.1.21:40011", "192.168.1.22:40012"}, true, nil},
		{"StatefulSet pod by hostname", false, "db", "pg-1.pg", 5432, []string{"192.168.1.21:40011"}, true, nil},
		{"ExternalName dials the external name", false, "default", "ext", 443, []string{"example.org:443"}, true, nil},
		{"unknown port", false, "default", "web", 81, nil, true, ErrNoService},
		{"unready pod only", false, "db", "pg-3.pg", 5432, nil, true, ErrNoService},
		{"unknown in domain", false, "default", "nope.default.svc.cluster.local", 80, nil, true, ErrNoService},
		{"other namespace short name is not ours", false, "other", "web", 80, nil, false, nil},
		{"outside names fall through", false, "default", "example.org", 80, nil, false, nil},
		{"IP literals fall through", false, "default", "10.96.0.10", 80, nil, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resolver{View: st, Direct: tc.direct}
			for range 20 { // random picks must stay in the set
				got, ok, err := r.Resolve(tc.ns, tc.host, tc.port)
				if ok != tc.cluster || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Fatalf("Resolve = %q, %v, %v; want cluster=%v err=%v", got, ok, err, tc.cluster, tc.wantErr)
				}
				if tc.want != nil && !slices.Contains(tc.want, got) {
					t.Fatalf("Resolve = %q, want one of %q", got, tc.want)
				}
			}
		})
	}
}
