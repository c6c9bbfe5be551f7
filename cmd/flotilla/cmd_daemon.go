package main

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/config"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/daemon"
	"github.com/flotilla-edge/flotilla/edgeagent"
)

func (r *root) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(r.err, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func (r *root) serverCmd() *cobra.Command {
	o := daemon.ServerOptions{Version: version}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (with an embedded NATS unless --nats-url is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := config.ContextPath()
			if err != nil {
				return err
			}
			o.ContextPath = path
			if o.Token == "" {
				// The global --token / FLOTILLA_TOKEN also names the server's.
				o.Token = r.v.GetString(config.KeyToken)
			}
			ctx, cancel := untilSignal(cmd.Context())
			defer cancel()
			return daemon.RunServer(ctx, o, r.out, r.logger())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", config.DefaultDataDir("server"), "state directory (JetStream data, token)")
	f.StringVar(&o.NATSURL, "nats-url", "", "use this external NATS instead of an embedded one")
	f.StringVar(&o.Listen, "listen", "0.0.0.0:4222", "where the embedded NATS listens")
	return cmd
}

func (r *root) agentCmd() *cobra.Command {
	o := daemon.AgentOptions{}
	var node nodeFlags
	cmd := &cobra.Command{
		Use:     "agent",
		Short:   "Run the edge agent that registers this board as a node and runs its pods",
		Example: "  flotilla agent --name board-1 --labels zone=north --server nats://10.0.0.1:4222 --token $TOKEN",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Node, err = node.options(r, cmd); err != nil {
				return err
			}
			s, err := r.settings()
			if err != nil {
				return err
			}
			if err := s.RequireServer(); err != nil {
				return err
			}
			o.Server, o.Token = s.Server, s.Token
			setAgentVersion()
			ctx, cancel := untilSignal(cmd.Context())
			defer cancel()
			return daemon.RunAgent(ctx, o, r.logger())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", config.DefaultDataDir("agent"), "module cache and local state")
	node.register(r, cmd, "", "address advertised for pod ports (default: first non-loopback IPv4)")
	return cmd
}

func (r *root) upCmd() *cobra.Command {
	o := daemon.UpOptions{Version: version}
	var node nodeFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a one-machine fleet: control plane, embedded NATS and a local agent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := config.ContextPath()
			if err != nil {
				return err
			}
			o.ContextPath = path
			if o.Node, err = node.options(r, cmd); err != nil {
				return err
			}
			setAgentVersion()
			ctx, cancel := untilSignal(cmd.Context())
			defer cancel()
			return daemon.RunUp(ctx, o, r.out, r.logger())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", config.DefaultDataDir("up"), "state directory of the server and the agent")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:4222", "where the embedded NATS listens")
	node.register(r, cmd, "127.0.0.1", "address of the local node's pod ports")
	return cmd
}

// nodeFlags are the flags `agent` and `up` share: they describe the node.
type nodeFlags struct {
	o      daemon.NodeOptions
	labels string
	ports  string
}

func (n *nodeFlags) register(r *root, cmd *cobra.Command, address, addressHelp string) {
	f := cmd.Flags()
	f.StringVar(&n.o.Name, "name", daemon.DefaultNodeName(), "node name")
	f.StringVar(&n.labels, "labels", "", "node labels k=v,k=v")
	f.StringVar(&n.o.Address, "address", address, addressHelp)
	f.StringVar(&n.ports, "port-range", "40000-44999", "host ports handed to pods")
	f.StringVar(&n.o.ServiceLB, "lb-mode", "auto", "service load balancing: auto (eBPF, else a userspace proxy), ebpf, userspace or off")
	// The flag's first name, kept so existing unit files keep working.
	f.StringVar(&n.o.ServiceLB, "service-lb", "auto", "")
	_ = f.MarkDeprecated("service-lb", "use --lb-mode")
	f.BoolVar(&n.o.NetworkPolicy, "network-policy", true, "enforce NetworkPolicies on this node's wasm pods' outbound calls")
	r.containerdFlags(cmd)
}

// options parses the flags that need it.
func (n *nodeFlags) options(r *root, cmd *cobra.Command) (daemon.NodeOptions, error) {
	o := n.o
	var err error
	if o.Labels, err = daemon.ParseLabels(n.labels); err != nil {
		return o, err
	}
	if o.PortRange, err = daemon.ParsePortRange(n.ports); err != nil {
		return o, err
	}
	if o.Containerd, err = r.containerdConfig(cmd); err != nil {
		return o, err
	}
	return o, nil
}

// setAgentVersion reports this binary's version as the node's agent
// version, unless it is a development build.
func setAgentVersion() {
	if version != "dev" {
		edgeagent.Version = version
	}
}
