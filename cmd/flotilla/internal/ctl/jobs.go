package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flotilla-edge/flotilla/api"
)

// ManualInstantiationAnnotation marks a job made from a cron job by hand
// (create job --from=cronjob/NAME), as kubectl does.
const ManualInstantiationAnnotation = "cronjob.kubernetes.io/instantiate"

// JobOptions are create job's flags.
type JobOptions struct {
	Name  string
	Image string
	// From is cronjob/NAME: copy that cron job's job template.
	From string
	Args []string
}

// CreateJob creates a job running one module to completion, or a job
// from a cron job's template.
func CreateJob(ctx context.Context, e *Env, o JobOptions) error {
	switch {
	case o.From != "" && o.Image != "":
		return errors.New("either --image or --from must be specified, not both")
	case o.From != "":
		job, err := jobFromCronJob(ctx, e, o)
		if err != nil {
			return err
		}
		return Create(ctx, e, []api.Object{job})
	case o.Image == "":
		return errors.New("either --image or --from must be specified")
	}
	c, err := containerFor(o.Image, o.Args)
	if err != nil {
		return err
	}
	job := &api.Job{
		ObjectMeta: api.ObjectMeta{Name: o.Name, Namespace: e.Namespace},
		Spec: api.JobSpec{Template: api.PodTemplateSpec{Spec: api.PodSpec{
			RestartPolicy: api.RestartNever,
			Containers:    []api.Container{c},
		}}},
	}
	return Create(ctx, e, []api.Object{job})
}

func jobFromCronJob(ctx context.Context, e *Env, o JobOptions) (*api.Job, error) {
	kind, name, ok := strings.Cut(o.From, "/")
	ki, err := api.LookupKind(kind)
	if !ok || name == "" || err != nil || ki.Kind != "CronJob" {
		return nil, fmt.Errorf("--from=%s: want cronjob/NAME", o.From)
	}
	if len(o.Args) > 0 {
		return nil, errors.New("cannot specify arguments with --from")
	}
	obj, err := e.Client.Get(ctx, ki.Kind, e.Namespace, name)
	if err != nil {
		return nil, notFound(err, ki, name)
	}
	cj := obj.(*api.CronJob)
	tpl := cj.Spec.JobTemplate
	ann := copyStrings(tpl.Annotations)
	ann[ManualInstantiationAnnotation] = "manual"
	return &api.Job{
		ObjectMeta: api.ObjectMeta{
			Name: o.Name, Namespace: e.Namespace, Labels: tpl.Labels, Annotations: ann,
			// Owned like a scheduled run, so deleting the cron job takes it
			// along (kubectl does the same).
			OwnerReferences: []api.OwnerReference{{APIVersion: api.Version, Kind: "CronJob", Name: cj.Name, UID: cj.UID, Controller: true}},
		},
		Spec: tpl.Spec,
	}, nil
}

// CronJobOptions are create cronjob's flags.
type CronJobOptions struct {
	Name     string
	Image    string
	Schedule string
	Restart  string
	Args     []string
}

// CreateCronJob creates a cron job running one module on a schedule.
func CreateCronJob(ctx context.Context, e *Env, o CronJobOptions) error {
	if o.Image == "" {
		return errors.New(`required flag(s) "image" not set`)
	}
	if o.Schedule == "" {
		return errors.New(`required flag(s) "schedule" not set`)
	}
	c, err := containerFor(o.Image, o.Args)
	if err != nil {
		return err
	}
	restart := o.Restart
	if restart == "" {
		restart = api.RestartOnFailure // kubectl create cronjob's default
	}
	cj := &api.CronJob{
		ObjectMeta: api.ObjectMeta{Name: o.Name, Namespace: e.Namespace},
		Spec: api.CronJobSpec{
			Schedule: o.Schedule,
			JobTemplate: api.JobTemplateSpec{
				ObjectMeta: api.ObjectMeta{Name: o.Name},
				Spec: api.JobSpec{Template: api.PodTemplateSpec{Spec: api.PodSpec{
					RestartPolicy: restart,
					Containers:    []api.Container{c},
				}}},
			},
		},
	}
	return Create(ctx, e, []api.Object{cj})
}

func containerFor(image string, args []string) (api.Container, error) {
	if err := api.ValidModuleRef(image); err != nil {
		return api.Container{}, fmt.Errorf("--image: %w", err)
	}
	return api.Container{Name: ContainerName(image), Image: image, Args: args}, nil
}

func copyStrings(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
