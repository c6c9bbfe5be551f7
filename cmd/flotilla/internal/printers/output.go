package printers

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/flotilla-edge/flotilla/api"
)

// Output formats of get -o.
const (
	FormatTable = ""
	FormatWide  = "wide"
	FormatYAML  = "yaml"
	FormatJSON  = "json"
	FormatName  = "name"
)

// ValidFormat checks an -o value.
func ValidFormat(f string) error {
	switch f {
	case FormatTable, FormatWide, FormatYAML, FormatJSON, FormatName:
		return nil
	}
	return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,name,wide,yaml", f)
}

// Name is an object's kind/name, as -o name prints it.
func Name(obj api.Object) string {
	kind := obj.GetType().Kind
	if ki, err := api.KindOf(obj); err == nil {
		kind = ki.Kind
	}
	return strings.ToLower(kind) + "/" + obj.GetMeta().Name
}

// list is what -o yaml|json prints for several objects, as kubectl does.
type list struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Items      []api.Object `json:"items"`
	Metadata   struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
}

// PrintObjects prints objects as YAML, JSON or names. asList wraps them in
// a kind: List even when there is exactly one (get TYPE without names).
func PrintObjects(w io.Writer, format string, objs []api.Object, asList bool) error {
	if format == FormatName {
		for _, o := range objs {
			fmt.Fprintln(w, Name(o))
		}
		return nil
	}
	var v any
	if !asList && len(objs) == 1 {
		v = objs[0]
	} else {
		l := list{APIVersion: "v1", Kind: "List", Items: objs}
		if l.Items == nil {
			l.Items = []api.Object{}
		}
		v = l
	}
	var b []byte
	var err error
	switch format {
	case FormatJSON:
		b, err = json.MarshalIndent(v, "", "    ")
		b = append(b, '\n')
	case FormatYAML:
		b, err = yaml.Marshal(v)
	default:
		return ValidFormat(format)
	}
	if err != nil {
		return fmt.Errorf("encode %s: %w", format, err)
	}
	_, err = w.Write(b)
	return err
}
