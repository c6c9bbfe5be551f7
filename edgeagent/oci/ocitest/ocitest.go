// Package ocitest builds OCI image archives for tests without a registry:
// it compiles the static test server in edgeagent/oci/testdata/server for
// each requested platform and writes an OCI image layout tar whose image
// index holds one manifest per platform. The agent's tests can reuse it.
package ocitest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ServerPath is where the test server binary lives inside the images; it is
// also the image entrypoint.
const ServerPath = "/server"

var (
	binMu    sync.Mutex
	binCache = map[string][]byte{} // "os/arch" -> binary
)

// serverSource returns the directory holding the test server's main package.
func serverSource() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("ocitest: cannot locate source")
	}
	return filepath.Join(filepath.Dir(file), "..", "testdata", "server"), nil
}

// ServerBinary compiles (once per process and platform) the static test
// server for platform "os/arch" and returns it.
func ServerBinary(t testing.TB, platform string) []byte {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if b, ok := binCache[platform]; ok {
		return b
	}
	goos, goarch, ok := strings.Cut(platform, "/")
	if !ok {
		t.Fatalf("ocitest: platform %q is not os/arch", platform)
	}
	src, err := serverSource()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "server-"+goos+"-"+goarch)
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=-mod=mod")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ocitest: build test server for %s: %v\n%s", platform, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	binCache[platform] = b
	return b
}

// FullRef returns the normalized reference containerd stores for name:tag
// (e.g. "server", "v1" -> "docker.io/library/server:v1").
func FullRef(name, tag string) (string, error) {
	n, err := reference.ParseDockerRef(name + ":" + tag)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// BuildTestImage writes an OCI image layout archive for name:tag holding the
// test server for each platform ("linux/amd64", "linux/arm64", ...) and
// returns its path (in t.TempDir()). The image index is annotated with
// io.containerd.image.name (the normalized reference) and
// org.opencontainers.image.ref.name (the tag).
func BuildTestImage(t testing.TB, name, tag string, platforms []string) string {
	t.Helper()
	full, err := FullRef(name, tag)
	if err != nil {
		t.Fatalf("ocitest: reference %s:%s: %v", name, tag, err)
	}
	bins := map[string][]byte{}
	for _, p := range platforms {
		bins[p] = ServerBinary(t, p)
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, full, tag, platforms, bins); err != nil {
		t.Fatalf("ocitest: %v", err)
	}
	path := filepath.Join(t.TempDir(), strings.NewReplacer("/", "_", ":", "_").Replace(name+"_"+tag)+".tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type layout struct {
	blobs map[digest.Digest][]byte
	order []digest.Digest
}

func (l *layout) add(mediaType string, b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	if _, ok := l.blobs[d]; !ok {
		l.blobs[d] = b
		l.order = append(l.order, d)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func (l *layout) addJSON(mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return l.add(mediaType, b), nil
}

// epoch keeps archives reproducible.
var epoch = time.Unix(1700000000, 0).UTC()

// layerTar returns the uncompressed and gzipped layer holding the binary.
func layerTar(bin []byte) (raw, gz []byte, err error) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, d := range []struct {
		name string
		mode int64
	}{{"tmp/", 0o1777}, {"etc/", 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return nil, nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/:/server\n")},
		{"etc/group", 0o644, []byte("root:x:0:\n")},
		{strings.TrimPrefix(ServerPath, "/"), 0o755, bin},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return nil, nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestSpeed)
	if _, err := zw.Write(tb.Bytes()); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return tb.Bytes(), zb.Bytes(), nil
}

// WriteArchive writes an OCI image layout tar to w: one image index (named
// fullRef, tagged tag) with a manifest per platform, each with one layer
// holding bins[platform] at ServerPath.
func WriteArchive(w *bytes.Buffer, fullRef, tag string, platforms []string, bins map[string][]byte) error {
	l := &layout{blobs: map[digest.Digest][]byte{}}
	var manifests []ocispec.Descriptor
	for _, p := range platforms {
		goos, goarch, ok := strings.Cut(p, "/")
		if !ok {
			return fmt.Errorf("platform %q is not os/arch", p)
		}
		raw, gz, err := layerTar(bins[p])
		if err != nil {
			return err
		}
		layer := l.add(ocispec.MediaTypeImageLayerGzip, gz)
		cfg := ocispec.Image{
			Created:  &epoch,
			Platform: ocispec.Platform{OS: goos, Architecture: goarch},
			Config: ocispec.ImageConfig{
				Entrypoint: []string{ServerPath},
				Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
				WorkingDir: "/",
			},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw)}},
		}
		cfgDesc, err := l.addJSON(ocispec.MediaTypeImageConfig, cfg)
		if err != nil {
			return err
		}
		man := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    cfgDesc,
			Layers:    []ocispec.Descriptor{layer},
		}
		md, err := l.addJSON(ocispec.MediaTypeImageManifest, man)
		if err != nil {
			return err
		}
		md.Platform = &ocispec.Platform{OS: goos, Architecture: goarch}
		manifests = append(manifests, md)
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	idxDesc, err := l.addJSON(ocispec.MediaTypeImageIndex, idx)
	if err != nil {
		return err
	}
	idxDesc.Annotations = map[string]string{
		"io.containerd.image.name": fullRef,
		ocispec.AnnotationRefName:  tag,
	}
	top := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{idxDesc}}
	topJSON, err := json.Marshal(top)
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := put(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"`+ocispec.ImageLayoutVersion+`"}`)); err != nil {
		return err
	}
	for _, d := range l.order {
		if err := put("blobs/sha256/"+d.Encoded(), l.blobs[d]); err != nil {
			return err
		}
	}
	if err := put("index.json", topJSON); err != nil {
		return err
	}
	return tw.Close()
}
