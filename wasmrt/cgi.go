package wasmrt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// limitedBuffer collects CGI output up to a bound, so a runaway guest cannot
// exhaust host memory.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

var errOutputTooLarge = errors.New("cgi output too large")

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.buf.Len()+len(p) > l.max {
		return 0, errOutputTooLarge
	}
	return l.buf.Write(p)
}

// cgiEnv builds the RFC 3875 meta-variables for r, then spec.Env, which
// may override them.
func cgiEnv(r *http.Request, n int64, extra []string) []string {
	host, port := r.Host, "80"
	if r.TLS != nil {
		port = "443"
	}
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		host, port = h, p
	} else if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(la.String()); err == nil {
			port = p
		}
	}
	remoteHost, remotePort, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		remoteHost = r.RemoteAddr
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	env := []string{
		"GATEWAY_INTERFACE=CGI/1.1",
		"SERVER_SOFTWARE=flotilla-wasmrt",
		"SERVER_NAME=" + host,
		"SERVER_PORT=" + port,
		"SERVER_PROTOCOL=" + r.Proto,
		"REQUEST_METHOD=" + r.Method,
		"REQUEST_URI=" + uri,
		"SCRIPT_NAME=",
		"PATH_INFO=" + r.URL.Path,
		"QUERY_STRING=" + r.URL.RawQuery,
		"REMOTE_ADDR=" + remoteHost,
		"REMOTE_HOST=" + remoteHost,
		"HTTP_HOST=" + r.Host,
	}
	if remotePort != "" {
		env = append(env, "REMOTE_PORT="+remotePort)
	}
	if r.TLS != nil {
		env = append(env, "HTTPS=on")
	}
	if n > 0 {
		env = append(env, "CONTENT_LENGTH="+strconv.FormatInt(n, 10))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		env = append(env, "CONTENT_TYPE="+ct)
	}
	ex := exclude(r.Header)
	for k, vs := range r.Header {
		if ex[k] || k == "Content-Type" || k == "Proxy" { // Proxy: httpoxy
			continue
		}
		name := "HTTP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		sep := ", "
		if k == "Cookie" {
			sep = "; "
		}
		env = append(env, name+"="+strings.Join(vs, sep))
	}
	return append(env, extra...)
}

func (h *HTTPHandler) serveCGI(w http.ResponseWriter, r *http.Request) {
	if h.ctx.Err() != nil {
		http.Error(w, "wasm module: handler closed", http.StatusServiceUnavailable)
		return
	}
	body, n, err := requestBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if body == nil {
		body = bytes.NewReader(nil)
	} else {
		body = io.LimitReader(body, n)
	}
	spec := h.spec
	spec.Env = cgiEnv(r, n, h.spec.Env)
	out := &limitedBuffer{max: maxBufferedBody}
	// Stop the instance when the client goes or the handler closes.
	ctx, cancel := mergeCancel(r.Context(), h.ctx)
	defer cancel()
	spec.Stdout = out
	code, err := h.m.run(ctx, spec, body)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, ErrCPUTimeExceeded) {
			status = http.StatusGatewayTimeout
		}
		http.Error(w, "wasm module: "+err.Error(), status)
		return
	}
	status, hdr, rest, perr := parseCGI(out.buf.Bytes())
	if perr != nil {
		msg := perr.Error()
		if code != 0 {
			msg = fmt.Sprintf("exit code %d: %s", code, msg)
		}
		http.Error(w, "wasm module: "+msg, http.StatusBadGateway)
		return
	}
	for k, vs := range hdr {
		if !hopHeaders[k] {
			w.Header()[k] = vs
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(rest)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(rest)
	}
}

// parseCGI splits CGI output into status, headers and body (RFC 3875 6).
func parseCGI(out []byte) (int, http.Header, []byte, error) {
	if len(out) == 0 {
		return 0, nil, nil, errors.New("no cgi output")
	}
	src := bytes.NewReader(out)
	br := bufio.NewReader(src)
	mh, err := textproto.NewReader(br).ReadMIMEHeader()
	if err != nil {
		return 0, nil, nil, fmt.Errorf("bad cgi header: %w", err)
	}
	hdr := http.Header(mh)
	status := http.StatusOK
	if s := hdr.Get("Status"); s != "" {
		code, _, _ := strings.Cut(s, " ")
		status, err = strconv.Atoi(code)
		if err != nil || status < 100 || status > 999 {
			return 0, nil, nil, fmt.Errorf("bad cgi status %q", s)
		}
		hdr.Del("Status")
	} else if hdr.Get("Location") != "" {
		status = http.StatusFound
	}
	consumed := len(out) - src.Len() - br.Buffered()
	return status, hdr, out[consumed:], nil
}

// mergeCancel returns a context derived from a that is also cancelled when b
// is done.
func mergeCancel(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}
