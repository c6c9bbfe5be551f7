// Package guest is the guest side of the Flotilla HTTP module protocol. It is
// meant for Go programs built with GOOS=wasip1 GOARCH=wasm and run by wasmrt,
// but it only uses the standard library and compiles on any platform.
package guest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"strconv"
	"strings"
)

// Serve runs h as a Flotilla HTTP module. When REQUEST_METHOD is set in the
// environment the host runs the module in CGI mode (one instance per request)
// and Serve delegates to net/http/cgi. Otherwise it runs the persistent
// protocol: read HTTP/1.1 requests from stdin, answer each with one HTTP/1.1
// response carrying Content-Length on stdout, and return nil at stdin EOF.
func Serve(h http.Handler) error {
	if os.Getenv("REQUEST_METHOD") != "" {
		return cgi.Serve(h)
	}
	return ServeStream(h, os.Stdin, os.Stdout)
}

// ServeStream runs the persistent protocol over in and out. Exposed so the
// protocol can be exercised without a wasm runtime.
func ServeStream(h http.Handler, in io.Reader, out io.Writer) error {
	br := bufio.NewReader(in)
	bw := bufio.NewWriter(out)
	rec := &recorder{}
	for {
		req, err := readRequest(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read request: %w", err)
		}
		// The host appends the address the request came from as the
		// last hop of X-Forwarded-For; earlier hops are the client's say.
		if xff := req.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			req.RemoteAddr = strings.TrimSpace(last)
		}
		rec.reset()
		// No recover: a panicking handler kills the instance and the host
		// replaces it, which is safer than serving from corrupted state.
		h.ServeHTTP(rec, req)
		// The host writes the whole request before it reads the response,
		// so unread body bytes must be consumed to keep the stream framed.
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return fmt.Errorf("drain request body: %w", err)
		}
		_ = req.Body.Close()
		if err := rec.writeTo(bw, req.Method); err != nil {
			return fmt.Errorf("write response: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("flush response: %w", err)
		}
	}
}

// recorder is an in-memory http.ResponseWriter reused across requests.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) reset() {
	// Reused: allocation is dear inside wasm, and a handler may not keep
	// its response headers past ServeHTTP.
	if r.header == nil {
		r.header = make(http.Header)
	}
	clear(r.header)
	r.status = 0
	r.body.Reset()
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status != 0 || code < 200 {
		return // first final status wins; informational codes are dropped
	}
	r.status = code
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.body.Write(p)
}

func (r *recorder) writeTo(w *bufio.Writer, method string) error {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	bodyAllowed := r.status != http.StatusNoContent && r.status != http.StatusNotModified
	r.header.Del("Transfer-Encoding")
	r.header.Del("Connection")
	if bodyAllowed {
		if r.header.Get("Content-Type") == "" && r.body.Len() > 0 {
			r.header.Set("Content-Type", http.DetectContentType(r.body.Bytes()))
		}
		r.header.Set("Content-Length", strconv.Itoa(r.body.Len()))
	} else {
		r.header.Del("Content-Length")
	}
	// Written by hand: Header.Write sorts and sanitizes through a
	// strings.Replacer, which is costly inside wasm; the agent parses the
	// result with http.ReadResponse, which needs no order.
	w.WriteString("HTTP/1.1 ")
	w.WriteString(strconv.Itoa(r.status))
	w.WriteByte(' ')
	w.WriteString(http.StatusText(r.status))
	w.WriteString("\r\n")
	for k, vs := range r.header {
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(headerValue(v))
			w.WriteString("\r\n")
		}
	}
	if _, err := w.WriteString("\r\n"); err != nil {
		return err
	}
	if bodyAllowed && method != http.MethodHead {
		if _, err := w.Write(r.body.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// headerValue keeps a value on one line, as Header.Write does.
func headerValue(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			return strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		}
	}
	return v
}
