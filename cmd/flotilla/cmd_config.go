package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/ctl"
)

// configDataFlags adds kubectl's data flags of create configmap/secret.
func configDataFlags(cmd *cobra.Command, o *ctl.ConfigDataOptions) {
	f := cmd.Flags()
	f.StringArrayVar(&o.Literals, "from-literal", nil, "a key and literal value, key=value (repeatable)")
	f.StringArrayVar(&o.Files, "from-file", nil, "[key=]path of a file, or a directory whose files become keys (repeatable)")
	f.StringArrayVar(&o.EnvFiles, "from-env-file", nil, "a file of KEY=VALUE lines (repeatable)")
}

func (r *root) createConfigMapCmd() *cobra.Command {
	var o ctl.ConfigDataOptions
	cmd := &cobra.Command{
		Use:     "configmap NAME [--from-literal=key=value]... [--from-file=[key=]path]... [--from-env-file=path]",
		Aliases: []string{"cm"},
		Short:   "Create a ConfigMap from literals, files or env files",
		Example: "  flotilla create configmap app-config --from-literal=LOG_LEVEL=debug --from-file=config.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Read and check the data before dialing the fleet.
			if _, err := ctl.NewConfigMap(args[0], o); err != nil {
				return err
			}
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.CreateConfigMap(ctx, e, args[0], o)
			})(cmd, args)
		},
	}
	configDataFlags(cmd, &o)
	return cmd
}

func (r *root) createSecretCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret generic NAME [--from-literal=key=value]... [--from-file=[key=]path]...",
		Short: "Create a Secret",
	}
	var o ctl.ConfigDataOptions
	generic := &cobra.Command{
		Use:     "generic NAME [--from-literal=key=value]... [--from-file=[key=]path]... [--from-env-file=path]",
		Short:   "Create an Opaque Secret from literals, files or env files",
		Example: "  flotilla create secret generic db --from-literal=password=s3cret --from-file=tls.key",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := ctl.NewSecret(args[0], o); err != nil {
				return err
			}
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.CreateSecret(ctx, e, args[0], o)
			})(cmd, args)
		},
	}
	configDataFlags(generic, &o)
	cmd.AddCommand(generic)
	return cmd
}
