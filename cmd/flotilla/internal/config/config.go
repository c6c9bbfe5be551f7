// Package config resolves where the CLI finds its fleet: flags, FLOTILLA_*
// environment variables, the viper config file and, last, the context file
// that `flotilla server` and `flotilla up` write (like a kubeconfig).
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent/oci"
)

// ErrNoFleet is returned when no server URL is configured anywhere; it tells
// the user how to get one.
var ErrNoFleet = errors.New("no fleet configured: run `flotilla up`, or pass --server / set FLOTILLA_SERVER")

// Keys of the settings in viper (flags, FLOTILLA_<KEY> and the config file).
const (
	KeyServer    = "server"
	KeyToken     = "token"
	KeyNamespace = "namespace"
	// Agent settings of the OCI runtime: flags --containerd-socket ...,
	// env FLOTILLA_CONTAINERD_SOCKET ... (the '_' keeps the env name valid).
	KeyContainerdSocket      = "containerd_socket"
	KeyContainerdNamespace   = "containerd_namespace"
	KeyContainerdSnapshotter = "containerd_snapshotter"
	KeyImageRegistryPull     = "image_registry_pull"
	// KeyContainerdRegistries is the config file section of registry
	// mirrors and credentials (config file only):
	//
	//	containerd:
	//	  registries:
	//	    docker.io:
	//	      mirrors: ["http://10.0.0.5:5000"]
	//	      username: pi
	//	      password: ...
	KeyContainerdRegistries = "containerd.registries"
)

// Registries decodes the containerd.registries section: registry host ->
// mirrors (mirrors_only) and credentials.
func Registries(v *viper.Viper) (map[string]oci.Registry, error) {
	if !v.IsSet(KeyContainerdRegistries) {
		return nil, nil
	}
	var regs map[string]oci.Registry
	if err := v.UnmarshalKey(KeyContainerdRegistries, &regs, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
	}); err != nil {
		return nil, fmt.Errorf("config %s: %w", KeyContainerdRegistries, err)
	}
	return regs, nil
}

// Context is the content of the context file.
type Context struct {
	Server    string `json:"server"`
	Token     string `json:"token,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// Settings are the resolved connection settings of a client command.
type Settings struct {
	Server    string
	Token     string
	Namespace string
	// ContextPath is the context file that was consulted.
	ContextPath string
}

// ContextPath is $FLOTILLA_CONTEXT, else ~/.flotilla/context.yaml.
func ContextPath() (string, error) {
	if p := os.Getenv("FLOTILLA_CONTEXT"); p != "" {
		return p, nil
	}
	return inHome("context.yaml")
}

// DefaultConfigFile is ~/.flotilla/config.yaml.
func DefaultConfigFile() (string, error) { return inHome("config.yaml") }

// DefaultDataDir is ~/.flotilla/<sub>.
func DefaultDataDir(sub string) string {
	p, err := inHome(sub)
	if err != nil {
		return filepath.Join(".flotilla", sub)
	}
	return p
}

func inHome(name string) (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home directory: %w", err)
	}
	return filepath.Join(home, ".flotilla", name), nil
}

// ReadContext reads a context file; a missing file is an empty context.
func ReadContext(path string) (Context, error) {
	var c Context
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read context file: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return c, fmt.Errorf("context file %s: %w", path, err)
	}
	return c, nil
}

// WriteContext writes the context file readable by its owner only, since
// it holds the fleet's token.
func WriteContext(path string, c Context) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode context: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write context file: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write context file: %w", err)
	}
	// Rename so a reader never sees half a file.
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write context file: %w", err)
	}
	return nil
}

// NewViper makes the viper instance a root command binds its flags to:
// FLOTILLA_SERVER, FLOTILLA_TOKEN and FLOTILLA_NAMESPACE override the
// config file, and bound flags override both.
func NewViper() *viper.Viper {
	v := viper.New()
	v.SetEnvPrefix("FLOTILLA")
	v.AutomaticEnv()
	return v
}

// ReadConfigFile loads the viper config file: an explicitly named one must
// exist, the default one is optional.
func ReadConfigFile(v *viper.Viper, explicit string) error {
	path := explicit
	if path == "" {
		def, err := DefaultConfigFile()
		if err != nil {
			return nil
		}
		if _, err := os.Stat(def); err != nil {
			return nil
		}
		path = def
	}
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return fmt.Errorf("read config file %s: %w", path, err)
	}
	return nil
}

// Resolve combines viper (flag > env > config file) with the context file,
// which fills whatever is still unset.
func Resolve(v *viper.Viper, contextPath string) (Settings, error) {
	s := Settings{
		Server:      v.GetString(KeyServer),
		Token:       v.GetString(KeyToken),
		Namespace:   v.GetString(KeyNamespace),
		ContextPath: contextPath,
	}
	if s.Server == "" || s.Token == "" || s.Namespace == "" {
		c, err := ReadContext(contextPath)
		if err != nil {
			return s, err
		}
		if s.Server == "" {
			s.Server = c.Server
			// A token belongs to the fleet it came with; only take the
			// context's token when it is also the context's server.
			if s.Token == "" {
				s.Token = c.Token
			}
		} else if s.Token == "" && s.Server == c.Server {
			s.Token = c.Token
		}
		if s.Namespace == "" {
			s.Namespace = c.Namespace
		}
	}
	if s.Namespace == "" {
		s.Namespace = api.DefaultNamespace
	}
	return s, nil
}

// RequireServer returns ErrNoFleet when no server is configured.
func (s Settings) RequireServer() error {
	if s.Server == "" {
		return ErrNoFleet
	}
	return nil
}

// ClientURL turns a listen URL into one a local client can dial:
// 0.0.0.0 and [::] are not addresses to connect to.
func ClientURL(u string) string {
	for _, wild := range []string{"0.0.0.0", "[::]"} {
		u = strings.Replace(u, "//"+wild+":", "//127.0.0.1:", 1)
	}
	return u
}
