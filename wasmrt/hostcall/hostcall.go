// Package hostcall is the "flotilla" host module that wasm pods import to act
// as clients: outbound HTTP through the agent (service names resolved by
// the cluster DNS view, destinations checked by a policy hook) and NATS
// publishes on the pod's own subject space. The ABI is in package abi.
package hostcall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/flotilla-edge/flotilla/wasmrt/hostcall/abi"
)

// Caller identifies the pod an instance belongs to, so resolution and
// policy can decide per pod.
type Caller struct {
	Namespace string
	Pod       string
}

type callerKey struct{}

// WithCaller attaches the caller to the context a guest function runs
// under; host functions read it back.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller attached by WithCaller.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// ResolveFunc maps a URL's host and port, as the pod wrote them, to the
// "host:port" to dial. ok false means "not a cluster name": the host is
// dialled as written, through the node's resolver.
type ResolveFunc func(ctx context.Context, c Caller, host string, port int) (addr string, ok bool, err error)

// AllowFunc decides whether the pod may reach host:port (the URL's host as
// written, before resolution). A non-nil error denies. NetworkPolicy plugs
// in here.
type AllowFunc func(ctx context.Context, c Caller, host string, port int) error

// PublishFunc publishes one NATS message (the agent passes its
// connection's Publish).
type PublishFunc func(subject string, data []byte) error

// Config configures New. Zero values get the documented defaults.
type Config struct {
	Resolve ResolveFunc // nil: every host goes to the node's resolver
	Allow   AllowFunc   // nil: every destination is allowed
	Publish PublishFunc // nil: nats_publish returns ErrNotConfigured
	// Timeout bounds one http_request (connect, request, whole response);
	// default 10s.
	Timeout time.Duration
	// MaxRequestBytes bounds an HTTP request (head and body) and a NATS
	// message; default 1 MiB.
	MaxRequestBytes int
	// MaxResponseBytes bounds an HTTP response body; default 4 MiB.
	MaxResponseBytes int
	// Transport carries the requests; default a keep-alive transport of
	// the host's own. Its connections are keyed by the resolved address,
	// never by a name relative to a namespace.
	Transport http.RoundTripper
	Log       *slog.Logger
}

// Host implements the host module. One Host serves every instance of a
// runtime; per-pod state comes from the call's context (WithCaller).
type Host struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// pending holds a response too large for the guest's buffer until the
	// guest fetches it with http_response, keyed by the calling instance.
	// A guest instance makes one host call at a time (wasm is single
	// threaded), so one slot per instance is enough.
	pending map[api.Module]pendingResp
}

type pendingResp struct {
	b  []byte
	at time.Time
}

// pendingTTL drops responses a guest never fetched (it died, or ignored
// the size): they would otherwise pin memory.
const pendingTTL = 30 * time.Second

// New returns a Host.
func New(cfg Config) *Host {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 1 << 20
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 4 << 20
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        100,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     60 * time.Second,
			TLSHandshakeTimeout: 5 * time.Second,
			// No proxy from the agent's environment: pods' traffic must go
			// where the resolver and policy said.
			Proxy: nil,
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Host{cfg: cfg, log: cfg.Log.With("component", "hostcall"), pending: map[api.Module]pendingResp{}}
}

// Instantiate registers the "flotilla" host module in rt; modules importing
// it must be instantiated in the same runtime afterwards.
func (h *Host) Instantiate(ctx context.Context, rt wazero.Runtime) error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	_, err := rt.NewHostModuleBuilder(abi.ModuleName).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(h.httpRequest), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}).
		WithParameterNames("req_ptr", "req_len", "resp_ptr", "resp_cap").
		Export(abi.FuncHTTPRequest).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(h.httpResponse), []api.ValueType{i32, i32}, []api.ValueType{i64}).
		WithParameterNames("resp_ptr", "resp_cap").
		Export(abi.FuncHTTPResponse).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(h.natsPublish), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("subject_ptr", "subject_len", "data_ptr", "data_len").
		Export(abi.FuncNATSPublish).
		Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("instantiate host module %s: %w", abi.ModuleName, err)
	}
	return nil
}

// Close drops kept responses and idle connections.
func (h *Host) Close() {
	h.mu.Lock()
	clear(h.pending)
	h.mu.Unlock()
	if t, ok := h.cfg.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// callError carries an ABI error code with the cause, for logs.
type callError struct {
	code int64
	err  error
}

func (e *callError) Error() string { return fmt.Sprintf("%s: %v", abi.Messages[e.code], e.err) }
func (e *callError) Unwrap() error { return e.err }

func fail(code int64, format string, args ...any) error {
	return &callError{code: code, err: fmt.Errorf(format, args...)}
}

// codeOf turns an error into its ABI code, logging the cause since the
// guest only sees the number.
func (h *Host) codeOf(ctx context.Context, fn string, err error) int64 {
	var ce *callError
	code := int64(abi.ErrConnect)
	if errors.As(err, &ce) {
		code = ce.code
	}
	c, _ := CallerFrom(ctx)
	h.log.Debug("host call failed", "func", fn, "ns", c.Namespace, "pod", c.Pod, "code", code, "err", err)
	return code
}

// read copies a guest memory range.
func read(mod api.Module, ptr, n uint32) ([]byte, error) {
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		return nil, fail(abi.ErrMemory, "read %d bytes at %#x", n, ptr)
	}
	return append([]byte(nil), b...), nil
}
