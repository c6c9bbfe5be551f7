// Command hello is the Flotilla bootcamp HTTP module. Build it for the edge
// with GOOS=wasip1 GOARCH=wasm; it runs in both persistent and CGI mode.
package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/flotilla-edge/flotilla/wasmrt/guest"
)

// version is overridden at build time: -ldflags "-X main.version=2".
var version = "1"

func main() {
	if err := guest.Serve(handler()); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

func handler() http.Handler {
	pod := os.Getenv("POD_NAME")
	if pod == "" {
		pod = os.Getenv("HOSTNAME")
	}
	msg := fmt.Sprintf("Hello Flotilla bootcamp! | Running on: %s | v=%s\n", pod, version)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(msg))
	})
	return mux
}
