package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/ctl"
)

func (r *root) setCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Change fields of existing objects",
	}
	image := &cobra.Command{
		Use:     "image deployment/NAME CONTAINER=IMAGE [CONTAINER=IMAGE...]",
		Short:   "Change container images of a deployment (starts a rollout)",
		Example: "  flotilla set image deployment/web hello=hello:v2\n  flotilla set image deployment/web '*=hello:v2'",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, images, err := ctl.ParseSetImageArgs(args)
			if err != nil {
				return err
			}
			// Recorded as the revision's change cause, like kubectl --record.
			cause := "flotilla set image " + strings.Join(args, " ")
			return r.run(func(ctx context.Context, e *ctl.Env) error {
				return ctl.SetImage(ctx, e, ref, images, cause)
			})(cmd, args)
		},
	}
	cmd.AddCommand(image)
	return cmd
}

func (r *root) rolloutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Follow, pause, resume, restart and undo deployment rollouts",
	}
	// onDeployment builds a subcommand acting on one deployment.
	onDeployment := func(use, short, example string, fn func(ctx context.Context, e *ctl.Env, ref ctl.Ref) error) *cobra.Command {
		return &cobra.Command{
			Use:     use + " deployment/NAME",
			Short:   short,
			Example: example,
			Args:    cobra.RangeArgs(1, 2),
			RunE: func(cmd *cobra.Command, args []string) error {
				ref, err := ctl.DeploymentRef(args)
				if err != nil {
					return err
				}
				return r.run(func(ctx context.Context, e *ctl.Env) error {
					return fn(ctx, e, ref)
				})(cmd, args)
			},
		}
	}

	var timeout time.Duration
	status := onDeployment("status", "Follow a rollout until it completes or fails", "  flotilla rollout status deployment/web --timeout=2m",
		func(ctx context.Context, e *ctl.Env, ref ctl.Ref) error {
			ctx, cancel := untilSignal(ctx)
			defer cancel()
			return ctl.RolloutStatus(ctx, e, ref, timeout)
		})
	status.Flags().DurationVar(&timeout, "timeout", 0, "how long to wait before giving up; 0 waits forever")

	var histRev int
	history := onDeployment("history", "List a deployment's revisions and their change causes", "  flotilla rollout history deployment/web\n  flotilla rollout history deployment/web --revision=2",
		func(ctx context.Context, e *ctl.Env, ref ctl.Ref) error {
			return ctl.RolloutHistory(ctx, e, ref, histRev)
		})
	history.Flags().IntVar(&histRev, "revision", 0, "print the pod template of this revision")

	var toRev int
	undo := onDeployment("undo", "Roll back to the previous (or a given) revision", "  flotilla rollout undo deployment/web\n  flotilla rollout undo deployment/web --to-revision=1",
		func(ctx context.Context, e *ctl.Env, ref ctl.Ref) error { return ctl.RolloutUndo(ctx, e, ref, toRev) })
	undo.Flags().IntVar(&toRev, "to-revision", 0, "revision to roll back to; 0 is the previous one")

	cmd.AddCommand(status, history, undo,
		onDeployment("pause", "Stop rolling out template changes (scaling still applies)", "  flotilla rollout pause deployment/web",
			func(ctx context.Context, e *ctl.Env, ref ctl.Ref) error { return ctl.RolloutPause(ctx, e, ref, true) }),
		onDeployment("resume", "Resume a paused deployment", "  flotilla rollout resume deployment/web",
			func(ctx context.Context, e *ctl.Env, ref ctl.Ref) error { return ctl.RolloutPause(ctx, e, ref, false) }),
		onDeployment("restart", "Replace every pod with a rolling update", "  flotilla rollout restart deployment/web",
			func(ctx context.Context, e *ctl.Env, ref ctl.Ref) error { return ctl.RolloutRestart(ctx, e, ref) }),
	)
	return cmd
}
