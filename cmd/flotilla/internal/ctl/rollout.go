package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/printers"
	"github.com/flotilla-edge/flotilla/controlplane/controllers"
)

// DeploymentRef reads the one deployment a rollout command acts on:
// deployment/NAME or deployment NAME.
func DeploymentRef(args []string) (Ref, error) {
	_, refs, err := ParseRefs(args)
	if err != nil {
		return Ref{}, err
	}
	if len(refs) != 1 {
		return Ref{}, fmt.Errorf("expected one deployment, e.g. deployment/web, got %d", len(refs))
	}
	if refs[0].Kind.Kind != "Deployment" {
		return Ref{}, fmt.Errorf("rollout: %s are not supported; only deployments roll out", refs[0].Kind.Plural)
	}
	return refs[0], nil
}

func (e *Env) deployment(ctx context.Context, ref Ref) (*api.Deployment, error) {
	obj, err := e.Client.Get(ctx, "Deployment", e.Namespace, ref.Name)
	if err != nil {
		return nil, notFound(err, ref.Kind, ref.Name)
	}
	return obj.(*api.Deployment), nil
}

// RolloutStatusMessage is kubectl's deployment status viewer: the line to
// print, whether the rollout is complete, and an error once it has failed.
func RolloutStatusMessage(d *api.Deployment) (string, bool, error) {
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...", false, nil
	}
	if c := api.FindCondition(d.Status.Conditions, controllers.DeploymentProgressing); c != nil && c.Reason == controllers.ReasonProgressDeadlineExceeded {
		return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
	}
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.UpdatedReplicas < desired:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", d.Name, s.UpdatedReplicas, desired), false, nil
	case s.Replicas > s.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", d.Name, s.Replicas-s.UpdatedReplicas), false, nil
	case s.AvailableReplicas < s.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", d.Name, s.AvailableReplicas, s.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out", d.Name), true, nil
}

// RolloutStatus follows a deployment's rollout through a watch, printing
// each new state, until it completes (nil), fails (its progress deadline
// passed) or timeout passes (0 waits forever).
func RolloutStatus(ctx context.Context, e *Env, ref Ref, timeout time.Duration) error {
	if _, err := e.deployment(ctx, ref); err != nil {
		return err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last := ""
	for {
		events, err := e.Client.Watch(ctx, "Deployment", e.Namespace, "")
		if err != nil {
			return fmt.Errorf("watch deployment %q: %w", ref.Name, err)
		}
		for ev := range events {
			d, ok := ev.Object.(*api.Deployment)
			if !ok || d.Name != ref.Name {
				continue
			}
			if ev.Type == "DELETED" {
				return fmt.Errorf("deployment %q was deleted", ref.Name)
			}
			msg, done, err := RolloutStatusMessage(d)
			if err != nil {
				return err
			}
			if msg != last {
				fmt.Fprintln(e.Out, msg)
				last = msg
			}
			if done {
				return nil
			}
		}
		// The watch ended: a timeout, an interrupt, or a lost server (then
		// watch again).
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("timed out waiting for the condition: deployment %q rollout did not finish", ref.Name)
			}
			return ctx.Err()
		}
		time.Sleep(time.Second)
	}
}

// revisions returns the deployment's ReplicaSets, oldest revision first.
func (e *Env) revisions(ctx context.Context, d *api.Deployment) ([]*api.ReplicaSet, error) {
	objs, err := e.Client.List(ctx, "ReplicaSet", d.Namespace, "")
	if err != nil {
		return nil, fmt.Errorf("list replicasets of deployment %q: %w", d.Name, err)
	}
	var out []*api.ReplicaSet
	for _, o := range objs {
		if rs := o.(*api.ReplicaSet); api.IsControlledBy(&rs.ObjectMeta, d.UID) {
			out = append(out, rs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return revision(out[i]) < revision(out[j]) })
	return out, nil
}

func revision(rs *api.ReplicaSet) int {
	n, _ := strconv.Atoi(rs.Annotations[controllers.RevisionAnnotation])
	return n
}

// RolloutHistory prints the revisions of a deployment with their change
// causes, or one revision's pod template.
func RolloutHistory(ctx context.Context, e *Env, ref Ref, rev int) error {
	d, err := e.deployment(ctx, ref)
	if err != nil {
		return err
	}
	rss, err := e.revisions(ctx, d)
	if err != nil {
		return err
	}
	name := nameOf(ref.Kind, ref.Name)
	if rev > 0 {
		for _, rs := range rss {
			if revision(rs) == rev {
				fmt.Fprintf(e.Out, "%s with revision #%d\n", name, rev)
				tpl := controllers.TemplateWithoutHash(rs.Spec.Template)
				tpl.Labels = rs.Spec.Template.Labels // kubectl shows the hash too
				return printers.DescribeTemplate(e.Out, tpl)
			}
		}
		return fmt.Errorf("unable to find the specified revision %d", rev)
	}
	fmt.Fprintln(e.Out, name)
	t := printers.Table{Header: []string{"REVISION", "CHANGE-CAUSE"}}
	for _, rs := range rss {
		cause := rs.Annotations[api.ChangeCauseAnnotation]
		if cause == "" {
			cause = "<none>"
		}
		t.Rows = append(t.Rows, []string{strconv.Itoa(revision(rs)), cause})
	}
	return t.Write(e.Out)
}

// RolloutUndo puts an older revision's pod template (by default the
// previous revision's) back into the deployment; the controller then rolls
// out to that revision's ReplicaSet, which becomes the latest revision.
func RolloutUndo(ctx context.Context, e *Env, ref Ref, toRevision int) error {
	d, err := e.deployment(ctx, ref)
	if err != nil {
		return err
	}
	if d.Spec.Paused {
		return fmt.Errorf("you cannot rollback a paused deployment; resume it first with 'flotilla rollout resume deployment/%s' and try again", d.Name)
	}
	rss, err := e.revisions(ctx, d)
	if err != nil {
		return err
	}
	var target *api.ReplicaSet
	switch {
	case toRevision > 0:
		for _, rs := range rss {
			if revision(rs) == toRevision {
				target = rs
			}
		}
		if target == nil {
			return fmt.Errorf("unable to find specified revision %d in history", toRevision)
		}
	case len(rss) < 2:
		return errors.New("no rollout history found for deployment " + strconv.Quote(d.Name))
	default:
		target = rss[len(rss)-2]
	}
	tpl := controllers.TemplateWithoutHash(target.Spec.Template)
	name := nameOf(ref.Kind, ref.Name)
	if sameTemplate(tpl, d.Spec.Template) {
		fmt.Fprintf(e.Out, "%s skipped rollback (current template already matches revision %d)\n", name, revision(target))
		return nil
	}
	_, err = e.Client.Modify(ctx, "Deployment", e.Namespace, ref.Name, func(obj api.Object) error {
		x := obj.(*api.Deployment)
		if x.UID != d.UID {
			return fmt.Errorf("deployment %q was replaced while rolling back", ref.Name)
		}
		x.Spec.Template = tpl
		// The revision's change cause comes back with it, as in Kubernetes.
		if cause := target.Annotations[api.ChangeCauseAnnotation]; cause != "" {
			if x.Annotations == nil {
				x.Annotations = map[string]string{}
			}
			x.Annotations[api.ChangeCauseAnnotation] = cause
		} else {
			delete(x.Annotations, api.ChangeCauseAnnotation)
		}
		return nil
	})
	if err != nil {
		return notFound(err, ref.Kind, ref.Name)
	}
	fmt.Fprintf(e.Out, "deployment.apps/%s rolled back\n", ref.Name)
	return nil
}

func sameTemplate(a, b api.PodTemplateSpec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// RolloutPause stops (paused=true) or resumes a deployment's rollouts.
func RolloutPause(ctx context.Context, e *Env, ref Ref, paused bool) error {
	verb := map[bool]string{true: "paused", false: "resumed"}[paused]
	already := errors.New("already " + verb)
	_, err := e.Client.Modify(ctx, "Deployment", e.Namespace, ref.Name, func(obj api.Object) error {
		x := obj.(*api.Deployment)
		if x.Spec.Paused == paused {
			return already
		}
		x.Spec.Paused = paused
		return nil
	})
	if errors.Is(err, already) {
		if paused {
			return fmt.Errorf("%s is already paused", nameOf(ref.Kind, ref.Name))
		}
		return fmt.Errorf("%s is not paused", nameOf(ref.Kind, ref.Name))
	}
	if err != nil {
		return notFound(err, ref.Kind, ref.Name)
	}
	fmt.Fprintf(e.Out, "%s %s\n", nameOf(ref.Kind, ref.Name), verb)
	return nil
}

// RolloutRestart replaces every pod of a deployment by a rolling update:
// stamping the pod template with the time makes it a new template.
func RolloutRestart(ctx context.Context, e *Env, ref Ref) error {
	_, err := e.Client.Modify(ctx, "Deployment", e.Namespace, ref.Name, func(obj api.Object) error {
		x := obj.(*api.Deployment)
		if x.Spec.Paused {
			return fmt.Errorf("can't restart paused deployment %q (run 'flotilla rollout resume' first)", x.Name)
		}
		if x.Spec.Template.Annotations == nil {
			x.Spec.Template.Annotations = map[string]string{}
		}
		x.Spec.Template.Annotations[api.RestartedAtAnnotation] = e.now().UTC().Format(time.RFC3339)
		return nil
	})
	if err != nil {
		return notFound(err, ref.Kind, ref.Name)
	}
	fmt.Fprintf(e.Out, "%s restarted\n", nameOf(ref.Kind, ref.Name))
	return nil
}
