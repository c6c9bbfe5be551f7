package wire

import "strings"

// Storage of OCI images imported with `flotilla image import`, for fleets
// that cannot reach a registry.
const (
	// ImageArchivesBucket is the object store holding image archives (OCI
	// layout or `docker save` tars), named "sha256:<hex>" of the archive.
	ImageArchivesBucket = "flotilla-image-archives"
	// ImagesBucket maps ImageKey(ref) to an ImageRecord; agents watch it
	// and import the archives meant for them, the scheduler reads the
	// platforms from it.
	ImagesBucket = "flotilla-images"
)

// ImagePlatform is one os/arch/variant an image provides.
type ImagePlatform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// String is "os/arch[/variant]".
func (p ImagePlatform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ImageRecord is the value of an ImagesBucket key.
type ImageRecord struct {
	// Ref is the normalized reference containerd stores
	// ("docker.io/library/server:v1").
	Ref       string          `json:"ref"`
	Digest    string          `json:"digest"` // of the image's index or manifest
	Platforms []ImagePlatform `json:"platforms"`
	// Archive names the object in ImageArchivesBucket holding the image.
	Archive string `json:"archive"`
	Size    int64  `json:"size"`
	// Node limits the import to one node; empty means every node.
	Node     string `json:"node,omitempty"`
	Imported string `json:"imported"` // RFC 3339
}

// ImageKey is the ImagesBucket key of a normalized reference: NATS keys
// allow no ':' or '@', so "host/path:tag" becomes "host/path.tag" and
// "path@sha256:hex" "path.sha256-hex".
func ImageKey(normalizedRef string) string {
	r := strings.NewReplacer("@sha256:", ".sha256-", "@", ".", ":", ".")
	// A port in the host ("host:5000/x") must not read as a tag separator:
	// only the last ':' after the last '/' is the tag.
	if i := strings.LastIndex(normalizedRef, "/"); i >= 0 {
		return strings.ReplaceAll(normalizedRef[:i], ":", "_") + r.Replace(normalizedRef[i:])
	}
	return r.Replace(normalizedRef)
}

// ExecSubject is where the agent of node takes exec requests
// (flotilla.exec.<node>); see docs/api.md.
func ExecSubject(node string) string { return "flotilla.exec." + node }

// ExecRequest starts a process in a running container. The caller
// subscribes to Inbox+".>" first; the agent replies with an ExecReply, then
// publishes output to Inbox+".stdout" and Inbox+".stderr" and finally an
// ExecExit to Inbox+".exit". Stdin goes to Inbox+".stdin"; a message with
// header "Eof" set closes it.
type ExecRequest struct {
	Namespace string   `json:"namespace"`
	Pod       string   `json:"pod"`
	Container string   `json:"container,omitempty"`
	Command   []string `json:"command"`
	Stdin     bool     `json:"stdin,omitempty"`
	TTY       bool     `json:"tty,omitempty"`
	Inbox     string   `json:"inbox"`
}

// ExecReply accepts or refuses an ExecRequest.
type ExecReply struct {
	Error string `json:"error,omitempty"`
}

// ExecExit ends an exec session.
type ExecExit struct {
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
}
