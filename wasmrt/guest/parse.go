package guest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
)

// readRequest parses the HTTP/1.1 requests the agent writes: a request
// line, headers, and a body framed by Content-Length (the agent never
// sends chunked bodies). It does what http.ReadRequest does for that
// subset with far less work, which matters inside wasm, where Go code runs
// several times slower than native.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	line, err := readLine(br)
	if err != nil {
		return nil, err
	}
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	uri, proto, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("malformed request line %q", line)
	}
	major, minor, ok := http.ParseHTTPVersion(string(proto))
	if !ok {
		return nil, fmt.Errorf("malformed HTTP version %q", proto)
	}
	req := &http.Request{
		Method:     string(method),
		RequestURI: string(uri),
		Proto:      string(proto),
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     make(http.Header, 8),
		Body:       http.NoBody,
	}
	if req.URL, err = url.ParseRequestURI(req.RequestURI); err != nil {
		return nil, fmt.Errorf("request URI %q: %w", req.RequestURI, err)
	}
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return nil, fmt.Errorf("malformed header line %q", line)
		}
		key := textproto.CanonicalMIMEHeaderKey(string(k))
		req.Header[key] = append(req.Header[key], string(bytes.TrimSpace(v)))
	}
	req.Host = req.Header.Get("Host")
	delete(req.Header, "Host")
	if req.Header.Get("Transfer-Encoding") != "" {
		return nil, errors.New("chunked request bodies are not expected from the agent")
	}
	if cl := req.Header.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad Content-Length %q", cl)
		}
		req.ContentLength = n
		if n > 0 {
			req.Body = io.NopCloser(io.LimitReader(br, n))
		}
	}
	return req, nil
}

// readLine returns one CRLF- or LF-terminated line without its ending.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("request line or header too long")
		}
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}
