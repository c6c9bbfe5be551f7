// Package abi holds the constants of the "flotilla" host module ABI shared
// by the host (package hostcall) and guests (package flotillahttp). It has
// no dependencies so it compiles for GOOS=wasip1 too.
//
// All functions take and return plain wasm integers; pointers are offsets
// into the guest's linear memory (i32), lengths are i32.
//
//	http_request(req_ptr, req_len, resp_ptr, resp_cap i32) -> i64
//	    req is an HTTP/1.1 request in absolute form ("GET http://host/path
//	    HTTP/1.1", as net/http's Request.WriteProxy writes it) with its body.
//	    n >= 0: the response is n bytes of HTTP/1.1 (status line, headers,
//	    Content-Length body). If n <= resp_cap it was written at resp_ptr;
//	    otherwise nothing was written and the host keeps the response for
//	    http_response. n < 0: one of the Err codes below.
//	http_response(resp_ptr, resp_cap i32) -> i64
//	    fetches the response kept by the last http_request of this
//	    instance; same return convention (n > resp_cap: still kept).
//	nats_publish(subject_ptr, subject_len, data_ptr, data_len i32) -> i32
//	    0, or a negative Err code. The subject must start with
//	    SubjectPrefix(<the pod's namespace>).
package abi

// ModuleName is the import module name guests use.
const ModuleName = "flotilla"

// Function names exported by the host module.
const (
	FuncHTTPRequest  = "http_request"
	FuncHTTPResponse = "http_response"
	FuncNATSPublish  = "nats_publish"
)

// Functions lists every function the host module exports.
var Functions = []string{FuncHTTPRequest, FuncHTTPResponse, FuncNATSPublish}

// Error codes returned (negated) by host functions.
const (
	ErrBadRequest    = -1  // the request bytes are not an absolute-form HTTP/1.1 request
	ErrDenied        = -2  // the policy hook refused the destination
	ErrResolve       = -3  // the host name could not be resolved (no such service, no ready endpoint)
	ErrConnect       = -4  // connecting or talking to the destination failed
	ErrTimeout       = -5  // the per-call timeout passed
	ErrTooLarge      = -6  // the request or response exceeds the host's limit
	ErrNoPending     = -7  // http_response without a kept response
	ErrMemory        = -8  // a pointer/length pair is outside the guest's memory
	ErrSubject       = -9  // the NATS subject is malformed or outside the pod's prefix
	ErrPublish       = -10 // NATS refused the message or is not connected
	ErrNotConfigured = -11 // the agent has not enabled this host call
)

// Messages describes the error codes.
var Messages = map[int64]string{
	ErrBadRequest:    "bad request",
	ErrDenied:        "destination denied by policy",
	ErrResolve:       "cannot resolve host",
	ErrConnect:       "connection failed",
	ErrTimeout:       "timeout",
	ErrTooLarge:      "message too large",
	ErrNoPending:     "no pending response",
	ErrMemory:        "memory access out of range",
	ErrSubject:       "subject not allowed",
	ErrPublish:       "publish failed",
	ErrNotConfigured: "host call not configured",
}

// SubjectPrefix is the only subject space a pod of namespace ns may
// publish to: pods cannot reach the API (flotilla.api.>) or other
// namespaces' subjects through the agent's connection.
func SubjectPrefix(ns string) string { return "flotilla.apps." + ns + "." }
