// Package flotillahttp lets a Go wasm pod (GOOS=wasip1) make outbound HTTP
// requests and publish NATS messages through the Flotilla agent's
// "flotilla" host module: wazero gives guests no usable network, so the
// agent makes the connection for them. Service names (NAME, NAME.NAMESPACE,
// NAME.NAMESPACE.svc.cluster.local) work as hosts.
//
//	client := &http.Client{Transport: flotillahttp.Transport{}}
//	resp, err := client.Get("http://backend/")
//
// The agent bounds every request by its own timeout and size limits; a
// request's context cannot cancel a call already in the host.
package flotillahttp

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"

	"github.com/flotilla-edge/flotilla/wasmrt/hostcall/abi"
)

// Error is a failure reported by the host, one of the abi.Err codes.
type Error struct{ Code int64 }

func (e *Error) Error() string {
	if m, ok := abi.Messages[e.Code]; ok {
		return "flotilla host call: " + m
	}
	return fmt.Sprintf("flotilla host call: error %d", e.Code)
}

// Is matches errors with the same code, so errors.Is(err, ErrDenied) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errors to test for with errors.Is.
var (
	ErrDenied   = &Error{Code: abi.ErrDenied}
	ErrResolve  = &Error{Code: abi.ErrResolve}
	ErrTimeout  = &Error{Code: abi.ErrTimeout}
	ErrTooLarge = &Error{Code: abi.ErrTooLarge}
	ErrSubject  = &Error{Code: abi.ErrSubject}
)

func codeError(code int64) error { return &Error{Code: code} }

// Transport is an http.RoundTripper that sends requests through the host.
type Transport struct{}

// RoundTrip implements http.RoundTripper.
func (Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var buf bytes.Buffer
	// WriteProxy puts the absolute URL on the request line, so the host
	// learns scheme, host and port from it. It also closes req.Body, as a
	// RoundTripper must.
	if err := req.WriteProxy(&buf); err != nil {
		return nil, fmt.Errorf("flotillahttp: serialize %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	out, err := exchange(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), req)
	if err != nil {
		return nil, fmt.Errorf("flotillahttp: parse response to %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	return resp, nil
}

// Client is an http.Client using Transport; it follows redirects itself,
// each hop being a new host call checked by the agent's policy.
var Client = &http.Client{Transport: Transport{}}

// Get is Client.Get.
func Get(url string) (*http.Response, error) { return Client.Get(url) }

// Publish sends data on a NATS subject through the agent's connection. The
// subject must start with "flotilla.apps.<the pod's namespace>.".
func Publish(subject string, data []byte) error {
	if err := publish(subject, data); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}
