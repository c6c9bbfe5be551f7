package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flotilla-edge/flotilla/api"
)

// ParseSetImageArgs splits `set image` arguments into the object
// (TYPE/NAME or TYPE NAME) and CONTAINER=IMAGE pairs; container "*" means
// every container.
func ParseSetImageArgs(args []string) (Ref, map[string]string, error) {
	var refArgs []string
	images := map[string]string{}
	for _, a := range args {
		c, img, ok := strings.Cut(a, "=")
		if !ok {
			refArgs = append(refArgs, a)
			continue
		}
		if c == "" || img == "" {
			return Ref{}, nil, fmt.Errorf("%q: want CONTAINER=IMAGE", a)
		}
		images[c] = img
	}
	if len(images) == 0 {
		return Ref{}, nil, errors.New("at least one image update is required: CONTAINER=IMAGE")
	}
	_, refs, err := ParseRefs(refArgs)
	if err != nil {
		return Ref{}, nil, err
	}
	if len(refs) != 1 {
		return Ref{}, nil, fmt.Errorf("expected one object, e.g. deployment/web, got %d", len(refs))
	}
	return refs[0], images, nil
}

// setImages changes the images of tpl's containers and reports whether
// anything changed; a container it does not have is an error.
func setImages(spec *api.PodSpec, images map[string]string) (bool, error) {
	changed := false
	for name, img := range images {
		found := false
		for i := range spec.Containers {
			c := &spec.Containers[i]
			if name != "*" && c.Name != name {
				continue
			}
			found = true
			if c.Image != img {
				c.Image, changed = img, true
			}
		}
		if !found {
			return false, fmt.Errorf("unable to find container named %q", name)
		}
	}
	return changed, nil
}

// SetImage changes container images of a deployment or replica set. The
// command line is recorded as the change cause (kubectl's --record), so
// `rollout history` says why each revision exists.
func SetImage(ctx context.Context, e *Env, ref Ref, images map[string]string, cause string) error {
	if ref.Kind.Kind != "Deployment" && ref.Kind.Kind != "ReplicaSet" {
		return fmt.Errorf("set image: %s are not supported; use a deployment or a replicaset", ref.Kind.Plural)
	}
	errUnchanged := errors.New("unchanged")
	_, err := e.Client.Modify(ctx, ref.Kind.Kind, e.Namespace, ref.Name, func(obj api.Object) error {
		var spec *api.PodSpec
		switch x := obj.(type) {
		case *api.Deployment:
			spec = &x.Spec.Template.Spec
		case *api.ReplicaSet:
			spec = &x.Spec.Template.Spec
		}
		changed, err := setImages(spec, images)
		if err != nil {
			return err
		}
		if !changed {
			return errUnchanged
		}
		m := obj.GetMeta()
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[api.ChangeCauseAnnotation] = cause
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return notFound(err, ref.Kind, ref.Name)
	}
	fmt.Fprintf(e.Out, "%s image updated\n", nameOf(ref.Kind, ref.Name))
	return nil
}
