// Package netpolicy is Flotilla's node service datapath: it maps service
// virtual IPs (VIP:port/protocol) to backend endpoints, replacing
// kube-proxy. Two implementations share one interface:
//
//   - ebpf (package ebpflb): cgroup socket hooks rewrite the destination at
//     connect/sendmsg time; no proxy process on the data path.
//   - userspace (package userspace): an in-agent TCP/UDP proxy listening on
//     each VIP, for kernels or nodes where eBPF is not available.
//
// New picks one; "auto" tries eBPF and falls back to userspace, saying why.
// See docs/networking.md.
package netpolicy

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"

	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
	"github.com/flotilla-edge/flotilla/netpolicy/internal/lbapi"
	"github.com/flotilla-edge/flotilla/netpolicy/userspace"
)

// Service is one VIP:port of a protocol load-balanced over backends.
type Service = lbapi.Service

// LB is a service load balancer.
type LB = lbapi.LB

// ErrNotFound is wrapped by LB.Delete for a service that is not installed.
var ErrNotFound = lbapi.ErrNotFound

// Modes accepted by New.
const (
	ModeEBPF      = "ebpf"
	ModeUserspace = "userspace"
	ModeAuto      = "auto"
)

// Config configures New.
type Config struct {
	// CgroupPath is the cgroup v2 directory whose processes are
	// load-balanced by the eBPF LB; "" = the cgroup v2 root (whole node).
	CgroupPath string
	// PinDir is the bpffs directory for pinned maps and links; "" =
	// /sys/fs/bpf/flotilla.
	PinDir string
	// NetNS makes the userspace LB work inside the named network
	// namespace (tests); "" = the agent's own.
	NetNS string
}

var (
	_ LB = (*ebpflb.LB)(nil)
	_ LB = (*userspace.LB)(nil)
)

// New returns the load balancer for mode ("ebpf", "userspace" or "auto",
// "" meaning auto) and a one-line reason describing the choice; with auto,
// the reason says why eBPF was not used when it falls back.
func New(mode string, cfg Config) (LB, string, error) {
	switch mode {
	case ModeEBPF:
		lb, err := ebpflb.New(ebpflb.Config{CgroupPath: cfg.CgroupPath, PinDir: cfg.PinDir})
		if err != nil {
			return nil, "", err
		}
		return lb, "ebpf requested: programs attached to " + lb.CgroupPath(), nil
	case ModeUserspace:
		lb, err := userspace.New(userspace.Config{NetNS: cfg.NetNS})
		if err != nil {
			return nil, "", err
		}
		return lb, "userspace requested", nil
	case ModeAuto, "":
		why := ebpfUnavailable()
		if why == "" {
			lb, err := ebpflb.New(ebpflb.Config{CgroupPath: cfg.CgroupPath, PinDir: cfg.PinDir})
			if err == nil {
				return lb, "auto: eBPF socket load balancing attached to " + lb.CgroupPath(), nil
			}
			why = err.Error()
		}
		lb, err := userspace.New(userspace.Config{NetNS: cfg.NetNS})
		if err != nil {
			return nil, "", fmt.Errorf("userspace fallback (eBPF unavailable: %s): %w", why, err)
		}
		return lb, "auto: userspace proxy because eBPF is unavailable: " + why, nil
	}
	return nil, "", errors.New("unknown load balancer mode " + mode + " (want ebpf, userspace or auto)")
}

// ebpfUnavailable returns why the eBPF LB cannot work here, or "" when it
// may (ebpflb.New reports the remaining reasons: no bpffs, load errors).
func ebpfUnavailable() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	if err := features.HaveProgramType(ebpf.CGroupSockAddr); err != nil {
		return "kernel lacks cgroup socket-address BPF programs: " + err.Error()
	}
	if _, err := ebpflb.Cgroup2Root(); err != nil {
		return err.Error()
	}
	return ""
}
