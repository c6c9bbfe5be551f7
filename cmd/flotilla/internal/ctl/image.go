package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	digest "github.com/opencontainers/go-digest"

	"github.com/flotilla-edge/flotilla/api/wire"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/printers"
)

// imageBuckets opens (creating on first use) the image archive store and
// the image records.
func imageBuckets(ctx context.Context, e *Env) (jetstream.ObjectStore, jetstream.KeyValue, error) {
	js, err := jetstream.New(e.Client.NC)
	if err != nil {
		return nil, nil, err
	}
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: wire.ImageArchivesBucket, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, nil, fmt.Errorf("object store %s: %w", wire.ImageArchivesBucket, err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: wire.ImagesBucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, nil, fmt.Errorf("bucket %s: %w", wire.ImagesBucket, err)
	}
	return obs, kv, nil
}

// ImageImport checks an image archive, stores it in the fleet and records
// its images, so agents (every one, or only node) import it into their
// containerd. A corrupt archive stores nothing.
func ImageImport(ctx context.Context, e *Env, file, node string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("image import: %w", err)
	}
	defer f.Close()
	// One pass to validate and hash, one to upload: nothing is stored
	// before the whole archive has been read and checked.
	h := digest.SHA256.Digester()
	imgs, err := readArchive(io.TeeReader(f, h.Hash()))
	if err != nil {
		return fmt.Errorf("image import %s: %w", file, err)
	}
	// Hash the tail a tar reader leaves unread (padding) too.
	if _, err := io.Copy(h.Hash(), f); err != nil {
		return fmt.Errorf("image import %s: %w", file, err)
	}
	size, _ := f.Seek(0, io.SeekCurrent)
	archive := h.Digest().String()
	if node != "" {
		if _, err := e.Client.Get(ctx, "Node", "", node); err != nil {
			return fmt.Errorf("image import: node %s: %w", node, err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	obs, kv, err := imageBuckets(ctx, e)
	if err != nil {
		return fmt.Errorf("image import: %w", err)
	}
	if _, err := obs.GetInfo(ctx, archive); err != nil {
		if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: archive, Description: file}, f); err != nil {
			return fmt.Errorf("image import: upload: %w", err)
		}
	}
	now := time.Now().UTC().Format(time.RFC3339)
	for _, im := range imgs {
		rec := wire.ImageRecord{Ref: im.Ref, Digest: im.Digest, Platforms: im.Platforms, Archive: archive, Size: size, Node: node, Imported: now}
		b, _ := json.Marshal(rec)
		if _, err := kv.Put(ctx, wire.ImageKey(im.Ref), b); err != nil {
			return fmt.Errorf("image import: record %s: %w", im.Ref, err)
		}
		var ps []string
		for _, p := range im.Platforms {
			ps = append(ps, p.String())
		}
		fmt.Fprintf(e.Out, "imported %s %s (%s)\n", im.Ref, im.Digest, strings.Join(ps, ", "))
	}
	return nil
}

// ImageList prints the imported images.
func ImageList(ctx context.Context, e *Env) error {
	_, kv, err := imageBuckets(ctx, e)
	if err != nil {
		return fmt.Errorf("image ls: %w", err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("image ls: %w", err)
	}
	var recs []wire.ImageRecord
	for _, k := range keys {
		en, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var r wire.ImageRecord
		if json.Unmarshal(en.Value(), &r) == nil {
			recs = append(recs, r)
		}
	}
	if len(recs) == 0 {
		fmt.Fprintln(e.ErrOut, "No images found")
		return nil
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Ref < recs[j].Ref })
	tw := tabwriter.NewWriter(e.Out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tPLATFORMS\tNODE\tSIZE\tAGE")
	for _, r := range recs {
		var ps []string
		for _, p := range r.Platforms {
			ps = append(ps, p.String())
		}
		node := r.Node
		if node == "" {
			node = "<all>"
		}
		age := "<unknown>"
		if t, err := time.Parse(time.RFC3339, r.Imported); err == nil {
			age = printers.HumanDuration(e.now().Sub(t))
		}
		d := r.Digest
		if len(d) > 19 {
			d = d[:19]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", r.Ref, d, strings.Join(ps, ","), node, r.Size, age)
	}
	return tw.Flush()
}
