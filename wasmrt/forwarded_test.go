package wasmrt

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

func TestWriteRequestForwardedFor(t *testing.T) {
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string // the X-Forwarded-For line, "" for none
	}{
		{"remote address appended", "192.0.2.7:5123", nil, "X-Forwarded-For: 192.0.2.7"},
		{"client's hops kept, remote last", "192.0.2.7:5123", []string{"198.51.100.1", "203.0.113.9"}, "X-Forwarded-For: 198.51.100.1, 203.0.113.9, 192.0.2.7"},
		{"no port", "192.0.2.7", nil, "X-Forwarded-For: 192.0.2.7"},
		{"no remote: client's only", "", []string{"198.51.100.1"}, "X-Forwarded-For: 198.51.100.1"},
		{"nothing", "", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://x/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			var b strings.Builder
			if err := writeRequest(bufio.NewWriter(&b), r, nil, 0); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(b.String(), "\r\n") {
				if strings.HasPrefix(l, "X-Forwarded-For") {
					got = append(got, l)
				}
			}
			if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
				t.Fatalf("got %q, want %q in\n%s", got, tc.want, b.String())
			}
		})
	}
}
