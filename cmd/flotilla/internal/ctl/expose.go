package ctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/printers"
)

// ExposeOptions are expose's flags.
type ExposeOptions struct {
	Port       int32
	TargetPort string // number or container port name; "" = Port
	Type       string
	Name       string // "" = the workload's name
	Protocol   string
	NodePort   int32
}

// Expose creates a Service selecting the pods of a deployment (or replica
// set, or another service's selector), as kubectl expose does.
func Expose(ctx context.Context, e *Env, args []string, o ExposeOptions) error {
	ki, refs, err := ParseRefs(args)
	if err != nil {
		return err
	}
	if len(refs) != 1 {
		return errors.New("expose needs exactly one TYPE/NAME, e.g. deployment/web")
	}
	r := refs[0]
	obj, err := e.Client.Get(ctx, ki.Kind, e.namespaceFor(ki), r.Name)
	if err != nil {
		return notFound(err, ki, r.Name)
	}
	var sel *api.LabelSelector
	switch x := obj.(type) {
	case *api.Deployment:
		sel = x.Spec.Selector
	case *api.ReplicaSet:
		sel = x.Spec.Selector
	case *api.Service:
		sel = &api.LabelSelector{MatchLabels: x.Spec.Selector}
	default:
		return fmt.Errorf("cannot expose a %s", ki.Kind)
	}
	if sel == nil || len(sel.MatchLabels) == 0 || len(sel.MatchExpressions) > 0 {
		return fmt.Errorf("%s/%s: only a selector of plain labels (matchLabels) can be exposed", lower(ki), r.Name)
	}
	if o.Port == 0 {
		return errors.New("required flag(s) \"port\" not set")
	}
	name := o.Name
	if name == "" {
		name = r.Name
	}
	tp := api.FromInt(o.Port)
	if o.TargetPort != "" {
		if n, err := strconv.Atoi(o.TargetPort); err == nil {
			tp = api.FromInt(int32(n))
		} else {
			tp = api.FromString(o.TargetPort)
		}
	}
	svc := &api.Service{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: e.Namespace, Labels: copyStrings(sel.MatchLabels)},
		Spec: api.ServiceSpec{
			Type:     o.Type,
			Selector: copyStrings(sel.MatchLabels),
			Ports:    []api.ServicePort{{Protocol: o.Protocol, Port: o.Port, TargetPort: tp, NodePort: o.NodePort}},
		},
	}
	if _, err := e.Client.Create(ctx, svc); err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "service/%s exposed\n", name)
	return nil
}

// describeService prints a service with its endpoints.
func describeService(ctx context.Context, e *Env, s *api.Service, evs []*api.Event) error {
	var slice *api.EndpointSlice
	if o, err := e.Client.Get(ctx, "EndpointSlice", s.Namespace, s.Name); err == nil {
		slice = o.(*api.EndpointSlice)
	} else if !errors.Is(err, api.ErrNotFound) {
		return err
	}
	return printers.DescribeService(e.Out, s, slice, evs, e.now())
}
