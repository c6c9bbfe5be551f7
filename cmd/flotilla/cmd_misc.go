package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/ctl"
)

func (r *root) logsCmd() *cobra.Command {
	var o ctl.LogsOptions
	cmd := &cobra.Command{
		Use:     "logs POD [-c CONTAINER] [-f] [--tail=N]",
		Short:   "Print the output of a pod's containers",
		Example: "  flotilla logs web-7c9d-abcde\n  flotilla logs -f --tail=20 web-7c9d-abcde",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				ctx, cancel := untilSignal(ctx)
				defer cancel()
				return ctl.Logs(ctx, e, args, o)
			})(cmd, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Container, "container", "c", "", "container name (default: the only one, else all)")
	f.BoolVarP(&o.Follow, "follow", "f", false, "keep printing new output")
	f.IntVar(&o.Tail, "tail", -1, "lines of recent output to print; -1 prints all")
	return cmd
}

func (r *root) moduleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "module",
		Short: "Manage the fleet's wasm module registry",
	}
	push := &cobra.Command{
		Use:     "push FILE NAME:TAG",
		Short:   "Upload a wasm module",
		Example: "  flotilla module push examples/hello/hello-v1.wasm hello:v1",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.ModulePush(ctx, e, args[0], args[1])
			})(cmd, args)
		},
	}
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the modules of the registry",
		Args:    cobra.NoArgs,
		RunE: r.run(func(ctx context.Context, e *ctl.Env) error {
			return ctl.ModuleList(ctx, e)
		}),
	}
	cmd.AddCommand(push, ls)
	return cmd
}

func (r *root) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the client and server versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := r.settings()
			if err != nil {
				return err
			}
			var c *client.Client
			if err = s.RequireServer(); err == nil {
				if c, err = client.Connect(s.Server, s.Token, "flotilla-cli"); err == nil {
					defer c.Close()
				}
			}
			ctl.Version(cmd.Context(), r.out, version, c, err)
			return nil
		},
	}
}

func (r *root) clusterInfoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cluster-info",
		Short: "Show where the control plane runs and how many nodes are ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, s, done, err := r.env()
			if err != nil {
				return err
			}
			defer done()
			return ctl.ClusterInfo(cmd.Context(), e, s.Server)
		},
	}
}
