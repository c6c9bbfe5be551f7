// Command frontend is the front half of the frontend/backend example: on
// GET / it calls http://backend/ (the Service "backend" in its own
// namespace) through the agent's host call and reports what it said.
// Build it with GOOS=wasip1 GOARCH=wasm.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/flotilla-edge/flotilla/wasmrt/guest"
	"github.com/flotilla-edge/flotilla/wasmrt/guest/flotillahttp"
)

func main() {
	if err := guest.Serve(handler()); err != nil {
		fmt.Fprintln(os.Stderr, "frontend:", err)
		os.Exit(1)
	}
}

func handler() http.Handler {
	pod := os.Getenv("POD_NAME")
	backend := os.Getenv("BACKEND_URL")
	if backend == "" {
		backend = "http://backend/"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		resp, err := flotillahttp.Get(backend)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "frontend %s → backend failed: %v\n", pod, err)
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "frontend %s → backend failed: %v\n", pod, err)
			return
		}
		fmt.Fprintf(w, "frontend %s → backend says: %s\n", pod, strings.TrimSpace(string(b)))
	})
	return mux
}
