package main

import (
	"io"
	"testing"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/config"
	"github.com/flotilla-edge/flotilla/edgeagent"
)

// TestContainerdFlagsOfEachCommand: agent and up both have the containerd
// flags; each must read its own (a binding made when the tree is built
// would leave only the last command's flags read).
func TestContainerdFlagsOfEachCommand(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		args []string
		want edgeagent.ContainerdConfig
	}{
		{"agent", []string{"--containerd-socket", "off"}, edgeagent.ContainerdConfig{Socket: "off", Namespace: "flotilla"}},
		{"up", []string{"--containerd-socket", "off"}, edgeagent.ContainerdConfig{Socket: "off", Namespace: "flotilla"}},
		{"agent", []string{"--containerd-namespace", "edge", "--image-registry-pull=false"},
			edgeagent.ContainerdConfig{Socket: edgeagent.DefaultContainerdSocket, Namespace: "edge", NoRegistryPull: true}},
		{"up", nil, edgeagent.ContainerdConfig{Socket: edgeagent.DefaultContainerdSocket, Namespace: "flotilla"}},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			r := &root{v: config.NewViper(), out: io.Discard, err: io.Discard}
			agent, up := r.agentCmd(), r.upCmd() // built in the root's order
			cmd := agent
			if tc.cmd == "up" {
				cmd = up
			}
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := r.containerdConfig(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if got.Socket != tc.want.Socket || got.Namespace != tc.want.Namespace || got.NoRegistryPull != tc.want.NoRegistryPull {
				t.Fatalf("%s %v: socket %q namespace %q no-pull %v; want %+v", tc.cmd, tc.args, got.Socket, got.Namespace, got.NoRegistryPull, tc.want)
			}
		})
	}
}
