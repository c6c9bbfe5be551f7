package oci

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
)

// Registry configures pulls from one registry host (as written in image
// references: "docker.io", "ghcr.io", "registry.local:5000").
type Registry struct {
	// Mirrors are tried in order before the registry itself:
	// "http://10.0.0.5:5000" (plain HTTP), "https://mirror.example" or
	// "mirror.example" (HTTPS). A path ("https://host/prefix") is kept;
	// "/v2" is appended unless the path ends with it.
	Mirrors []string `json:"mirrors,omitempty" mapstructure:"mirrors"`
	// MirrorsOnly pulls through the mirrors only, never from the
	// registry itself.
	MirrorsOnly bool `json:"mirrorsOnly,omitempty" mapstructure:"mirrors_only"`
	// Username and Password answer the basic or token auth challenges of
	// the registry and of its mirrors.
	Username string `json:"username,omitempty" mapstructure:"username"`
	Password string `json:"password,omitempty" mapstructure:"password"`
}

// mirrorHost turns a mirror URL into a containerd registry host.
func mirrorHost(m string) (docker.RegistryHost, error) {
	if !strings.Contains(m, "://") {
		m = "https://" + m
	}
	u, err := url.Parse(m)
	if err != nil {
		return docker.RegistryHost{}, fmt.Errorf("registry mirror %q: %w", m, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return docker.RegistryHost{}, fmt.Errorf("registry mirror %q: scheme %q is not http or https", m, u.Scheme)
	}
	if u.Host == "" {
		return docker.RegistryHost{}, fmt.Errorf("registry mirror %q: no host", m)
	}
	p := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(p, "/v2") {
		p += "/v2"
	}
	return docker.RegistryHost{
		Client:       http.DefaultClient,
		Host:         u.Host,
		Scheme:       u.Scheme,
		Path:         p,
		Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
	}, nil
}

// validateRegistries checks every mirror URL (at New, so a typo is an
// agent start error rather than a failed pull).
func validateRegistries(regs map[string]Registry) error {
	for name, reg := range regs {
		if name == "" {
			return fmt.Errorf("registry config: empty registry host")
		}
		if reg.MirrorsOnly && len(reg.Mirrors) == 0 {
			return fmt.Errorf("registry %s: mirrorsOnly without mirrors", name)
		}
		for _, m := range reg.Mirrors {
			if _, err := mirrorHost(m); err != nil {
				return fmt.Errorf("registry %s: %w", name, err)
			}
		}
	}
	return nil
}

// registryHosts lists where to pull from for a registry host: its mirrors
// first, then (unless MirrorsOnly) the registry itself, all with its
// credentials. Unconfigured registries are pulled anonymously as by
// containerd's defaults (plain HTTP for localhost only).
func (r *Runtime) registryHosts(host string) ([]docker.RegistryHost, error) {
	reg, ok := r.cfg.Registries[host]
	if !ok {
		return docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchLocalhost))(host)
	}
	var authz docker.Authorizer
	if reg.Username != "" || reg.Password != "" {
		user, pass := reg.Username, reg.Password
		authz = docker.NewDockerAuthorizer(docker.WithAuthCreds(func(string) (string, string, error) {
			return user, pass, nil
		}))
	}
	var hosts []docker.RegistryHost
	for _, m := range reg.Mirrors {
		h, err := mirrorHost(m)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", host, err)
		}
		h.Authorizer = authz
		hosts = append(hosts, h)
	}
	if !reg.MirrorsOnly {
		opts := []docker.RegistryOpt{docker.WithPlainHTTP(docker.MatchLocalhost)}
		if authz != nil {
			opts = append(opts, docker.WithAuthorizer(authz))
		}
		up, err := docker.ConfigureDefaultRegistries(opts...)(host)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", host, err)
		}
		hosts = append(hosts, up...)
	}
	return hosts, nil
}

func (r *Runtime) resolver() remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{Hosts: r.registryHosts})
}

// pullSource names where a reference is pulled from, for errors:
// "registry ghcr.io" or "registry docker.io (mirrors http://10.0.0.5:5000)".
func (r *Runtime) pullSource(name string) string {
	host := name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		host = name[:i]
	}
	s := "registry " + host
	if reg, ok := r.cfg.Registries[host]; ok && len(reg.Mirrors) > 0 {
		s += " (mirrors " + strings.Join(reg.Mirrors, ", ") + ")"
	}
	return s
}
