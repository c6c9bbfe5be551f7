// Package ctl implements the client commands of the flotilla CLI (get,
// describe, apply, delete, scale, label, logs, module, cluster-info) on top
// of api/client; the cobra commands only parse flags and call in here.
package ctl

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
)

// Env is what every client command works with.
type Env struct {
	Client *client.Client
	Out    io.Writer
	ErrOut io.Writer
	// Namespace is the resolved -n (default "default").
	Namespace string
	// Now is the clock for AGE columns; nil means time.Now.
	Now func() time.Time
}

func (e *Env) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// namespaceFor is the namespace a request for kind uses: "" for cluster
// scoped kinds.
func (e *Env) namespaceFor(ki *api.KindInfo) string {
	if !ki.Namespaced {
		return ""
	}
	return e.Namespace
}

// Ref names one object on the command line.
type Ref struct {
	Kind *api.KindInfo
	Name string
}

// ParseRefs reads "TYPE NAME..." or "TYPE/NAME ..." arguments. A bare TYPE
// returns its kind and no refs.
func ParseRefs(args []string) (*api.KindInfo, []Ref, error) {
	if len(args) == 0 {
		return nil, nil, errors.New("you must specify the type of resource, e.g. pods, deployments, nodes")
	}
	if strings.Contains(args[0], "/") {
		var refs []Ref
		for _, a := range args {
			t, n, ok := strings.Cut(a, "/")
			if !ok || n == "" {
				return nil, nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'flotilla get resource/<resource_name>' instead of 'flotilla get resource resource/<resource_name>'): %q", a)
			}
			ki, err := api.LookupKind(t)
			if err != nil {
				return nil, nil, fmt.Errorf("the server doesn't have a resource type %q", t)
			}
			refs = append(refs, Ref{Kind: ki, Name: n})
		}
		return refs[0].Kind, refs, nil
	}
	ki, err := api.LookupKind(args[0])
	if err != nil {
		return nil, nil, fmt.Errorf("the server doesn't have a resource type %q", args[0])
	}
	var refs []Ref
	for _, n := range args[1:] {
		if strings.Contains(n, "/") {
			return nil, nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form: %q", n)
		}
		refs = append(refs, Ref{Kind: ki, Name: n})
	}
	return ki, refs, nil
}

// lower is the kind as kubectl prints it in messages: "deployment".
func lower(ki *api.KindInfo) string { return strings.ToLower(ki.Kind) }

// notFound rewrites a NotFound error kubectl's way: pods "x" not found.
func notFound(err error, ki *api.KindInfo, name string) error {
	if errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("%s %q %w", ki.Plural, name, api.ErrNotFound)
	}
	return err
}
