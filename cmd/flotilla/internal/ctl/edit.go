package ctl

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/flotilla-edge/flotilla/api"
)

// DeleteOptions are delete's flags.
type DeleteOptions struct {
	Files          []string
	Selector       string
	All            bool
	IgnoreNotFound bool
}

// Delete removes named objects, the objects of manifests, or every object
// of a kind matching a selector (or --all).
func Delete(ctx context.Context, e *Env, args []string, o DeleteOptions) error {
	var refs []Ref
	switch {
	case len(o.Files) > 0:
		if len(args) > 0 {
			return errors.New("there is no need to specify a resource type as a separate argument when passing -f")
		}
		objs, err := ReadManifests(o.Files, nil)
		if err != nil {
			return err
		}
		for _, obj := range objs {
			ki, _ := api.KindOf(obj)
			m := obj.GetMeta()
			ns := m.Namespace
			if ns == "" {
				ns = e.Namespace
			}
			if err := deleteOne(ctx, e, ki, ns, m.Name, o.IgnoreNotFound); err != nil {
				return err
			}
		}
		return nil
	default:
		ki, named, err := ParseRefs(args)
		if err != nil {
			return err
		}
		refs = named
		if len(refs) == 0 {
			if o.Selector == "" && !o.All {
				return fmt.Errorf("resource(s) were provided, but no name was specified: give NAME, -l SELECTOR or --all")
			}
			objs, err := e.Client.List(ctx, ki.Kind, e.namespaceFor(ki), o.Selector)
			if err != nil {
				return fmt.Errorf("list %s: %w", ki.Plural, err)
			}
			if len(objs) == 0 {
				noResources(e, ki, false)
				return nil
			}
			for _, obj := range objs {
				refs = append(refs, Ref{Kind: ki, Name: obj.GetMeta().Name})
			}
		} else if o.Selector != "" || o.All {
			return errors.New("name cannot be provided when a selector or --all is specified")
		}
	}
	var errs []error
	for _, r := range refs {
		if err := deleteOne(ctx, e, r.Kind, e.namespaceFor(r.Kind), r.Name, o.IgnoreNotFound); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func deleteOne(ctx context.Context, e *Env, ki *api.KindInfo, ns, name string, ignoreNotFound bool) error {
	if !ki.Namespaced {
		ns = ""
	}
	if _, err := e.Client.Delete(ctx, ki.Kind, ns, name); err != nil {
		if ignoreNotFound && errors.Is(err, api.ErrNotFound) {
			return nil
		}
		return notFound(err, ki, name)
	}
	fmt.Fprintf(e.Out, "%s %q deleted\n", lower(ki), name)
	return nil
}

// Scale sets the replicas of deployments or replica sets.
func Scale(ctx context.Context, e *Env, args []string, replicas int32) error {
	if replicas < 0 {
		return fmt.Errorf("--replicas=%d: the number of replicas must not be negative", replicas)
	}
	_, refs, err := ParseRefs(args)
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		return errors.New("resource(s) were provided, but no name was specified")
	}
	for _, r := range refs {
		if r.Kind.Kind != "Deployment" && r.Kind.Kind != "ReplicaSet" && r.Kind.Kind != "StatefulSet" {
			return fmt.Errorf("%s cannot be scaled: only deployments, replicasets and statefulsets have replicas", r.Kind.Plural)
		}
		_, err := e.Client.Modify(ctx, r.Kind.Kind, e.Namespace, r.Name, func(obj api.Object) error {
			switch x := obj.(type) {
			case *api.Deployment:
				x.Spec.Replicas = api.Int32(replicas)
			case *api.ReplicaSet:
				x.Spec.Replicas = api.Int32(replicas)
			case *api.StatefulSet:
				x.Spec.Replicas = api.Int32(replicas)
			}
			return nil
		})
		if err != nil {
			return notFound(err, r.Kind, r.Name)
		}
		fmt.Fprintf(e.Out, "%s scaled\n", nameOf(r.Kind, r.Name))
	}
	return nil
}

// LabelChange is a parsed label argument list: keys to set and to remove.
type LabelChange struct {
	Set    map[string]string
	Remove []string
}

// ParseLabelArgs reads "k=v" and "k-" arguments, checking keys and values.
func ParseLabelArgs(args []string) (LabelChange, error) {
	c := LabelChange{Set: map[string]string{}}
	for _, a := range args {
		if k, ok := strings.CutSuffix(a, "-"); ok && !strings.Contains(a, "=") {
			if err := api.ValidLabels(map[string]string{k: ""}); err != nil {
				return c, fmt.Errorf("invalid label removal %q: %w", a, err)
			}
			c.Remove = append(c.Remove, k)
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return c, fmt.Errorf("invalid label spec %q: want KEY=VALUE or KEY-", a)
		}
		if err := api.ValidLabels(map[string]string{k: v}); err != nil {
			return c, fmt.Errorf("invalid label spec %q: %w", a, err)
		}
		if _, dup := c.Set[k]; dup {
			return c, fmt.Errorf("invalid label spec: %q is given more than once", k)
		}
		c.Set[k] = v
	}
	for _, k := range c.Remove {
		if _, ok := c.Set[k]; ok {
			return c, fmt.Errorf("can not both modify and remove label %q in the same command", k)
		}
	}
	if len(c.Set) == 0 && len(c.Remove) == 0 {
		return c, errors.New("at least one label update is required")
	}
	return c, nil
}

// Apply changes labels in place; without overwrite, giving an existing
// key a new value is an error, as in kubectl.
func (c LabelChange) Apply(labels map[string]string, overwrite bool) (map[string]string, error) {
	if labels == nil {
		labels = map[string]string{}
	}
	keys := make([]string, 0, len(c.Set))
	for k := range c.Set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if old, ok := labels[k]; ok && old != c.Set[k] && !overwrite {
			return nil, fmt.Errorf("'%s' already has a value (%s), and --overwrite is false", k, old)
		}
		labels[k] = c.Set[k]
	}
	for _, k := range c.Remove {
		delete(labels, k)
	}
	return labels, nil
}

// ParseLabelCommand splits label's arguments: TYPE NAME or TYPE/NAME,
// then k=v and k- arguments.
func ParseLabelCommand(args []string) (Ref, LabelChange, error) {
	if len(args) < 2 {
		return Ref{}, LabelChange{}, errors.New("usage: flotilla label TYPE NAME KEY=VALUE ... | KEY- ...")
	}
	n := 2
	if strings.Contains(args[0], "/") {
		n = 1
	}
	_, refs, err := ParseRefs(args[:n])
	if err != nil {
		return Ref{}, LabelChange{}, err
	}
	if len(refs) != 1 {
		return Ref{}, LabelChange{}, errors.New("label needs exactly one TYPE NAME or TYPE/NAME")
	}
	change, err := ParseLabelArgs(args[n:])
	return refs[0], change, err
}

// Label updates the labels of one object.
func Label(ctx context.Context, e *Env, ref Ref, change LabelChange, overwrite bool) error {
	var before, after string
	_, err := e.Client.Modify(ctx, ref.Kind.Kind, e.namespaceFor(ref.Kind), ref.Name, func(obj api.Object) error {
		m := obj.GetMeta()
		before = api.FormatLabels(m.Labels)
		labels, err := change.Apply(m.Labels, overwrite)
		if err != nil {
			return err
		}
		m.Labels = labels
		after = api.FormatLabels(labels)
		return nil
	})
	if err != nil {
		return notFound(err, ref.Kind, ref.Name)
	}
	verb := "labeled"
	switch {
	case before == after:
		verb = "not labeled"
	case len(change.Set) == 0:
		verb = "unlabeled"
	}
	fmt.Fprintf(e.Out, "%s %s\n", nameOf(ref.Kind, ref.Name), verb)
	return nil
}

// DeploymentOptions are create deployment's flags.
type DeploymentOptions struct {
	Name     string
	Image    string
	Replicas int32
	Port     int32
}

// CreateDeployment creates a deployment running one module, labelled and
// selected by app=NAME.
func CreateDeployment(ctx context.Context, e *Env, o DeploymentOptions) error {
	if o.Image == "" {
		return errors.New("required flag(s) \"image\" not set")
	}
	if err := api.ValidModuleRef(o.Image); err != nil {
		return fmt.Errorf("--image: %w", err)
	}
	labels := map[string]string{"app": o.Name}
	c := api.Container{Name: ContainerName(o.Image), Image: o.Image}
	if o.Port > 0 {
		// A declared port makes the agent run the module as an HTTP module.
		c.Ports = []api.ContainerPort{{ContainerPort: o.Port, Protocol: "TCP"}}
	}
	d := &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: o.Name, Namespace: e.Namespace, Labels: labels},
		Spec: api.DeploymentSpec{
			Replicas: api.Int32(o.Replicas),
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": o.Name}},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": o.Name}},
				Spec:       api.PodSpec{Containers: []api.Container{c}},
			},
		},
	}
	return Create(ctx, e, []api.Object{d})
}

// CreateNamespace creates a namespace.
func CreateNamespace(ctx context.Context, e *Env, name string) error {
	return Create(ctx, e, []api.Object{&api.Namespace{ObjectMeta: api.ObjectMeta{Name: name}}})
}

var notLabelChar = regexp.MustCompile(`[^a-z0-9-]+`)

// ContainerName derives a container name from a module reference: the
// name part, made a DNS label ("Hello_World:v1" -> "hello-world").
func ContainerName(image string) string {
	name := image
	if i := strings.IndexAny(name, ":@"); i >= 0 {
		name = name[:i]
	}
	name = notLabelChar.ReplaceAllString(strings.ToLower(name), "-")
	if len(name) > 63 {
		name = name[:63]
	}
	name = strings.Trim(name, "-")
	if name == "" {
		return "main"
	}
	return name
}
