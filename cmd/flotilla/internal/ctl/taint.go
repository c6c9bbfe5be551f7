package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flotilla-edge/flotilla/api"
)

// TaintChange is a parsed taint argument list.
type TaintChange struct {
	Add []api.Taint
	// Remove holds key and effect; an empty effect removes every taint
	// with the key.
	Remove []api.Taint
}

// ParseTaintArgs reads "key=value:Effect", "key:Effect" (add) and
// "key:Effect-", "key-" (remove), as kubectl taint does.
func ParseTaintArgs(args []string) (TaintChange, error) {
	var c TaintChange
	for _, a := range args {
		spec, remove := strings.CutSuffix(a, "-")
		kv, effect, hasEffect := strings.Cut(spec, ":")
		key, value, _ := strings.Cut(kv, "=")
		if err := api.ValidLabels(map[string]string{key: value}); err != nil {
			return c, fmt.Errorf("invalid taint spec %q: %w", a, err)
		}
		if hasEffect || !remove {
			switch effect {
			case api.TaintNoSchedule, api.TaintPreferNoSchedule, api.TaintNoExecute:
			default:
				return c, fmt.Errorf("invalid taint spec %q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", a, effect)
			}
		}
		t := api.Taint{Key: key, Value: value, Effect: effect}
		if remove {
			c.Remove = append(c.Remove, t)
		} else {
			c.Add = append(c.Add, t)
		}
	}
	if len(c.Add) == 0 && len(c.Remove) == 0 {
		return c, errors.New("at least one taint update is required")
	}
	return c, nil
}

// Apply changes taints: an added taint replaces one with the same key
// and effect only with overwrite; a removal must match something.
func (c TaintChange) Apply(taints []api.Taint, overwrite bool) ([]api.Taint, error) {
	out := append([]api.Taint(nil), taints...)
	for _, r := range c.Remove {
		kept := out[:0]
		found := false
		for _, t := range out {
			if t.Key == r.Key && (r.Effect == "" || t.Effect == r.Effect) {
				found = true
				continue
			}
			kept = append(kept, t)
		}
		if !found {
			return nil, fmt.Errorf("taint %q not found", strings.TrimSuffix(r.Key+":"+r.Effect, ":"))
		}
		out = kept
	}
	for _, a := range c.Add {
		if a.Effect == api.TaintNoExecute {
			// The eviction controller counts tolerationSeconds from here.
			a.TimeAdded = api.Now()
		}
		replaced := false
		for i, t := range out {
			if t.Key != a.Key || t.Effect != a.Effect {
				continue
			}
			if t.Value != a.Value && !overwrite {
				return nil, fmt.Errorf("node already has a taint with key (%s) and effect (%s), and --overwrite is false", a.Key, a.Effect)
			}
			out[i], replaced = a, true
		}
		if !replaced {
			out = append(out, a)
		}
	}
	return out, nil
}

// Taint updates the taints of a node.
func Taint(ctx context.Context, e *Env, node string, change TaintChange, overwrite bool) error {
	ki, err := api.LookupKind("Node")
	if err != nil {
		return err
	}
	_, err = e.Client.Modify(ctx, "Node", "", node, func(obj api.Object) error {
		n := obj.(*api.Node)
		taints, err := change.Apply(n.Spec.Taints, overwrite)
		if err != nil {
			return err
		}
		n.Spec.Taints = taints
		return nil
	})
	if err != nil {
		return notFound(err, ki, node)
	}
	verb := "tainted"
	if len(change.Add) == 0 {
		verb = "untainted"
	}
	fmt.Fprintf(e.Out, "%s %s\n", nameOf(ki, node), verb)
	return nil
}

// ParseTaintCommand splits taint's arguments: nodes NAME (or node/NAME),
// then taint specs.
func ParseTaintCommand(args []string) (string, TaintChange, error) {
	n := 2
	if len(args) > 0 && strings.Contains(args[0], "/") {
		n = 1
	}
	if len(args) < n+1 {
		return "", TaintChange{}, errors.New("usage: flotilla taint nodes NAME KEY[=VALUE]:EFFECT ... | KEY[:EFFECT]- ...")
	}
	ki, refs, err := ParseRefs(args[:n])
	if err != nil {
		return "", TaintChange{}, err
	}
	if ki.Kind != "Node" || len(refs) != 1 {
		return "", TaintChange{}, errors.New("taint works on exactly one node: flotilla taint nodes NAME ...")
	}
	change, err := ParseTaintArgs(args[n:])
	return refs[0].Name, change, err
}
