package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/ctl"
)

func (r *root) applyCmd() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:     "apply -f FILE|DIR|-",
		Short:   "Create or update resources from manifests",
		Example: "  flotilla apply -f web.yaml\n  flotilla apply -f manifests/\n  cat web.yaml | flotilla apply -f -",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Decode everything before connecting: a bad manifest changes
			// nothing and needs no fleet to be reported.
			objs, err := ctl.ReadManifests(files, r.in)
			if err != nil {
				return err
			}
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.Apply(ctx, e, objs)
			})(cmd, args)
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "manifest file, directory or - for stdin")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

func (r *root) createCmd() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "create -f FILE | create deployment|namespace NAME",
		Short: "Create resources from manifests or from flags",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(files) == 0 {
				return cmd.Help()
			}
			objs, err := ctl.ReadManifests(files, r.in)
			if err != nil {
				return err
			}
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.Create(ctx, e, objs)
			})(cmd, args)
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "manifest file, directory or - for stdin")

	var d ctl.DeploymentOptions
	deploy := &cobra.Command{
		Use:     "deployment NAME --image=MODULE [--replicas=N] [--port=N]",
		Aliases: []string{"deploy"},
		Short:   "Create a deployment running one wasm module",
		Example: "  flotilla create deployment web --image=hello:v1 --replicas=3 --port=8080",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d.Name = args[0]
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.CreateDeployment(ctx, e, d)
			})(cmd, args)
		},
	}
	deploy.Flags().StringVar(&d.Image, "image", "", "module reference NAME:TAG or NAME@sha256:HEX")
	deploy.Flags().Int32Var(&d.Replicas, "replicas", 1, "number of replicas")
	deploy.Flags().Int32Var(&d.Port, "port", 0, "container port; makes the module an HTTP module")
	_ = deploy.MarkFlagRequired("image")

	ns := &cobra.Command{
		Use:     "namespace NAME",
		Aliases: []string{"ns"},
		Short:   "Create a namespace",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.CreateNamespace(ctx, e, args[0])
			})(cmd, args)
		},
	}
	cmd.AddCommand(deploy, ns)
	cmd.AddCommand(r.createConfigMapCmd())
	cmd.AddCommand(r.createSecretCmd())
	cmd.AddCommand(r.createJobCmds()...)
	return cmd
}

func (r *root) deleteCmd() *cobra.Command {
	var o ctl.DeleteOptions
	cmd := &cobra.Command{
		Use:   "delete TYPE NAME... | TYPE/NAME... | -f FILE | TYPE -l SELECTOR | TYPE --all",
		Short: "Delete resources",
		Example: `  flotilla delete pod web-7c9d-abcde
  flotilla delete deployment/web
  flotilla delete -f web.yaml
  flotilla delete pods -l app=web`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.Delete(ctx, e, args, o)
			})(cmd, args)
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.Files, "filename", "f", nil, "delete the objects of these manifests")
	f.StringVarP(&o.Selector, "selector", "l", "", "delete the objects matching this label selector")
	f.BoolVar(&o.All, "all", false, "delete every object of the type in the namespace")
	f.BoolVar(&o.IgnoreNotFound, "ignore-not-found", false, "treat a missing object as deleted")
	return cmd
}

func (r *root) scaleCmd() *cobra.Command {
	var replicas int32
	cmd := &cobra.Command{
		Use:     "scale deployment/NAME --replicas=N",
		Short:   "Set the number of replicas of a deployment or replica set",
		Example: "  flotilla scale deployment/web --replicas=5\n  flotilla scale deploy web --replicas=0",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.Scale(ctx, e, args, replicas)
			})(cmd, args)
		},
	}
	cmd.Flags().Int32Var(&replicas, "replicas", 0, "the new number of replicas")
	_ = cmd.MarkFlagRequired("replicas")
	return cmd
}

func (r *root) labelCmd() *cobra.Command {
	var overwrite bool
	cmd := &cobra.Command{
		Use:     "label TYPE NAME KEY=VALUE... KEY-...",
		Short:   "Add, change or remove labels",
		Example: "  flotilla label nodes board-1 zone=north\n  flotilla label pod/web-abc12 tier=web --overwrite\n  flotilla label deploy web tier-",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Check the arguments before dialing anything.
			ref, change, err := ctl.ParseLabelCommand(args)
			if err != nil {
				return err
			}
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.Label(ctx, e, ref, change, overwrite)
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "allow changing the value of an existing label")
	return cmd
}
