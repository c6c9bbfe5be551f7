package guest

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServeStream(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			_, _ = io.Copy(w, r.Body)
		case "/ignore-body":
			w.WriteHeader(http.StatusAccepted)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("X-Path", r.URL.Path)
			_, _ = io.WriteString(w, "<html>hi</html>")
		}
	})
	// Pipelined requests on one stream, including a body the handler ignores.
	in := "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
		"HEAD /page HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /page HTTP/1.1\r\nHost: x\r\n\r\n"
	var out bytes.Buffer
	if err := ServeStream(h, strings.NewReader(in), &out); err != nil {
		t.Fatalf("ServeStream: %v", err)
	}
	br := bufio.NewReader(&out)
	tests := []struct {
		method, path string
		wantCode     int
		wantBody     string
		wantCT       string
	}{
		{"POST", "/echo", 200, "hello", "text/plain; charset=utf-8"},
		{"POST", "/ignore-body", 202, "", ""},
		{"HEAD", "/page", 200, "", "text/html; charset=utf-8"},
		{"GET", "/empty", 204, "", ""},
		{"GET", "/page", 200, "<html>hi</html>", "text/html; charset=utf-8"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, tt.path, nil)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("%s %s: read response: %v", tt.method, tt.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tt.wantCode || string(b) != tt.wantBody || resp.Header.Get("Content-Type") != tt.wantCT {
			t.Errorf("%s %s = %d %q ct=%q; want %d %q %q", tt.method, tt.path, resp.StatusCode, b, resp.Header.Get("Content-Type"), tt.wantCode, tt.wantBody, tt.wantCT)
		}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Fatalf("trailing output %q", rest)
	}
}

func TestServeStreamBadRequest(t *testing.T) {
	err := ServeStream(http.NotFoundHandler(), strings.NewReader("garbage\r\n\r\n"), io.Discard)
	if err == nil {
		t.Fatal("want an error for a malformed request")
	}
}

func TestServeStreamRemoteAddrIsLastHop(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.RemoteAddr) })
	in := "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.1, 192.0.2.7\r\nContent-Length: 0\r\n\r\n"
	var out bytes.Buffer
	if err := ServeStream(h, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "\r\n\r\n192.0.2.7") {
		t.Fatalf("response %q", out.String())
	}
}
