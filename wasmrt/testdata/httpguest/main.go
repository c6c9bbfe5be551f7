// Command httpguest is a persistent HTTP module for failure tests:
// /echo echoes the body, /crash exits 3, /spin never returns, /pid reports
// the instance's random id so tests can tell instances apart.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"

	"github.com/flotilla-edge/flotilla/wasmrt/guest"
)

func main() {
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Method", r.Method)
		_, _ = io.Copy(w, r.Body)
	})
	mux.HandleFunc("/crash", func(http.ResponseWriter, *http.Request) {
		os.Exit(3)
	})
	mux.HandleFunc("/spin", func(http.ResponseWriter, *http.Request) {
		for {
		}
	})
	mux.HandleFunc("/pid", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, id)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "path="+r.URL.Path+" q="+r.URL.RawQuery)
	})
	if err := guest.Serve(mux); err != nil {
		os.Exit(1)
	}
}
