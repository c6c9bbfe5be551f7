// Command backend is the back half of the frontend/backend example: an HTTP
// module answering JSON {"pod": ..., "value": ...}. Build it with
// GOOS=wasip1 GOARCH=wasm.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/flotilla-edge/flotilla/wasmrt/guest"
)

func main() {
	if err := guest.Serve(handler()); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

func handler() http.Handler {
	pod := os.Getenv("POD_NAME")
	var served atomic.Int64 // per instance: persistent instances live on
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"pod": pod, "value": served.Add(1)})
	})
	return mux
}
