package ctl

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/flotilla-edge/flotilla/api/wire"
)

// archiveImage is one image an archive holds.
type archiveImage struct {
	Ref       string // normalized, as containerd names it
	Digest    string
	Platforms []wire.ImagePlatform
}

// smallBlob bounds what is kept in memory while reading an archive:
// indexes, manifests and configs are far smaller; layers are only checked
// for presence.
const smallBlob = 4 << 20

// readArchive reads an OCI image layout tar (index.json) or a `docker
// save` tar (manifest.json) and returns its images with their platforms.
// It checks that every manifest, config and layer the images reference is
// in the archive and that what it reads matches its digest, so a corrupt
// or truncated archive fails here, before anything is stored.
func readArchive(rd io.Reader) ([]archiveImage, error) {
	files := map[string][]byte{}
	present := map[string]bool{}
	tr := tar.NewReader(rd)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a readable tar archive: %w", err)
		}
		n++
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		present[name] = true
		if h.Size > smallBlob {
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return nil, fmt.Errorf("not a readable tar archive (truncated?): entry %s: %w", name, err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("not a readable tar archive (truncated?): entry %s: %w", name, err)
		}
		files[name] = b
	}
	if n == 0 {
		return nil, errors.New("not an image archive: empty tar")
	}
	a := &archive{files: files, present: present}
	switch {
	case files["index.json"] != nil:
		return a.ociImages()
	case files["manifest.json"] != nil:
		return a.dockerImages()
	}
	return nil, errors.New("not an image archive: no index.json (OCI layout) or manifest.json (docker save)")
}

type archive struct {
	files   map[string][]byte
	present map[string]bool
}

func blobPath(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

// blob returns a small blob after checking its digest.
func (a *archive) blob(desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("bad digest %q: %w", desc.Digest, err)
	}
	b, ok := a.files[blobPath(desc.Digest)]
	if !ok {
		return nil, fmt.Errorf("blob %s is missing from the archive", desc.Digest)
	}
	if desc.Digest.Algorithm().FromBytes(b) != desc.Digest {
		return nil, fmt.Errorf("blob %s is corrupt (content does not match its digest)", desc.Digest)
	}
	return b, nil
}

func (a *archive) ociImages() ([]archiveImage, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(a.files["index.json"], &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	var out []archiveImage
	for _, d := range idx.Manifests {
		name := d.Annotations["io.containerd.image.name"]
		if name == "" {
			name = d.Annotations[ocispec.AnnotationRefName]
		}
		if name == "" {
			continue
		}
		ref, err := reference.ParseDockerRef(name)
		if err != nil {
			return nil, fmt.Errorf("index.json names image %q: %w", name, err)
		}
		ps, err := a.platforms(d, 0)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", name, err)
		}
		out = append(out, archiveImage{Ref: ref.String(), Digest: d.Digest.String(), Platforms: ps})
	}
	if len(out) == 0 {
		return nil, errors.New("index.json names no image (no io.containerd.image.name or org.opencontainers.image.ref.name annotation)")
	}
	return out, nil
}

// platforms walks an index or manifest, checking its blobs, and collects
// the platforms it provides.
func (a *archive) platforms(d ocispec.Descriptor, depth int) ([]wire.ImagePlatform, error) {
	if depth > 4 {
		return nil, errors.New("image indexes nest too deep")
	}
	b, err := a.blob(d)
	if err != nil {
		return nil, err
	}
	var probe struct {
		MediaType string               `json:"mediaType"`
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	seen := map[wire.ImagePlatform]bool{}
	var out []wire.ImagePlatform
	add := func(p wire.ImagePlatform) {
		if p.OS == "unknown" || p.OS == "" || seen[p] { // attestation manifests
			return
		}
		seen[p] = true
		out = append(out, p)
	}
	switch {
	case probe.Manifests != nil:
		for _, m := range probe.Manifests {
			ps, err := a.platforms(m, depth+1)
			if err != nil {
				return nil, err
			}
			if m.Platform != nil {
				add(wire.ImagePlatform{OS: m.Platform.OS, Architecture: m.Platform.Architecture, Variant: m.Platform.Variant})
				continue
			}
			for _, p := range ps {
				add(p)
			}
		}
	case probe.Config != nil:
		for _, l := range probe.Layers {
			if !a.present[blobPath(l.Digest)] {
				return nil, fmt.Errorf("layer %s is missing from the archive", l.Digest)
			}
		}
		p, err := a.configPlatform(*probe.Config)
		if err != nil {
			return nil, err
		}
		add(p)
	default:
		return nil, fmt.Errorf("blob %s is neither an image index nor a manifest", d.Digest)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

func (a *archive) configPlatform(d ocispec.Descriptor) (wire.ImagePlatform, error) {
	b, err := a.blob(d)
	if err != nil {
		return wire.ImagePlatform{}, err
	}
	var img ocispec.Image
	if err := json.Unmarshal(b, &img); err != nil {
		return wire.ImagePlatform{}, fmt.Errorf("config %s: %w", d.Digest, err)
	}
	return wire.ImagePlatform{OS: img.OS, Architecture: img.Architecture, Variant: img.Variant}, nil
}

// dockerImages reads a `docker save` archive: manifest.json lists configs
// and layers by path, and RepoTags names the images.
func (a *archive) dockerImages() ([]archiveImage, error) {
	var ms []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(a.files["manifest.json"], &ms); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var out []archiveImage
	for _, m := range ms {
		cfg, ok := a.files[path.Clean(m.Config)]
		if !ok {
			return nil, fmt.Errorf("config %s is missing from the archive", m.Config)
		}
		for _, l := range m.Layers {
			if !a.present[path.Clean(l)] {
				return nil, fmt.Errorf("layer %s is missing from the archive", l)
			}
		}
		var img ocispec.Image
		if err := json.Unmarshal(cfg, &img); err != nil {
			return nil, fmt.Errorf("config %s: %w", m.Config, err)
		}
		for _, t := range m.RepoTags {
			ref, err := reference.ParseDockerRef(t)
			if err != nil {
				return nil, fmt.Errorf("manifest.json names image %q: %w", t, err)
			}
			out = append(out, archiveImage{Ref: ref.String(), Digest: digest.FromBytes(cfg).String(),
				Platforms: []wire.ImagePlatform{{OS: img.OS, Architecture: img.Architecture, Variant: img.Variant}}})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("manifest.json names no image (no RepoTags)")
	}
	return out, nil
}
