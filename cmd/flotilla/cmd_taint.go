package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/ctl"
)

func (r *root) taintCmd() *cobra.Command {
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "taint nodes NAME KEY[=VALUE]:EFFECT... KEY[:EFFECT]-...",
		Short: "Add or remove taints on a node",
		Long: "Taints keep pods that do not tolerate them off a node: NoSchedule refuses new pods,\n" +
			"PreferNoSchedule makes the node a last resort, NoExecute also evicts running pods\n" +
			"(after their tolerationSeconds).",
		Example: "  flotilla taint nodes pi-1 dedicated=camera:NoSchedule\n  flotilla taint nodes pi-1 power=low:NoExecute\n  flotilla taint nodes pi-1 dedicated:NoSchedule-",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Check the arguments before dialing anything.
			node, change, err := ctl.ParseTaintCommand(args)
			if err != nil {
				return err
			}
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.Taint(ctx, e, node, change, overwrite)
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "allow replacing the value of a taint with the same key and effect")
	return cmd
}
