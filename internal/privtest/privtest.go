// Package privtest decides whether a test that needs root, eBPF or
// containerd can run: without them it is skipped, unless
// FLOTILLA_REQUIRE_PRIVILEGED=1 (CI sets it), where the skip becomes a
// failure so that CI can never pass by skipping.
package privtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"

	"github.com/flotilla-edge/flotilla/edgeagent/oci"
	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
)

// Required reports whether privileged tests must run (CI).
func Required() bool { return os.Getenv("FLOTILLA_REQUIRE_PRIVILEGED") == "1" }

// Unavailable skips t for why, or fails it when privileged tests are
// required.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("privileged test cannot run (FLOTILLA_REQUIRE_PRIVILEGED=1): %s", why)
	}
	t.Skipf("privileged test skipped: %s (set FLOTILLA_REQUIRE_PRIVILEGED=1 to fail instead)", why)
}

// RequireEBPF needs root, iproute2, cgroup v2 and cgroup sock_addr BPF
// programs: what the service load-balancing tests use.
func RequireEBPF(t testing.TB) {
	t.Helper()
	switch {
	case os.Geteuid() != 0:
		Unavailable(t, "not root")
	default:
		if _, err := exec.LookPath("ip"); err != nil {
			Unavailable(t, "iproute2 (ip) not installed")
		} else if _, err := ebpflb.Cgroup2Root(); err != nil {
			Unavailable(t, err.Error())
		} else if err := features.HaveProgramType(ebpf.CGroupSockAddr); err != nil {
			Unavailable(t, "kernel lacks cgroup sock_addr BPF programs: "+err.Error())
		}
	}
}

// RequireContainerd returns the socket of the project's test containerd
// (FLOTILLA_CONTAINERD_SOCK, else oci.DefaultSocket; `bash
// .ci/containerd.sh` starts it).
func RequireContainerd(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "not root (run `bash .ci/containerd.sh` as root)")
	}
	sock := os.Getenv("FLOTILLA_CONTAINERD_SOCK")
	if sock == "" {
		sock = oci.DefaultSocket
	}
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		Unavailable(t, fmt.Sprintf("containerd socket %s not reachable: %v (run `bash .ci/containerd.sh` as root)", sock, err))
		return ""
	}
	c.Close()
	return sock
}
