package ctl

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/flotilla-edge/flotilla/api"
)

// ConfigDataOptions are the data flags of `create configmap` and `create
// secret generic`, as kubectl spells them.
type ConfigDataOptions struct {
	Literals []string // key=value
	Files    []string // [key=]path; a directory adds each regular file in it
	EnvFiles []string // KEY=VALUE lines; # comments and blank lines skipped
}

var configKeyRe = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// validConfigKey checks a key as the API does, with kubectl's wording.
func validConfigKey(kind, k string) error {
	if len(k) > 253 || !configKeyRe.MatchString(k) || k == "." || k == ".." {
		return fmt.Errorf("%q is not a valid key name for a %s: a valid config key must consist of alphanumeric characters, '-', '_' or '.'", k, kind)
	}
	return nil
}

// ConfigData reads the flags into key -> bytes for kind (ConfigMap or
// Secret). A key given twice is an error, as in kubectl.
func ConfigData(kind string, o ConfigDataOptions) (map[string][]byte, error) {
	out := map[string][]byte{}
	add := func(k string, v []byte) error {
		if err := validConfigKey(kind, k); err != nil {
			return err
		}
		if _, dup := out[k]; dup {
			return fmt.Errorf("cannot add key %q, another key by that name already exists", k)
		}
		out[k] = v
		return nil
	}
	for _, l := range o.Literals {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid literal source %q, expected key=value", l)
		}
		if err := add(k, []byte(v)); err != nil {
			return nil, err
		}
	}
	for _, f := range o.Files {
		key, path, named := strings.Cut(f, "=")
		if !named {
			path, key = f, ""
		}
		if path == "" {
			return nil, fmt.Errorf("invalid file source %q, expected [key=]path", f)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("read --from-file %s: %w", path, err)
		}
		if fi.IsDir() {
			if named {
				return nil, fmt.Errorf("cannot give a key name for a directory path: %s", f)
			}
			entries, err := os.ReadDir(path)
			if err != nil {
				return nil, fmt.Errorf("read --from-file %s: %w", path, err)
			}
			for _, e := range entries {
				if !e.Type().IsRegular() {
					continue
				}
				b, err := os.ReadFile(filepath.Join(path, e.Name()))
				if err != nil {
					return nil, fmt.Errorf("read --from-file %s: %w", path, err)
				}
				if err := add(e.Name(), b); err != nil {
					return nil, err
				}
			}
			continue
		}
		if key == "" {
			key = filepath.Base(path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read --from-file %s: %w", path, err)
		}
		if err := add(key, b); err != nil {
			return nil, err
		}
	}
	for _, path := range o.EnvFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read --from-env-file %s: %w", path, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("%s:%d: %q is not KEY=VALUE", path, n, line)
			}
			if err := add(strings.TrimSpace(k), []byte(v)); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read --from-env-file %s: %w", path, err)
		}
	}
	return out, nil
}

// NewConfigMap builds a ConfigMap from the flags: UTF-8 values go to data,
// anything else to binaryData.
func NewConfigMap(name string, o ConfigDataOptions) (*api.ConfigMap, error) {
	data, err := ConfigData("ConfigMap", o)
	if err != nil {
		return nil, err
	}
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: name}}
	for k, v := range data {
		if utf8.Valid(v) {
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[k] = string(v)
			continue
		}
		if cm.BinaryData == nil {
			cm.BinaryData = map[string][]byte{}
		}
		cm.BinaryData[k] = v
	}
	return cm, nil
}

// NewSecret builds an Opaque Secret from the flags.
func NewSecret(name string, o ConfigDataOptions) (*api.Secret, error) {
	data, err := ConfigData("Secret", o)
	if err != nil {
		return nil, err
	}
	return &api.Secret{ObjectMeta: api.ObjectMeta{Name: name}, Type: "Opaque", Data: data}, nil
}

// CreateConfigMap creates a ConfigMap from the flags.
func CreateConfigMap(ctx context.Context, e *Env, name string, o ConfigDataOptions) error {
	cm, err := NewConfigMap(name, o)
	if err != nil {
		return err
	}
	return Create(ctx, e, []api.Object{cm})
}

// CreateSecret creates an Opaque Secret from the flags.
func CreateSecret(ctx context.Context, e *Env, name string, o ConfigDataOptions) error {
	s, err := NewSecret(name, o)
	if err != nil {
		return err
	}
	return Create(ctx, e, []api.Object{s})
}
