// Package wire defines the NATS subjects and JSON messages of Flotilla's
// API (flotilla.api.v1.*). docs/api.md documents the same contract for
// clients that are not written in Go.
package wire

import "encoding/json"

// Subjects of the request/reply API.
const (
	Prefix           = "flotilla.api.v1."
	SubjectGet       = Prefix + "get"
	SubjectList      = Prefix + "list"
	SubjectCreate    = Prefix + "create"
	SubjectUpdate    = Prefix + "update"
	SubjectApply     = Prefix + "apply"
	SubjectDelete    = Prefix + "delete"
	SubjectWatch     = Prefix + "watch"
	SubjectKeepalive = Prefix + "watch.keepalive"
	SubjectStop      = Prefix + "watch.stop"
	SubjectVersion   = Prefix + "version"
)

// QueueGroup lets several servers share the API load.
const QueueGroup = "flotilla-api"

// ObjectRef names one object.
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// ResourceVersion makes a delete conditional.
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// ListRequest asks for the objects of a kind.
type ListRequest struct {
	Kind string `json:"kind"`
	// Namespace "" lists every namespace.
	Namespace     string `json:"namespace,omitempty"`
	LabelSelector string `json:"labelSelector,omitempty"`
	Limit         int    `json:"limit,omitempty"`
	Continue      string `json:"continue,omitempty"`
}

// WriteRequest carries an object for create, update and apply.
type WriteRequest struct {
	Object json.RawMessage `json:"object"`
}

// Error is the error half of every reply.
type Error struct {
	// Code is NotFound, AlreadyExists, Conflict, Invalid or Internal.
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Reply is the answer to get, create, update, apply and delete.
type Reply struct {
	Object json.RawMessage `json:"object,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// ListReply is the answer to list.
type ListReply struct {
	Items    []json.RawMessage `json:"items"`
	Continue string            `json:"continue,omitempty"`
	Error    *Error            `json:"error,omitempty"`
}

// WatchRequest starts a watch; events are published to the request's
// reply subject until the client stops it or stops sending keepalives.
type WatchRequest struct {
	Kind          string `json:"kind"`
	Namespace     string `json:"namespace,omitempty"`
	LabelSelector string `json:"labelSelector,omitempty"`
}

// WatchEvent is one message of a watch stream. Type is ADDED, MODIFIED,
// DELETED, SYNCED (end of the initial list) or ERROR.
type WatchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// WatchControl keeps alive or stops the watch whose events go to Inbox.
type WatchControl struct {
	Inbox string `json:"inbox"`
}

// KeepaliveEvery is how often a watching client says it is still there;
// the server drops a watch after three missed keepalives.
const KeepaliveEvery = 10 // seconds

// VersionReply answers SubjectVersion.
type VersionReply struct {
	Version    string `json:"version"`
	APIVersion string `json:"apiVersion"`
	Leader     string `json:"leader,omitempty"`
}

// Storage names outside the object bucket. Agents and the CLI use them
// directly through JetStream.
const (
	// AssignmentsBucket holds one key per bound pod, <node>.<namespace>.<pod>,
	// whose value is the pod's JSON; an agent watches <its node>.> only.
	AssignmentsBucket = "flotilla-assignments"
	// LogStream keeps container output, subject LogSubject(ns, pod, ctr),
	// header "Stream" = stdout|stderr.
	LogStream = "FLOTILLA_LOGS"
	// LogSubjects is the stream's subject space.
	LogSubjects = "flotilla.logs.>"
	// ModulesBucket is the object store of wasm modules, named by digest
	// "sha256:<hex>"; ModuleTagsBucket maps <name>.<tag> to a ModuleTag.
	ModulesBucket    = "flotilla-modules"
	ModuleTagsBucket = "flotilla-module-tags"
)

// LogSubject is where one container's output goes.
func LogSubject(ns, pod, container string) string {
	return "flotilla.logs." + ns + "." + pod + "." + container
}

// AssignmentKey is the assignments-bucket key of a pod bound to node.
func AssignmentKey(node, ns, pod string) string {
	return node + "." + ns + "." + pod
}

// ModuleTag is the value of a ModuleTagsBucket key.
type ModuleTag struct {
	Name   string `json:"name"`
	Tag    string `json:"tag"`
	Digest string `json:"digest"` // sha256:<hex>
	Size   int64  `json:"size"`
	Pushed string `json:"pushed"` // RFC 3339
}
