// Package daemon runs the long-lived flotilla processes: the control plane
// (server), the edge agent (agent) and both in one process (up).
package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/config"
	"github.com/flotilla-edge/flotilla/controlplane/server"
	"github.com/flotilla-edge/flotilla/edgeagent"
)

// ServerOptions configure `flotilla server`.
type ServerOptions struct {
	DataDir string
	// NATSURL names an external NATS; empty embeds one listening on Listen.
	NATSURL     string
	Listen      string
	Token       string
	ContextPath string
	Version     string
}

// ParseListen splits HOST:PORT for the embedded NATS.
func ParseListen(listen string) (string, int, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("--listen %q: want HOST:PORT: %w", listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < -1 || p > 65535 {
		return "", 0, fmt.Errorf("--listen %q: bad port", listen)
	}
	return host, p, nil
}

// startServer starts the control plane and records it in the context file.
func startServer(ctx context.Context, o ServerOptions, log *slog.Logger) (*server.Server, string, error) {
	cfg := server.Config{DataDir: o.DataDir, NATSURL: o.NATSURL, Token: o.Token, Version: o.Version, Log: log}
	if o.NATSURL == "" {
		host, port, err := ParseListen(o.Listen)
		if err != nil {
			return nil, "", err
		}
		cfg.NATSHost, cfg.NATSPort = host, port
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("data dir: %w", err)
	}
	s, err := server.Start(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("start control plane: %w", err)
	}
	url := config.ClientURL(s.URL())
	if err := config.WriteContext(o.ContextPath, config.Context{Server: url, Token: s.Token()}); err != nil {
		s.Stop()
		return nil, "", err
	}
	return s, url, nil
}

// RunServer runs the control plane until ctx ends.
func RunServer(ctx context.Context, o ServerOptions, out io.Writer, log *slog.Logger) error {
	s, url, err := startServer(ctx, o, log)
	if err != nil {
		return err
	}
	log.Info("control plane running", "nats", url, "context", o.ContextPath, "dataDir", o.DataDir)
	fmt.Fprintf(out, "Flotilla control plane is running at %s\nContext: %s\n", url, o.ContextPath)
	<-ctx.Done()
	log.Info("stopping control plane")
	s.Stop()
	return nil
}

// AgentOptions configure `flotilla agent`.
type AgentOptions struct {
	Node    NodeOptions
	Server  string
	Token   string
	DataDir string
}

// NodeOptions are what `flotilla agent` and `flotilla up` both say about
// the node they run.
type NodeOptions struct {
	Name      string
	Labels    map[string]string
	Address   string
	PortRange [2]int
	ServiceLB string // auto, ebpf, userspace or off
	// NetworkPolicy enforces NetworkPolicies on this node's pods.
	NetworkPolicy bool
	// Containerd configures OCI containers.
	Containerd edgeagent.ContainerdConfig
}

// agentConfig is the agent configuration the node options describe.
func (n NodeOptions) agentConfig(dataDir string, log *slog.Logger) edgeagent.Config {
	return edgeagent.Config{
		Name: n.Name, Labels: n.Labels, DataDir: dataDir, Address: n.Address, PortRange: n.PortRange,
		ServiceLB: n.ServiceLB, NetworkPolicy: n.NetworkPolicy, Containerd: n.Containerd, Log: log,
	}
}

// RunAgent runs an edge agent until ctx ends.
func RunAgent(ctx context.Context, o AgentOptions, log *slog.Logger) error {
	cfg := o.Node.agentConfig(o.DataDir, log)
	cfg.NATSURL, cfg.Token = o.Server, o.Token
	a, err := edgeagent.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	log.Info("agent running", "node", o.Node.Name, "server", o.Server)
	<-ctx.Done()
	log.Info("stopping agent")
	a.Stop()
	return nil
}

// UpOptions configure `flotilla up`.
type UpOptions struct {
	Node        NodeOptions
	DataDir     string
	Listen      string
	ContextPath string
	Version     string
}

// RunUp runs a control plane with its embedded NATS and a local agent in
// one process until ctx ends.
func RunUp(ctx context.Context, o UpOptions, out io.Writer, log *slog.Logger) error {
	s, url, err := startServer(ctx, ServerOptions{
		DataDir: filepath.Join(o.DataDir, "server"), Listen: o.Listen,
		ContextPath: o.ContextPath, Version: o.Version,
	}, log)
	if err != nil {
		return err
	}
	defer s.Stop()
	// The agent shares the server's connection: one process, one client.
	cfg := o.Node.agentConfig(filepath.Join(o.DataDir, "agent"), log)
	cfg.Conn = s.Conn()
	a, err := edgeagent.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("start local agent: %w", err)
	}
	defer a.Stop()
	fmt.Fprintf(out, `Flotilla is up.
  NATS:    %s
  Context: %s
  Node:    %s (%s)
Try:
  flotilla get nodes
  flotilla module push examples/hello/hello-v1.wasm hello:v1
  flotilla create deployment web --image=hello:v1 --replicas=3 --port=8080
`, url, o.ContextPath, o.Node.Name, strings.Join(a.Runtimes(), ", "))
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

// DefaultNodeName is the host name, lower-cased so it is a valid node name.
func DefaultNodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	h = strings.ToLower(h)
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	return h
}

// ParsePortRange reads "40000-44999".
func ParsePortRange(s string) ([2]int, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return [2]int{}, fmt.Errorf("--port-range %q: want LOW-HIGH within 1-65535", s)
	}
	return [2]int{a, b}, nil
}

// ParseLabels reads "k=v,k=v" node labels.
func ParseLabels(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--labels: %q is not KEY=VALUE", kv)
		}
		m[k] = v
	}
	if err := api.ValidLabels(m); err != nil {
		return nil, fmt.Errorf("--labels: %w", err)
	}
	return m, nil
}
