package edgeagent

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/wasmrt/hostcall"
)

// Version is reported as nodeInfo.agentVersion; the build may override it.
var Version = "dev"

// Config configures an agent. Zero values get the defaults documented on
// each field.
type Config struct {
	// Name is the node name, an RFC 1123 label.
	Name   string
	Labels map[string]string
	// NATSURL and Token dial the fleet's NATS; ignored when Conn is set.
	NATSURL string
	Token   string
	// Conn is an existing connection (flotilla up runs the agent
	// in-process); the agent does not close it.
	Conn *nats.Conn
	// DataDir holds the module cache, the wazero compile cache and the
	// local copy of the assignments. Required.
	DataDir string
	// Address is advertised and listened on for pod ports; default the
	// first non-loopback IPv4, else 127.0.0.1.
	Address string
	// PortRange bounds pod host ports; default 40000-44999.
	PortRange [2]int
	// CPUMilli and MemoryBytes override the capacity; default
	// runtime.NumCPU()*1000 and MemTotal of /proc/meminfo.
	CPUMilli    int64
	MemoryBytes int64
	// CompileCacheDir is wazero's on-disk compilation cache; default
	// DataDir/wasm-cache. Agents on one host (and tests) may share one.
	CompileCacheDir string
	// HeartbeatInterval defaults to 5s.
	HeartbeatInterval time.Duration
	// ClusterDNSAddr is where the agent serves cluster DNS (UDP and TCP);
	// default dns.DefaultAddr (127.0.0.153:53), "off" disables the server.
	ClusterDNSAddr string
	// ClusterDomain defaults to cluster.local.
	ClusterDomain string
	// ServiceDialDirect makes wasm pods' host calls dial a ready endpoint
	// of a service instead of its ClusterIP, for nodes without a service
	// load balancer.
	ServiceDialDirect bool
	// HostCallPolicy decides which destinations wasm pods may call through
	// the host module; nil allows all. NetworkPolicy plugs in here.
	HostCallPolicy hostcall.AllowFunc
	// NetworkPolicy enforces NetworkPolicies on wasm pods' host calls
	// (docs/networking.md); ignored when HostCallPolicy is set.
	NetworkPolicy bool
	// ServiceLB is the service load balancer mode (auto, ebpf, userspace);
	// "off" runs none and removes an eBPF datapath an earlier agent of
	// this node left; "" runs none and touches nothing. "" by default here
	// so tests and embedders opt in; `flotilla agent` and `flotilla up`
	// default to auto.
	ServiceLB string
	// LBCgroupPath and LBPinDir override servicelb.Config's CgroupPath
	// (default the agent's own cgroup) and PinDir.
	LBCgroupPath, LBPinDir string
	// LBNetNS makes a userspace LB add its VIPs and sockets inside this
	// named network namespace (tests); "" = the agent's own.
	LBNetNS string
	// Containerd configures the OCI runtime (see containerd.go).
	Containerd ContainerdConfig
	Log        *slog.Logger
}

func (c *Config) setDefaults() error {
	if err := api.ValidDNSLabel(c.Name); err != nil {
		return fmt.Errorf("node name: %w", err)
	}
	if c.DataDir == "" {
		return fmt.Errorf("agent %s: DataDir is required", c.Name)
	}
	if c.NATSURL == "" && c.Conn == nil {
		c.NATSURL = nats.DefaultURL
	}
	if c.Address == "" {
		c.Address = firstIPv4()
	}
	if c.CompileCacheDir == "" {
		c.CompileCacheDir = filepath.Join(c.DataDir, "wasm-cache")
	}
	if c.PortRange == [2]int{} {
		c.PortRange = [2]int{40000, 44999}
	}
	if c.PortRange[0] < 1 || c.PortRange[1] > 65535 || c.PortRange[0] > c.PortRange[1] {
		return fmt.Errorf("agent %s: bad port range %d-%d", c.Name, c.PortRange[0], c.PortRange[1])
	}
	if c.CPUMilli <= 0 {
		c.CPUMilli = int64(runtime.NumCPU()) * 1000
	}
	if c.MemoryBytes <= 0 {
		c.MemoryBytes = memTotal()
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	c.Containerd.setDefaults(c.DataDir)
	if c.Log == nil {
		c.Log = slog.Default()
	}
	c.Log = c.Log.With("node", c.Name)
	return nil
}

// firstIPv4 is the first non-loopback IPv4 address of the host.
func firstIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// memTotal reads MemTotal from /proc/meminfo; 0 when unknown.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// kernelVersion reads the running kernel's release; "" when unknown.
func kernelVersion() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
