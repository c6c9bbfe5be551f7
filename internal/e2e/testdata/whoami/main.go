// Command whoami is a test HTTP module that answers every request with
// its pod's name and its RemoteAddr: the client address the host passed
// on. Build with
// GOOS=wasip1 GOARCH=wasm.
package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/flotilla-edge/flotilla/wasmrt/guest"
)

func main() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s remote=%s\n", os.Getenv("POD_NAME"), r.RemoteAddr)
	})
	if err := guest.Serve(h); err != nil {
		fmt.Fprintln(os.Stderr, "whoami:", err)
		os.Exit(1)
	}
}
