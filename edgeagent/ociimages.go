package edgeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api/wire"
)

// watchImages imports the images of `flotilla image import` meant for this
// node into containerd, so air-gapped fleets need no registry. It re-reads
// the bucket whenever the watch breaks; importing what is already present
// is skipped by digest.
func (a *Agent) watchImages(ctx context.Context) {
	bo := newBackoff(500*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		err := a.watchImagesOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		a.log.Debug("images watch ended; retrying", "err", err)
		if !sleepCtx(ctx, bo.next()) {
			return
		}
	}
}

func (a *Agent) watchImagesOnce(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	kv, err := a.js.CreateOrUpdateKeyValue(octx, jetstream.KeyValueConfig{Bucket: wire.ImagesBucket, History: 1, Storage: jetstream.FileStorage})
	if err == nil {
		_, err = a.js.CreateOrUpdateObjectStore(octx, jetstream.ObjectStoreConfig{Bucket: wire.ImageArchivesBucket, Storage: jetstream.FileStorage})
	}
	cancel()
	if err != nil {
		return fmt.Errorf("open image buckets: %w", err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", wire.ImagesBucket, err)
	}
	defer w.Stop()
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok = <-w.Updates():
		}
		if !ok {
			return fmt.Errorf("watch %s: updates closed", wire.ImagesBucket)
		}
		if e == nil || e.Operation() != jetstream.KeyValuePut {
			continue
		}
		var rec wire.ImageRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			a.log.Warn("undecodable image record", "key", e.Key(), "err", err)
			continue
		}
		if rec.Node != "" && rec.Node != a.cfg.Name {
			continue
		}
		if err := a.importImage(ctx, rec); err != nil {
			a.log.Warn("import image", "ref", rec.Ref, "err", err)
		}
	}
}

// importImage fetches rec's archive from the object store and imports it,
// unless containerd already has the image with that digest.
func (a *Agent) importImage(ctx context.Context, rec wire.ImageRecord) error {
	rt, _ := a.oci.runtime()
	if rt == nil {
		return a.errNoOCI()
	}
	if have, err := rt.ImageDigest(ctx, rec.Ref); err == nil && have == rec.Digest {
		return nil
	}
	os, err := a.js.ObjectStore(ctx, wire.ImageArchivesBucket)
	if err != nil {
		return fmt.Errorf("image archives: %w", err)
	}
	obj, err := os.Get(ctx, rec.Archive)
	if err != nil {
		return fmt.Errorf("get archive %s: %w", rec.Archive, err)
	}
	defer obj.Close()
	names, err := rt.ImportArchive(ctx, obj)
	if err != nil {
		return err
	}
	a.log.Info("image imported", "ref", rec.Ref, "digest", rec.Digest, "names", names)
	a.oci.signalImported()
	return nil
}
