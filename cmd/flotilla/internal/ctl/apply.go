package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flotilla-edge/flotilla/api"
)

// ReadManifests decodes every document of every file (a directory means
// its *.yaml, *.yml and *.json files, sorted; "-" means stdin) strictly,
// and only then returns: one bad document fails the whole set before
// anything is sent, so a typo changes nothing.
func ReadManifests(paths []string, stdin io.Reader) ([]api.Object, error) {
	if len(paths) == 0 {
		return nil, errors.New("must specify one of -f and -k")
	}
	var files []string
	for _, p := range paths {
		if p == "-" {
			files = append(files, p)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("the path %q does not exist", p)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		var in []string
		for _, en := range entries {
			switch strings.ToLower(filepath.Ext(en.Name())) {
			case ".yaml", ".yml", ".json":
				if !en.IsDir() {
					in = append(in, filepath.Join(p, en.Name()))
				}
			}
		}
		sort.Strings(in)
		files = append(files, in...)
	}
	var objs []api.Object
	for _, f := range files {
		var data []byte
		var err error
		if f == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		got, err := api.Decode(data)
		if err != nil {
			name := f
			if f == "-" {
				name = "STDIN"
			}
			return nil, fmt.Errorf("error validating %q: %w", name, err)
		}
		objs = append(objs, got...)
	}
	return objs, nil
}

// setNamespace puts namespaced objects without a namespace into ns.
func setNamespace(objs []api.Object, ns string) error {
	for _, obj := range objs {
		ki, err := api.KindOf(obj)
		if err != nil {
			return err
		}
		if m := obj.GetMeta(); ki.Namespaced && m.Namespace == "" {
			m.Namespace = ns
		}
	}
	return nil
}

// Apply creates or updates each object and reports created, configured or
// unchanged. It compares what the user owns (labels, annotations, spec)
// after defaulting, and skips the write when nothing differs.
func Apply(ctx context.Context, e *Env, objs []api.Object) error {
	if err := setNamespace(objs, e.Namespace); err != nil {
		return err
	}
	var errs []error
	for _, obj := range objs {
		ki, _ := api.KindOf(obj)
		m := obj.GetMeta()
		cur, err := e.Client.Get(ctx, ki.Kind, m.Namespace, m.Name)
		verb := "configured"
		switch {
		case errors.Is(err, api.ErrNotFound):
			verb = "created"
		case err != nil:
			errs = append(errs, fmt.Errorf("apply %s: %w", nameOf(ki, m.Name), err))
			continue
		case sameUserState(cur, obj):
			fmt.Fprintf(e.Out, "%s unchanged\n", nameOf(ki, m.Name))
			continue
		}
		if _, err := e.Client.Apply(ctx, obj); err != nil {
			errs = append(errs, fmt.Errorf("apply %s: %w", nameOf(ki, m.Name), err))
			continue
		}
		fmt.Fprintf(e.Out, "%s %s\n", nameOf(ki, m.Name), verb)
	}
	return errors.Join(errs...)
}

// Create creates each object; existing ones are errors, as with kubectl
// create -f.
func Create(ctx context.Context, e *Env, objs []api.Object) error {
	if err := setNamespace(objs, e.Namespace); err != nil {
		return err
	}
	var errs []error
	for _, obj := range objs {
		ki, _ := api.KindOf(obj)
		name := nameOf(ki, obj.GetMeta().Name)
		created, err := e.Client.Create(ctx, obj)
		if err != nil {
			errs = append(errs, fmt.Errorf("create %s: %w", name, err))
			continue
		}
		fmt.Fprintf(e.Out, "%s created\n", nameOf(ki, created.GetMeta().Name))
	}
	return errors.Join(errs...)
}

func nameOf(ki *api.KindInfo, name string) string { return lower(ki) + "/" + name }

// sameUserState reports whether applying applied to cur would change
// nothing the user owns.
func sameUserState(cur, applied api.Object) bool {
	a, err := clone(applied)
	if err != nil {
		return false
	}
	api.Defaults(a)
	cm, am := cur.GetMeta(), a.GetMeta()
	return equalJSON(cm.Labels, am.Labels) && equalJSON(cm.Annotations, am.Annotations) &&
		bytes.Equal(specJSON(cur), specJSON(a))
}

func clone(obj api.Object) (api.Object, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	ki, err := api.KindOf(obj)
	if err != nil {
		return nil, err
	}
	out := ki.New()
	return out, json.Unmarshal(b, out)
}

func equalJSON(a, b map[string]string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func specJSON(obj api.Object) []byte {
	b, _ := json.Marshal(obj)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	return m["spec"]
}
