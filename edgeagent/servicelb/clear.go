package servicelb

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
	"github.com/flotilla-edge/flotilla/netpolicy/nodeport"
)

// DefaultPinDir is where a node's eBPF datapath is pinned when
// Config.PinDir is "": one directory per node name, so two agents on one
// host never share.
func DefaultPinDir(node string) string { return filepath.Join("/sys/fs/bpf/flotilla", node) }

// Clear removes what an eBPF-mode agent left under pinDir: the socket
// LB's cgroup links and maps, and the node-port programs on the devices.
// An agent that now runs the userspace proxy, or no load balancing, calls
// it, so a stale translation never shadows the mode it runs.
func Clear(pinDir string) error {
	if _, err := os.Stat(pinDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return errors.Join(nodeport.Detach(pinDir), ebpflb.Teardown(pinDir))
}
