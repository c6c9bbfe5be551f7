package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/ctl"
)

func (r *root) exposeCmd() *cobra.Command {
	var o ctl.ExposeOptions
	cmd := &cobra.Command{
		Use:   "expose deployment/NAME --port=PORT [--target-port=PORT|NAME] [--type=ClusterIP|NodePort|LoadBalancer]",
		Short: "Expose a deployment's pods as a Service",
		Long: "Creates a Service with the deployment's selector. ClusterIP services get a virtual IP\n" +
			"from the service CIDR, load-balanced on every node; NodePort services are also answered\n" +
			"on every node's address at the node port; LoadBalancer services also on the service port.",
		Example: "  flotilla expose deployment/web --port=80 --target-port=8080 --type=NodePort",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(func(ctx context.Context, e *ctl.Env) error { return ctl.Expose(ctx, e, args, o) })(cmd, args)
		},
	}
	f := cmd.Flags()
	f.Int32Var(&o.Port, "port", 0, "the service's port")
	f.StringVar(&o.TargetPort, "target-port", "", "the container port number or name the service sends to (default --port)")
	f.StringVar(&o.Type, "type", "", "ClusterIP (default), NodePort or LoadBalancer")
	f.StringVar(&o.Name, "name", "", "the service's name (default the deployment's)")
	f.StringVar(&o.Protocol, "protocol", "TCP", "TCP or UDP")
	f.Int32Var(&o.NodePort, "node-port", 0, "a specific node port (30000-32767; default allocated)")
	return cmd
}
