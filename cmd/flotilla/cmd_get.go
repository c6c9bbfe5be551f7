package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/ctl"
)

func (r *root) getCmd() *cobra.Command {
	var o ctl.GetOptions
	cmd := &cobra.Command{
		Use:   "get TYPE [NAME...] | TYPE/NAME...",
		Short: "Display one or many resources",
		Example: `  flotilla get nodes
  flotilla get pods -o wide
  flotilla get deploy web -o yaml
  flotilla get pods -l app=web -w`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				if o.Watch {
					var cancel context.CancelFunc
					ctx, cancel = untilSignal(ctx)
					defer cancel()
				}
				return ctl.Get(ctx, e, args, o)
			})(cmd, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Output, "output", "o", "", "output format: wide, yaml, json or name")
	f.StringVarP(&o.Selector, "selector", "l", "", "label selector, e.g. app=web,tier!=db")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list across all namespaces")
	f.BoolVar(&o.ShowLabels, "show-labels", false, "show every label as the last column")
	f.BoolVarP(&o.Watch, "watch", "w", false, "after listing, watch for changes")
	return cmd
}

func (r *root) describeCmd() *cobra.Command {
	var selector string
	cmd := &cobra.Command{
		Use:     "describe TYPE [NAME...] | TYPE/NAME...",
		Short:   "Show details of a resource",
		Example: "  flotilla describe pod web-7c9d-abcde\n  flotilla describe node board-1",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.Describe(ctx, e, args, selector)
			})(cmd, args)
		},
	}
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector")
	return cmd
}
