package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
)

// Platform is one os/arch/variant an image provides.
type Platform struct {
	OS           string
	Architecture string
	Variant      string
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ValidateRef checks that ref is a well-formed image reference.
func ValidateRef(ref string) error {
	_, err := normalizeRef(ref)
	return err
}

// normalizeRef returns the fully qualified form containerd stores
// ("nginx" -> "docker.io/library/nginx:latest").
func normalizeRef(ref string) (string, error) {
	if strings.TrimSpace(ref) == "" {
		return "", fmt.Errorf("invalid image reference %q: empty", ref)
	}
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return n.String(), nil
}

// ImportArchive imports an OCI image layout or `docker save` tar, keeping
// the content of every platform, and returns the names of the images it
// created or updated.
func (r *Runtime) ImportArchive(ctx context.Context, rd io.Reader) ([]string, error) {
	ctx = r.nsctx(ctx)
	imgs, err := r.client.Import(ctx, rd, containerd.WithAllPlatforms(true))
	if err != nil {
		return nil, fmt.Errorf("import image archive: %w", err)
	}
	var names []string
	for _, im := range imgs {
		names = append(names, im.Name)
	}
	if len(names) == 0 {
		return nil, errors.New("import image archive: the archive names no image (no io.containerd.image.name / org.opencontainers.image.ref.name annotation or RepoTags)")
	}
	r.log.Info("imported images", "names", names)
	return names, nil
}

// getImage returns the local image for ref, or an error wrapping
// ErrImageNotFound.
func (r *Runtime) getImage(ctx context.Context, ref string) (containerd.Image, string, error) {
	name, err := normalizeRef(ref)
	if err != nil {
		return nil, "", err
	}
	img, err := r.client.GetImage(ctx, name)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, name, fmt.Errorf("%w: %s", ErrImageNotFound, ref)
		}
		return nil, name, fmt.Errorf("image %s: %w", ref, err)
	}
	return img, name, nil
}

// EnsureImage makes ref usable for Start: present locally (or, with pull,
// pulled from its registry) and unpacked for the node's platform. It
// returns the image's digest (of its index or manifest). A missing image
// gives an error wrapping ErrImageNotFound; an image lacking the node's
// platform one wrapping ErrPlatformMismatch.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, pull bool) (string, error) {
	ctx = r.nsctx(ctx)
	img, name, err := r.getImage(ctx, ref)
	if errors.Is(err, ErrImageNotFound) && pull {
		r.log.Info("pulling image", "ref", name)
		img, err = r.client.Pull(ctx, name, containerd.WithPullUnpack, containerd.WithPullSnapshotter(r.snapshotter), containerd.WithResolver(r.resolver()))
		if err != nil {
			return "", fmt.Errorf("%w: %s: pull from %s failed: %v", ErrImageNotFound, ref, r.pullSource(name), err)
		}
	}
	if err != nil {
		return "", err
	}
	if err := r.unpack(ctx, img); err != nil {
		return "", err
	}
	return img.Target().Digest.String(), nil
}

// unpack checks the image has the node's platform and unpacks it into the
// snapshotter if it is not yet.
func (r *Runtime) unpack(ctx context.Context, img containerd.Image) error {
	if _, err := images.Manifest(ctx, r.client.ContentStore(), img.Target(), platforms.Default()); err != nil {
		if errdefs.IsNotFound(err) {
			have, _ := r.platformsOf(ctx, img)
			return fmt.Errorf("%w: %s offers %v, node is %s", ErrPlatformMismatch, img.Name(), have, platforms.DefaultString())
		}
		return fmt.Errorf("image %s: %w", img.Name(), err)
	}
	ok, err := img.IsUnpacked(ctx, r.snapshotter)
	if err != nil {
		return fmt.Errorf("image %s: %w", img.Name(), err)
	}
	if ok {
		return nil
	}
	if err := img.Unpack(ctx, r.snapshotter); err != nil {
		return fmt.Errorf("unpack image %s (%s): %w", img.Name(), r.snapshotter, err)
	}
	return nil
}

// ImagePlatforms lists the platforms the local image ref provides (from its
// index, or its single manifest's config).
func (r *Runtime) ImagePlatforms(ctx context.Context, ref string) ([]Platform, error) {
	ctx = r.nsctx(ctx)
	img, _, err := r.getImage(ctx, ref)
	if err != nil {
		return nil, err
	}
	return r.platformsOf(ctx, img)
}

func (r *Runtime) platformsOf(ctx context.Context, img containerd.Image) ([]Platform, error) {
	ps, err := images.Platforms(ctx, r.client.ContentStore(), img.Target())
	if err != nil {
		return nil, fmt.Errorf("image %s platforms: %w", img.Name(), err)
	}
	seen := map[Platform]bool{}
	var out []Platform
	for _, p := range ps {
		q := Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// RemoveImage deletes the local image ref (its content is garbage
// collected by containerd). A missing image is not an error.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	ctx = r.nsctx(ctx)
	name, err := normalizeRef(ref)
	if err != nil {
		return err
	}
	if err := r.client.ImageService().Delete(ctx, name); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}

// ImageDigest returns the digest (of the index or manifest) of the local
// image ref, without unpacking it; an error wraps ErrImageNotFound when it
// is missing.
func (r *Runtime) ImageDigest(ctx context.Context, ref string) (string, error) {
	img, _, err := r.getImage(r.nsctx(ctx), ref)
	if err != nil {
		return "", err
	}
	return img.Target().Digest.String(), nil
}
