package oci_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/edgeagent/oci"
	"github.com/flotilla-edge/flotilla/edgeagent/oci/ocitest"
)

// testRegistry is a minimal OCI Distribution API server (pull side) over
// an image layout: GET/HEAD /v2/, manifests by tag or digest and blobs by
// digest, behind Basic auth when user is set.
type testRegistry struct {
	user, pass string
	blobs      map[string][]byte // digest -> content
	tags       map[string]string // tag -> digest
}

var distRE = regexp.MustCompile(`^/v2/(.+)/(manifests|blobs)/([^/]+)$`)

// newTestRegistry serves the test server image for the local platform,
// tagged tag, from an OCI layout written by ocitest.
func newTestRegistry(t *testing.T, fullRef, tag, user, pass string) *httptest.Server {
	t.Helper()
	plat := "linux/" + runtime.GOARCH
	var buf bytes.Buffer
	if err := ocitest.WriteArchive(&buf, fullRef, tag, []string{plat}, map[string][]byte{plat: ocitest.ServerBinary(t, plat)}); err != nil {
		t.Fatal(err)
	}
	reg := &testRegistry{user: user, pass: pass, blobs: map[string][]byte{}, tags: map[string]string{}}
	tr := tar.NewReader(&buf)
	var index []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(h.Name, "blobs/sha256/"):
			reg.blobs["sha256:"+strings.TrimPrefix(h.Name, "blobs/sha256/")] = b
		case h.Name == "index.json":
			index = b
		}
	}
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(index, &idx); err != nil {
		t.Fatal(err)
	}
	for _, m := range idx.Manifests {
		reg.tags[m.Annotations["org.opencontainers.image.ref.name"]] = m.Digest
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return srv
}

func (reg *testRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if reg.user != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != reg.user || p != reg.pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == "/v2/" || r.URL.Path == "/v2" {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Write([]byte("{}"))
		return
	}
	m := distRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.NotFound(w, r)
		return
	}
	ref := m[3]
	if d, ok := reg.tags[ref]; ok && m[2] == "manifests" {
		ref = d
	}
	b, ok := reg.blobs[ref]
	if !ok {
		http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
		return
	}
	ct := "application/octet-stream"
	if m[2] == "manifests" {
		var v struct {
			MediaType string `json:"mediaType"`
		}
		_ = json.Unmarshal(b, &v)
		ct = v.MediaType
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Docker-Content-Digest", ref)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodGet {
		w.Write(b)
	}
}

func TestRegistryMirrorValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		reg  oci.Registry
		want string
	}{
		{"bad scheme", oci.Registry{Mirrors: []string{"ftp://10.0.0.5"}}, `scheme "ftp" is not http or https`},
		{"no host", oci.Registry{Mirrors: []string{"http://"}}, "no host"},
		{"mirrors only without mirrors", oci.Registry{MirrorsOnly: true}, "mirrorsOnly without mirrors"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oci.New(context.Background(), oci.Config{Socket: "/nonexistent.sock", Registries: map[string]oci.Registry{"docker.io": tt.reg}})
			if err == nil || !strings.Contains(err.Error(), "registry docker.io") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error naming registry docker.io and %q", err, tt.want)
			}
		})
	}
}

func TestPullThroughMirrorWithCredentials(t *testing.T) {
	sock := requireContainerd(t)
	const ref = "registry.test/app:v1"
	srv := newTestRegistry(t, ref, "v1", "pi", "s3cret")
	mirror := "http://" + strings.TrimPrefix(srv.URL, "http://")
	runtimeWith := func(user, pass string) *oci.Runtime {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := oci.New(ctx, oci.Config{Socket: sock, Namespace: testNamespace, Log: testLogger(t), LogDir: t.TempDir(),
			Registries: map[string]oci.Registry{"registry.test": {Mirrors: []string{mirror}, MirrorsOnly: true, Username: user, Password: pass}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	r := runtimeWith("pi", "wrong")
	_ = r.RemoveImage(context.Background(), ref)
	t.Cleanup(func() { r.RemoveImage(context.Background(), ref) })

	for _, tt := range []struct {
		name, pass string
		wantErr    bool
	}{
		{"wrong password", "wrong", true},
		{"right password", "s3cret", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runtimeWith("pi", tt.pass)
			digest, err := r.EnsureImage(ctxT(t, 60*time.Second), ref, true)
			if tt.wantErr {
				if !errors.Is(err, oci.ErrImageNotFound) || !strings.Contains(err.Error(), "registry registry.test (mirrors "+mirror+")") {
					t.Fatalf("EnsureImage = %v, want ErrImageNotFound naming the registry and mirror", err)
				}
				t.Log(err)
				return
			}
			if err != nil || !strings.HasPrefix(digest, "sha256:") {
				t.Fatalf("EnsureImage = %q, %v", digest, err)
			}
			var out syncBuf
			c := start(t, r, oci.Spec{ID: containerID(t, "pulled"), Image: ref, Args: []string{"-exit", "0"}, Stdout: &out})
			if st, err := c.Wait(ctxT(t, 30*time.Second)); err != nil || st.Code != 0 || out.String() != "exiting with 0\n" {
				t.Fatalf("exit %+v, %v, stdout %q", st, err, out.String())
			}
		})
	}
}
