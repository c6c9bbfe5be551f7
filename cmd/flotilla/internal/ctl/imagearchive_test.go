package ctl

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"

	"github.com/flotilla-edge/flotilla/edgeagent/oci/ocitest"
)

func TestReadArchiveListsImagesAndPlatforms(t *testing.T) {
	full, _ := ocitest.FullRef("flotilla.test/server", "v1")
	var buf bytes.Buffer
	bins := map[string][]byte{"linux/amd64": []byte("a"), "linux/arm64": []byte("b")}
	if err := ocitest.WriteArchive(&buf, full, "v1", []string{"linux/amd64", "linux/arm64"}, bins); err != nil {
		t.Fatal(err)
	}
	imgs, err := readArchive(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Ref != full || len(imgs[0].Platforms) != 2 ||
		imgs[0].Platforms[0].String() != "linux/amd64" || imgs[0].Platforms[1].String() != "linux/arm64" {
		t.Fatalf("images %+v", imgs)
	}
}

func TestReadArchiveRefusesBrokenArchives(t *testing.T) {
	full, _ := ocitest.FullRef("flotilla.test/server", "v1")
	var good bytes.Buffer
	if err := ocitest.WriteArchive(&good, full, "v1", []string{"linux/amd64"}, map[string][]byte{"linux/amd64": []byte("x")}); err != nil {
		t.Fatal(err)
	}
	// The same archive with one blob's content changed.
	var tampered bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(good.Bytes())), tar.NewWriter(&tampered)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b := new(bytes.Buffer)
		b.ReadFrom(tr)
		data := b.Bytes()
		if strings.HasPrefix(h.Name, "blobs/") && bytes.Contains(data, []byte(`"architecture"`)) {
			data = bytes.Replace(data, []byte("amd64"), []byte("arm64"), 1)
		}
		h.Size = int64(len(data))
		tw.WriteHeader(h)
		tw.Write(data)
	}
	tw.Close()
	var noIndex bytes.Buffer
	tw = tar.NewWriter(&noIndex)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi"))
	tw.Close()
	tests := []struct {
		name, want string
		data       []byte
	}{
		{"a truncated archive", "tar", good.Bytes()[:good.Len()/2]},
		{"not a tar at all", "tar", bytes.Repeat([]byte("garbage "), 200)},
		{"a blob whose content does not match its digest", "corrupt", tampered.Bytes()},
		{"a tar without index.json or manifest.json", "not an image archive", noIndex.Bytes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readArchive(bytes.NewReader(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("readArchive = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
