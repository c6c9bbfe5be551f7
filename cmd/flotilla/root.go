package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/config"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/ctl"
)

// root holds what every command shares: the resolved settings and where
// to print.
type root struct {
	v          *viper.Viper
	out, err   io.Writer
	in         io.Reader
	configFile string
}

// newRootCmd builds the whole command tree; out and errOut are injectable
// so tests can drive the CLI in-process.
func newRootCmd(out, errOut io.Writer) *cobra.Command {
	r := &root{v: config.NewViper(), out: out, err: errOut, in: os.Stdin}
	cmd := &cobra.Command{
		Use:           "flotilla",
		Short:         "Flotilla runs WebAssembly workloads on a fleet of edge boards",
		Long:          "Flotilla is a WebAssembly-first edge orchestrator with Kubernetes' object model over NATS.\n\nStart a fleet on this machine with `flotilla up`, then use get, apply, logs... as with kubectl.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return config.ReadConfigFile(r.v, r.configFile)
		},
	}
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	pf := cmd.PersistentFlags()
	pf.String(config.KeyServer, "", "NATS URL of the fleet (env FLOTILLA_SERVER)")
	pf.String(config.KeyToken, "", "NATS token of the fleet (env FLOTILLA_TOKEN)")
	pf.StringP(config.KeyNamespace, "n", "", "namespace of the request (env FLOTILLA_NAMESPACE)")
	pf.StringVar(&r.configFile, "config", "", "config file (default ~/.flotilla/config.yaml)")
	for _, k := range []string{config.KeyServer, config.KeyToken, config.KeyNamespace} {
		_ = r.v.BindPFlag(k, pf.Lookup(k))
	}
	cmd.AddCommand(
		r.serverCmd(), r.agentCmd(), r.upCmd(),
		r.getCmd(), r.describeCmd(),
		r.applyCmd(), r.createCmd(), r.deleteCmd(), r.scaleCmd(), r.labelCmd(), r.taintCmd(),
		r.logsCmd(), r.moduleCmd(), r.imageCmd(), r.execCmd(),
		r.setCmd(), r.rolloutCmd(),
		r.exposeCmd(),
		r.versionCmd(), r.clusterInfoCmd(),
	)
	return cmd
}

// settings resolves flag > env > config file > context file.
func (r *root) settings() (config.Settings, error) {
	path, err := config.ContextPath()
	if err != nil {
		return config.Settings{}, err
	}
	return config.Resolve(r.v, path)
}

// env connects to the fleet for a client command; call the returned
// function when done.
func (r *root) env() (*ctl.Env, config.Settings, func(), error) {
	s, err := r.settings()
	if err != nil {
		return nil, s, nil, err
	}
	if err := s.RequireServer(); err != nil {
		return nil, s, nil, err
	}
	c, err := client.Connect(s.Server, s.Token, "flotilla-cli")
	if err != nil {
		return nil, s, nil, err
	}
	return &ctl.Env{Client: c, Out: r.out, ErrOut: r.err, Namespace: s.Namespace}, s, c.Close, nil
}

// run wraps a client command body with a connected Env.
func (r *root) run(fn func(ctx context.Context, e *ctl.Env) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		e, _, done, err := r.env()
		if err != nil {
			return err
		}
		defer done()
		return fn(cmd.Context(), e)
	}
}

// untilSignal is ctx cancelled by SIGINT or SIGTERM, for commands that run
// until interrupted (server, agent, up, get -w, logs -f).
func untilSignal(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
