package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/ctl"
)

func (r *root) imageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the OCI images imported into the fleet (for nodes without a registry)",
	}
	var node string
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Store an OCI image archive in the fleet; agents import it into containerd",
		Long: "Reads an OCI image layout tar or a `docker save` tar, checks it, stores it in the fleet's\n" +
			"object store and records its images and platforms. Every agent (or only --node) imports it\n" +
			"into its containerd; the scheduler keeps pods off nodes the image has no platform for.",
		Example: "  docker save myapp:v1 -o myapp.tar && flotilla image import myapp.tar",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.ImageImport(ctx, e, args[0], node)
			})(cmd, args)
		},
	}
	imp.Flags().StringVar(&node, "node", "", "import on this node only")
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the imported images",
		Args:    cobra.NoArgs,
		RunE: r.run(func(ctx context.Context, e *ctl.Env) error {
			return ctl.ImageList(ctx, e)
		}),
	}
	cmd.AddCommand(imp, ls)
	return cmd
}

func (r *root) execCmd() *cobra.Command {
	var o ctl.ExecOptions
	var stdin bool
	cmd := &cobra.Command{
		Use:   "exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARGS...]",
		Short: "Run a command in a pod's OCI container",
		Long: "Runs a command inside a running OCI container through its node's agent and exits with\n" +
			"the command's exit code. wasm containers have no processes to exec into.",
		Example: "  flotilla exec web-7c9d-abcde -- cat /etc/hostname",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Pod, o.Command = args[0], args[1:]
			if stdin {
				o.Stdin = r.in
			}
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.Exec(ctx, e, o)
			})(cmd, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Container, "container", "c", "", "container name (default: the first)")
	f.BoolVarP(&stdin, "stdin", "i", false, "pass stdin to the command")
	f.BoolVarP(&o.TTY, "tty", "t", false, "allocate a terminal for the command")
	return cmd
}
