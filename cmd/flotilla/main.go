// Command flotilla is Flotilla's single binary: the control plane
// (server), the edge agent (agent), both at once (up), and a kubectl-like
// client for everything else.
package main

import (
	"context"
	"fmt"
	"os"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

func main() {
	root := newRootCmd(os.Stdout, os.Stderr)
	if err := root.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
