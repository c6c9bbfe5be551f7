package hostcall

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/flotilla-edge/flotilla/wasmrt/hostcall/abi"
)

// httpRequest implements http_request(req_ptr, req_len, resp_ptr, resp_cap) -> i64.
func (h *Host) httpRequest(ctx context.Context, mod api.Module, stack []uint64) {
	reqPtr, reqLen := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	respPtr, respCap := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	h.dropPending(mod) // a new request abandons an unfetched response
	out, err := h.doHTTP(ctx, mod, reqPtr, reqLen)
	if err != nil {
		stack[0] = api.EncodeI64(h.codeOf(ctx, abi.FuncHTTPRequest, err))
		return
	}
	stack[0] = api.EncodeI64(h.deliver(ctx, mod, out, respPtr, respCap))
}

// httpResponse implements http_response(resp_ptr, resp_cap) -> i64.
func (h *Host) httpResponse(ctx context.Context, mod api.Module, stack []uint64) {
	respPtr, respCap := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	h.mu.Lock()
	p, ok := h.pending[mod]
	delete(h.pending, mod)
	h.mu.Unlock()
	if !ok {
		stack[0] = api.EncodeI64(abi.ErrNoPending)
		return
	}
	stack[0] = api.EncodeI64(h.deliver(ctx, mod, p.b, respPtr, respCap))
}

// deliver writes out to the guest if it fits, else keeps it for
// http_response; it returns the ABI result.
func (h *Host) deliver(ctx context.Context, mod api.Module, out []byte, ptr, capacity uint32) int64 {
	if uint64(len(out)) > uint64(capacity) {
		h.mu.Lock()
		now := time.Now()
		for m, p := range h.pending {
			if now.Sub(p.at) > pendingTTL {
				delete(h.pending, m)
			}
		}
		h.pending[mod] = pendingResp{b: out, at: now}
		h.mu.Unlock()
		return int64(len(out))
	}
	if !mod.Memory().Write(ptr, out) {
		return h.codeOf(ctx, abi.FuncHTTPRequest, fail(abi.ErrMemory, "write %d bytes at %#x", len(out), ptr))
	}
	return int64(len(out))
}

func (h *Host) dropPending(mod api.Module) {
	h.mu.Lock()
	delete(h.pending, mod)
	h.mu.Unlock()
}

// doHTTP parses the guest's request, checks and resolves its destination,
// performs it and returns the serialized response.
func (h *Host) doHTTP(ctx context.Context, mod api.Module, ptr, n uint32) ([]byte, error) {
	if uint64(n) > uint64(h.cfg.MaxRequestBytes) {
		return nil, fail(abi.ErrTooLarge, "request of %d bytes, limit %d", n, h.cfg.MaxRequestBytes)
	}
	raw, err := read(mod, ptr, n)
	if err != nil {
		return nil, err
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, fail(abi.ErrBadRequest, "parse request: %w", err)
	}
	if (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return nil, fail(abi.ErrBadRequest, "request target %q is not an absolute http(s) URL", req.RequestURI)
	}
	req.RequestURI = "" // set by ReadRequest; a client request must not carry it
	host := req.URL.Hostname()
	port := 80
	if req.URL.Scheme == "https" {
		port = 443
	}
	if p := req.URL.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, fail(abi.ErrBadRequest, "bad port %q", p)
		}
	}
	caller, _ := CallerFrom(ctx)
	if h.cfg.Allow != nil {
		if err := h.cfg.Allow(ctx, caller, host, port); err != nil {
			return nil, fail(abi.ErrDenied, "%s:%d: %w", host, port, err)
		}
	}
	if h.cfg.Resolve != nil {
		addr, ok, err := h.cfg.Resolve(ctx, caller, host, port)
		if err != nil {
			return nil, fail(abi.ErrResolve, "%s: %w", host, err)
		}
		if ok {
			// Dial the resolved address but keep the Host header the pod
			// wrote, so virtual hosting on the backend still works.
			if req.Host == "" {
				req.Host = req.URL.Host
			}
			req.URL.Host = addr
		}
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	resp, err := h.cfg.Transport.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, h.transportError(ctx, req, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(h.cfg.MaxResponseBytes)+1))
	if err != nil {
		return nil, h.transportError(ctx, req, err)
	}
	if len(body) > h.cfg.MaxResponseBytes {
		return nil, fail(abi.ErrTooLarge, "response body from %s exceeds %d bytes", req.URL.Host, h.cfg.MaxResponseBytes)
	}
	return serializeResponse(resp, body)
}

func (h *Host) transportError(ctx context.Context, req *http.Request, err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && !dnsErr.IsTimeout {
		return fail(abi.ErrResolve, "%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fail(abi.ErrTimeout, "%s %s after %s: %w", req.Method, req.URL.Redacted(), h.cfg.Timeout, err)
	}
	return fail(abi.ErrConnect, "%s %s: %w", req.Method, req.URL.Redacted(), err)
}

// serializeResponse writes resp as HTTP/1.1 with a Content-Length body,
// which is what the guest's http.ReadResponse expects.
func serializeResponse(resp *http.Response, body []byte) ([]byte, error) {
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.TransferEncoding = nil
	resp.Close = false
	resp.Header.Del("Connection")
	resp.Header.Del("Transfer-Encoding")
	// Rewrite the version: an HTTP/2 response would serialize as HTTP/2.0.
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	var buf bytes.Buffer
	buf.Grow(len(body) + 512)
	if err := resp.Write(&buf); err != nil {
		return nil, fail(abi.ErrConnect, "serialize response: %w", err)
	}
	return buf.Bytes(), nil
}
