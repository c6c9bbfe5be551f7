package servicelb

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
)

// OwnCgroup is the cgroup v2 directory of this process (the agent), read
// from /proc/self/cgroup under the cgroup2 mount. Wasm pods run inside the
// agent process, so attaching the socket LB here covers them and the
// agent, and nothing else on the node.
func OwnCgroup() (string, error) { return CgroupOf("self") }

// CgroupOf is the cgroup v2 directory of process pid ("self" or a number),
// from /proc/<pid>/cgroup's "0::" line under the cgroup2 mount. On a hybrid
// host (v1 controllers + v2 at /sys/fs/cgroup/unified) runc still gives
// each container its own directory in the v2 hierarchy.
func CgroupOf(pid string) (string, error) {
	root, err := ebpflb.Cgroup2Root()
	if err != nil {
		return "", err
	}
	f, err := os.Open("/proc/" + pid + "/cgroup")
	if err != nil {
		return "", fmt.Errorf("cgroup of %s: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// The unified hierarchy's line is "0::/path".
		if rel, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return filepath.Join(root, rel), nil
		}
	}
	return "", fmt.Errorf("cgroup of %s: no cgroup v2 entry in /proc/%s/cgroup", pid, pid)
}
