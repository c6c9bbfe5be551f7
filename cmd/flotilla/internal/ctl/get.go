package ctl

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/printers"
)

// GetOptions are get's flags.
type GetOptions struct {
	Output        string
	Selector      string
	AllNamespaces bool
	ShowLabels    bool
	Watch         bool
}

// Get prints objects as a table, YAML, JSON or names.
func Get(ctx context.Context, e *Env, args []string, o GetOptions) error {
	if err := printers.ValidFormat(o.Output); err != nil {
		return err
	}
	if len(args) == 1 && args[0] == "all" && !o.Watch {
		return getAll(ctx, e, o)
	}
	// "get deploy,rs" prints one listing per type, as kubectl does.
	if len(args) == 1 && strings.Contains(args[0], ",") && !strings.Contains(args[0], "/") && !o.Watch {
		for i, t := range strings.Split(args[0], ",") {
			if i > 0 && (o.Output == printers.FormatTable || o.Output == printers.FormatWide) {
				fmt.Fprintln(e.Out)
			}
			if err := Get(ctx, e, []string{t}, o); err != nil {
				return err
			}
		}
		return nil
	}
	ki, refs, err := ParseRefs(args)
	if err != nil {
		return err
	}
	if o.Selector != "" {
		if _, err := api.ParseSelector(o.Selector); err != nil {
			return err
		}
	}
	popts := printers.Options{
		Wide:          o.Output == printers.FormatWide,
		ShowLabels:    o.ShowLabels,
		AllNamespaces: o.AllNamespaces && ki.Namespaced,
		Now:           e.now(),
	}
	if o.Watch {
		if len(refs) > 1 {
			return errors.New("watch is only supported on individual resources and resource collections")
		}
		return watch(ctx, e, ki, refs, o, popts)
	}
	var objs []api.Object
	var errs []error
	if len(refs) == 0 {
		ns := e.namespaceFor(ki)
		if o.AllNamespaces {
			ns = ""
		}
		objs, err = e.Client.List(ctx, ki.Kind, ns, o.Selector)
		if err != nil {
			return fmt.Errorf("list %s: %w", ki.Plural, err)
		}
	} else {
		for _, r := range refs {
			obj, err := e.Client.Get(ctx, r.Kind.Kind, e.namespaceFor(r.Kind), r.Name)
			if err != nil {
				errs = append(errs, notFound(err, r.Kind, r.Name))
				continue
			}
			objs = append(objs, obj)
		}
	}
	if err := printObjects(e, ki, objs, len(refs) == 0, o, popts); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func printObjects(e *Env, ki *api.KindInfo, objs []api.Object, isList bool, o GetOptions, popts printers.Options) error {
	switch o.Output {
	case printers.FormatYAML, printers.FormatJSON, printers.FormatName:
		if len(objs) == 0 && o.Output == printers.FormatName {
			return nil
		}
		if len(objs) == 0 && !isList {
			return nil
		}
		return printers.PrintObjects(e.Out, o.Output, objs, isList)
	}
	if len(objs) == 0 {
		if isList {
			noResources(e, ki, o.AllNamespaces)
		}
		return nil
	}
	return mixedTable(e, objs, popts)
}

// mixedTable prints one table per kind, as kubectl does for TYPE/NAME
// arguments of several kinds.
func mixedTable(e *Env, objs []api.Object, popts printers.Options) error {
	var order []string
	byKind := map[string][]api.Object{}
	for _, obj := range objs {
		ki, err := api.KindOf(obj)
		if err != nil {
			return err
		}
		if _, ok := byKind[ki.Kind]; !ok {
			order = append(order, ki.Kind)
		}
		byKind[ki.Kind] = append(byKind[ki.Kind], obj)
	}
	for i, k := range order {
		if i > 0 {
			fmt.Fprintln(e.Out)
		}
		if err := printers.BuildTable(k, byKind[k], popts).Write(e.Out); err != nil {
			return err
		}
	}
	return nil
}

func noResources(e *Env, ki *api.KindInfo, all bool) {
	if ki.Namespaced && !all {
		fmt.Fprintf(e.ErrOut, "No resources found in %s namespace.\n", e.Namespace)
		return
	}
	fmt.Fprintln(e.ErrOut, "No resources found")
}

// watch prints the current objects, then one row per change until ctx
// ends.
func watch(ctx context.Context, e *Env, ki *api.KindInfo, refs []Ref, o GetOptions, popts printers.Options) error {
	ns := e.namespaceFor(ki)
	if o.AllNamespaces {
		ns = ""
	}
	events, err := e.Client.Watch(ctx, ki.Kind, ns, o.Selector)
	if err != nil {
		return fmt.Errorf("watch %s: %w", ki.Plural, err)
	}
	match := func(obj api.Object) bool {
		return obj != nil && (len(refs) == 0 || obj.GetMeta().Name == refs[0].Name)
	}
	var initial []api.Object
	synced := false
	var table printers.Table
	for ev := range events {
		if !synced {
			if ev.Type != "SYNCED" {
				if match(ev.Object) {
					initial = append(initial, ev.Object)
				}
				continue
			}
			synced = true
			if o.Output == printers.FormatTable || o.Output == printers.FormatWide {
				table = printers.BuildTable(ki.Kind, initial, popts)
				if len(initial) == 0 {
					noResources(e, ki, o.AllNamespaces)
				} else if err := table.Write(e.Out); err != nil {
					return err
				}
			} else if err := printEach(e, o.Output, initial); err != nil {
				return err
			}
			continue
		}
		if !match(ev.Object) {
			continue
		}
		if p, ok := ev.Object.(*api.Pod); ok && ev.Type == "DELETED" {
			// The object is gone; show it going, not as it last ran.
			gone := *p
			gone.Status.Phase, gone.Status.Reason, gone.Status.ContainerStatuses = "Terminating", "", nil
			ev.Object = &gone
		}
		if o.Output == printers.FormatTable || o.Output == printers.FormatWide {
			popts.Now = e.now()
			if _, err := fmt.Fprint(e.Out, printers.RowLine(table, printers.Row(ev.Object, popts))); err != nil {
				return err
			}
			continue
		}
		if err := printEach(e, o.Output, []api.Object{ev.Object}); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("watch ended: the server closed the stream")
}

func printEach(e *Env, format string, objs []api.Object) error {
	for _, obj := range objs {
		if err := printers.PrintObjects(e.Out, format, []api.Object{obj}, false); err != nil {
			return err
		}
		if format == printers.FormatYAML {
			fmt.Fprintln(e.Out, "---")
		}
	}
	return nil
}

// Describe prints each named object (or every object of the kind) in
// kubectl describe's format.
func Describe(ctx context.Context, e *Env, args []string, selector string) error {
	ki, refs, err := ParseRefs(args)
	if err != nil {
		return err
	}
	var objs []api.Object
	if len(refs) == 0 {
		objs, err = e.Client.List(ctx, ki.Kind, e.namespaceFor(ki), selector)
		if err != nil {
			return fmt.Errorf("list %s: %w", ki.Plural, err)
		}
		if len(objs) == 0 {
			noResources(e, ki, false)
			return nil
		}
	}
	for _, r := range refs {
		obj, err := e.Client.Get(ctx, r.Kind.Kind, e.namespaceFor(r.Kind), r.Name)
		if err != nil {
			return notFound(err, r.Kind, r.Name)
		}
		objs = append(objs, obj)
	}
	for i, obj := range objs {
		if i > 0 {
			fmt.Fprintln(e.Out)
		}
		var pods []*api.Pod
		if n, ok := obj.(*api.Node); ok {
			if pods, err = podsOnNode(ctx, e, n.Name); err != nil {
				return err
			}
		}
		evs, err := eventsFor(ctx, e, obj)
		if err != nil {
			return err
		}
		if svc, ok := obj.(*api.Service); ok {
			if err := describeService(ctx, e, svc, evs); err != nil {
				return err
			}
			continue
		}
		if err := printers.Describe(e.Out, obj, pods, evs, e.now()); err != nil {
			return err
		}
	}
	return nil
}

// eventsFor lists the events about obj, oldest first, as describe shows them.
func eventsFor(ctx context.Context, e *Env, obj api.Object) ([]*api.Event, error) {
	m := obj.GetMeta()
	ns := m.Namespace
	if ns == "" {
		ns = api.DefaultNamespace
	}
	all, err := e.Client.List(ctx, "Event", ns, "")
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	var out []*api.Event
	for _, o := range all {
		ev := o.(*api.Event)
		if ev.InvolvedObject.UID == m.UID || (ev.InvolvedObject.UID == "" && ev.InvolvedObject.Name == m.Name) {
			out = append(out, ev)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastTimestamp.Before(out[j].LastTimestamp.Time) })
	return out, nil
}

func podsOnNode(ctx context.Context, e *Env, node string) ([]*api.Pod, error) {
	all, err := e.Client.List(ctx, "Pod", "", "")
	if err != nil {
		return nil, fmt.Errorf("list pods on node %s: %w", node, err)
	}
	var out []*api.Pod
	for _, o := range all {
		if p, ok := o.(*api.Pod); ok && p.Spec.NodeName == node {
			out = append(out, p)
		}
	}
	return out, nil
}

// allKinds are what "get all" lists, in kubectl's order.
var allKinds = []string{"pods", "services", "daemonsets", "deployments", "replicasets", "statefulsets", "jobs", "cronjobs"}

// getAll prints every non-empty listing of allKinds.
func getAll(ctx context.Context, e *Env, o GetOptions) error {
	printed := 0
	for _, k := range allKinds {
		ki, err := api.LookupKind(k)
		if err != nil {
			return err
		}
		ns := e.namespaceFor(ki)
		if o.AllNamespaces {
			ns = ""
		}
		objs, err := e.Client.List(ctx, ki.Kind, ns, o.Selector)
		if err != nil {
			return fmt.Errorf("list %s: %w", ki.Plural, err)
		}
		if len(objs) == 0 {
			continue
		}
		if printed > 0 && (o.Output == printers.FormatTable || o.Output == printers.FormatWide) {
			fmt.Fprintln(e.Out)
		}
		printed++
		popts := printers.Options{Wide: o.Output == printers.FormatWide, ShowLabels: o.ShowLabels, AllNamespaces: o.AllNamespaces, Now: e.now()}
		if err := printObjects(e, ki, objs, true, o, popts); err != nil {
			return err
		}
	}
	if printed == 0 {
		ki, _ := api.LookupKind("pods")
		noResources(e, ki, o.AllNamespaces)
	}
	return nil
}
