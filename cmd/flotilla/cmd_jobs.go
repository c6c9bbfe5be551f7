package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/ctl"
)

// splitDash separates NAME from the module's arguments after "--".
func splitDash(cmd *cobra.Command, args []string) (string, []string, error) {
	names, rest := args, []string(nil)
	if at := cmd.ArgsLenAtDash(); at >= 0 {
		names, rest = args[:at], args[at:]
	}
	if len(names) != 1 {
		return "", nil, errors.New("exactly one NAME is required")
	}
	return names[0], rest, nil
}

// createJobCmds are create's job and cronjob subcommands.
func (r *root) createJobCmds() []*cobra.Command {
	var j ctl.JobOptions
	job := &cobra.Command{
		Use:   "job NAME --image=MODULE [-- ARG...] | job NAME --from=cronjob/NAME",
		Short: "Create a job running a wasm module to completion",
		Example: `  flotilla create job primes --image=batch:v1 -- 5000
  flotilla create job nightly-manual --from=cronjob/nightly`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, rest, err := splitDash(cmd, args)
			if err != nil {
				return err
			}
			j.Name, j.Args = name, rest
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.CreateJob(ctx, e, j)
			})(cmd, args)
		},
	}
	job.Flags().StringVar(&j.Image, "image", "", "module reference NAME:TAG or NAME@sha256:HEX")
	job.Flags().StringVar(&j.From, "from", "", "make the job from a cron job's template: cronjob/NAME")

	var c ctl.CronJobOptions
	cronjob := &cobra.Command{
		Use:     "cronjob NAME --image=MODULE --schedule=CRON [--restart=OnFailure|Never] [-- ARG...]",
		Aliases: []string{"cj"},
		Short:   "Create a cron job running a wasm module on a schedule",
		Example: `  flotilla create cronjob tick --image=batch:v1 --schedule="*/1 * * * *" -- 100
  flotilla create cronjob fast --image=batch:v1 --schedule="*/5 * * * * *"   # seconds field: Flotilla extension`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, rest, err := splitDash(cmd, args)
			if err != nil {
				return err
			}
			c.Name, c.Args = name, rest
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.CreateCronJob(ctx, e, c)
			})(cmd, args)
		},
	}
	cronjob.Flags().StringVar(&c.Image, "image", "", "module reference NAME:TAG or NAME@sha256:HEX")
	cronjob.Flags().StringVar(&c.Schedule, "schedule", "", "cron schedule, e.g. \"*/1 * * * *\"")
	cronjob.Flags().StringVar(&c.Restart, "restart", "", "restart policy of the job's pods: OnFailure (default) or Never")
	return []*cobra.Command{job, cronjob}
}
