// Command flotilla is Flotilla's single binary: the control plane
// (server), the edge agent (agent), both at once (up), and a kubectl-like
// client for everything else.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/ctl"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

func main() {
	root := newRootCmd(os.Stdout, os.Stderr)
	if err := root.ExecuteContext(context.Background()); err != nil {
		// exec passes the remote command's exit code through.
		var exit *ctl.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.Code)
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
