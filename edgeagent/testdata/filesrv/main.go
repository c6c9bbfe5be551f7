// Command filesrv is an edge agent test HTTP module. GET /file?path=P
// answers with the content of P, read afresh on every request; GET
// /env?name=N answers with the variable N; GET /healthz
// answers 200 when the file named by $HEALTH_FILE exists, else 503; GET /
// answers 200 and any other path 404.
// Build with GOOS=wasip1 GOARCH=wasm.
package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/flotilla-edge/flotilla/wasmrt/guest"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(os.Getenv(r.URL.Query().Get("name"))))
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if _, err := os.Stat(os.Getenv("HEALTH_FILE")); err != nil {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("filesrv"))
	})
	if err := guest.Serve(mux); err != nil {
		fmt.Fprintln(os.Stderr, "filesrv:", err)
		os.Exit(1)
	}
}
