package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Decode reads one or more YAML or JSON manifests (YAML documents separated
// by "---"). Decoding is strict: an unknown kind, an unknown field or a
// wrong type is an error naming the document and the field path. Decode
// does not default or validate.
func Decode(data []byte) ([]Object, error) {
	var out []Object
	for i, doc := range splitDocuments(data) {
		obj, err := DecodeOne(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		out = append(out, obj)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no objects in input", ErrInvalid)
	}
	return out, nil
}

// splitDocuments splits a YAML stream on "---" lines, dropping empty
// documents.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if len(bytes.TrimSpace(stripComments(cur.Bytes()))) > 0 {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		t := bytes.TrimRight(line, " \t\r\n")
		if bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			flush()
			continue
		}
		cur.Write(line)
	}
	flush()
	return docs
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
		}
	}
	return out
}

// DecodeOne decodes a single YAML or JSON object strictly.
func DecodeOne(doc []byte) (Object, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed YAML: %v", ErrInvalid, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, fmt.Errorf("%w: a manifest must be a mapping with apiVersion, kind and metadata", ErrInvalid)
	}
	kind, _ := raw["kind"].(string)
	if kind == "" {
		return nil, FieldErrors{{Field: "kind", Detail: "is required"}}
	}
	ki, err := LookupKind(kind)
	if err != nil || ki.Kind != kind {
		return nil, FieldErrors{{Field: "kind", Detail: fmt.Sprintf("unknown kind %q", kind)}}
	}
	if v, _ := raw["apiVersion"].(string); v != "" && v != Version && v != "v1" && v != "apps/v1" {
		return nil, FieldErrors{{Field: "apiVersion", Detail: fmt.Sprintf("%q is not served; use %s", v, Version)}}
	}
	obj := ki.New()
	if err := checkFields(reflect.TypeOf(obj).Elem(), raw, ""); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(js, obj); err != nil {
		return nil, describeJSONError(err)
	}
	return obj, nil
}

// describeJSONError turns encoding/json's errors into field errors.
func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(root)"
		}
		return FieldErrors{{Field: field, Detail: fmt.Sprintf("wrong type: got %s, want %s", te.Value, jsonTypeName(te.Type))}}
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return t.String()
}

var unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

// checkFields walks decoded JSON beside the Go type and reports the first
// key (in sorted order) that the type has no field for, with its path.
func checkFields(t reflect.Type, v any, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil // a type error; json.Unmarshal reports it
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				return FieldErrors{{Field: join(path, k), Detail: "unknown field"}}
			}
			if err := checkFields(ft, m[k], join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for k, e := range m {
			if err := checkFields(t.Elem(), e, join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		s, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, e := range s {
			if err := checkFields(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// jsonFields maps JSON names to field types, flattening embedded structs.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
