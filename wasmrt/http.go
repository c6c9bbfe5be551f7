package wasmrt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPMode selects how an HTTP module is run.
type HTTPMode string

// HTTP modes.
const (
	// Persistent keeps a pool of long-running instances speaking HTTP/1.1
	// over stdin/stdout (see package guest).
	Persistent HTTPMode = "persistent"
	// CGI starts a fresh instance per request, WAGI style (RFC 3875).
	CGI HTTPMode = "cgi"
)

// HTTPConfig configures NewHTTPHandler.
type HTTPConfig struct {
	Mode HTTPMode // default Persistent
	// Instances is the persistent pool size; default 1.
	Instances int
	// OnInstanceExit is called when a persistent instance dies unexpectedly
	// (trap, exit, killed for exceeding a limit). The pool replaces it.
	OnInstanceExit func(err error)
	// Logger receives instance lifecycle events; default slog.Default().
	Logger *slog.Logger
}

// maxBufferedBody bounds request bodies of unknown length (chunked) that
// must be buffered to send a Content-Length to the guest, and CGI output.
const maxBufferedBody = 32 << 20

// Restart backoff for persistent instances that keep dying right away.
const (
	minBackoff    = 50 * time.Millisecond
	maxBackoff    = 5 * time.Second
	healthyUptime = 2 * time.Second
	writerGrace   = time.Second
)

// HTTPHandler serves HTTP from a module. It is an http.Handler.
type HTTPHandler struct {
	m    *Module
	spec Spec
	cfg  HTTPConfig
	log  *slog.Logger

	ctx    context.Context // cancelled by Close; parent of every instance
	cancel context.CancelFunc
	unlink func() bool    // detaches ctx from the caller's context
	wg     sync.WaitGroup // slot supervisors and instance goroutines

	pool *pool        // persistent mode only
	live atomic.Int32 // running persistent instances
}

// NewHTTPHandler returns an http.Handler the agent mounts on its own
// listener. In persistent mode the instances start now; it fails if the first
// one cannot be instantiated. ctx bounds the handler's lifetime as Close does.
func (m *Module) NewHTTPHandler(ctx context.Context, spec Spec, cfg HTTPConfig) (*HTTPHandler, error) {
	if cfg.Mode == "" {
		cfg.Mode = Persistent
	}
	if cfg.Instances <= 0 {
		cfg.Instances = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	spec.unguarded = cfg.Mode == Persistent
	h := &HTTPHandler{m: m, spec: spec, cfg: cfg,
		log: cfg.Logger.With("module", m.digest, "mode", string(cfg.Mode))}
	h.ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, h.cancel)
	h.unlink = stop
	switch cfg.Mode {
	case CGI:
		// Fail fast on specs that can never instantiate.
		if _, err := moduleConfig(spec, nil, nil); err != nil {
			stop()
			h.cancel()
			return nil, fmt.Errorf("cgi handler %s: %w", m.digest, err)
		}
		if lim := spec.Limits.MemoryBytes; lim > 0 && uint64(lim)/wasmPageSize*wasmPageSize < m.minMemBytes {
			stop()
			h.cancel()
			return nil, fmt.Errorf("cgi handler %s: %w: module needs %d bytes initially", m.digest, ErrMemoryLimit, m.minMemBytes)
		}
		return h, nil
	case Persistent:
	default:
		stop()
		h.cancel()
		return nil, fmt.Errorf("http handler %s: unknown mode %q", m.digest, cfg.Mode)
	}
	h.pool = newPool()
	first := make([]*proc, 0, cfg.Instances)
	for range cfg.Instances {
		p, err := h.startProc()
		if err != nil {
			for _, p := range first {
				p.kill(ErrClosed)
			}
			stop()
			h.cancel()
			h.wg.Wait()
			return nil, fmt.Errorf("persistent handler %s: %w", m.digest, err)
		}
		first = append(first, p)
	}
	for _, p := range first {
		h.wg.Add(1)
		go h.superviseSlot(p)
	}
	return h, nil
}

// Close stops all instances and waits for their goroutines.
func (h *HTTPHandler) Close() error {
	h.unlink()
	h.cancel()
	if h.pool != nil {
		h.pool.close()
	}
	h.wg.Wait()
	return nil
}

// Ready reports whether the handler can serve: at least one live instance in
// persistent mode, always in CGI mode (until closed).
func (h *HTTPHandler) Ready() bool {
	if h.ctx.Err() != nil {
		return false
	}
	if h.cfg.Mode == CGI {
		return true
	}
	return h.live.Load() > 0
}

// ServeHTTP implements http.Handler.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Mode == CGI {
		h.serveCGI(w, r)
		return
	}
	h.servePersistent(w, r)
}

// proc is a persistent instance: _start runs in its own goroutine with
// stdin/stdout wired to pipes.
type proc struct {
	stdinR  *io.PipeReader
	stdinW  *io.PipeWriter
	stdoutR *io.PipeReader
	stdoutW *io.PipeWriter
	br      *bufio.Reader
	bw      *bufio.Writer
	copyBuf []byte // response copy buffer; a proc serves one request at a time

	ctx     context.Context
	cancel  context.CancelCauseFunc
	started time.Time
	done    chan struct{} // closed when _start returned; err is set then
	err     error

	retired bool // set under pool.mu once the supervisor saw it die
}

// startProc instantiates one instance and runs its _start in a goroutine
// tracked by h.wg.
func (h *HTTPHandler) startProc() (*proc, error) {
	p := &proc{done: make(chan struct{}), started: time.Now()}
	p.stdinR, p.stdinW = io.Pipe()
	p.stdoutR, p.stdoutW = io.Pipe()
	p.br = bufio.NewReaderSize(p.stdoutR, 16<<10)
	p.bw = bufio.NewWriterSize(p.stdinW, 16<<10)
	p.copyBuf = make([]byte, 16<<10)
	ctx, cancel := context.WithCancelCause(h.ctx)
	p.ctx, p.cancel = ctx, cancel
	in, err := h.m.instantiate(ctx, h.spec, p.stdinR, p.stdoutW)
	if err != nil {
		cancel(err)
		return nil, err
	}
	h.live.Add(1)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer h.live.Add(-1)
		code, err := in.run(ctx, h.m.digest)
		if err == nil {
			err = fmt.Errorf("instance exited with code %d", code)
		}
		p.err = err
		cancel(err) // before closing pipes so the cause is the real exit
		p.closePipes(err)
		close(p.done)
	}()
	return p, nil
}

func (p *proc) closePipes(err error) {
	_ = p.stdinR.CloseWithError(err)
	_ = p.stdinW.CloseWithError(err)
	_ = p.stdoutR.CloseWithError(err)
	_ = p.stdoutW.CloseWithError(err)
}

// kill stops the instance: cancelling stops guest code, closing the pipes
// unblocks a guest waiting in fd_read and a host waiting on a response.
func (p *proc) kill(cause error) {
	p.cancel(cause)
	p.closePipes(cause)
}

// superviseSlot keeps one pool slot filled until the handler closes.
func (h *HTTPHandler) superviseSlot(p *proc) {
	defer h.wg.Done()
	backoff := minBackoff
	for {
		if p != nil {
			h.pool.put(p)
			select {
			case <-p.done:
			case <-h.ctx.Done():
				p.kill(ErrClosed)
				<-p.done
				return
			}
			h.pool.retire(p)
			if h.ctx.Err() != nil {
				return
			}
			h.log.Warn("wasm instance exited", "err", p.err)
			if h.cfg.OnInstanceExit != nil {
				h.cfg.OnInstanceExit(p.err)
			}
			if time.Since(p.started) > healthyUptime {
				backoff = minBackoff
			}
		}
		// Back off before every restart so a module that dies at once
		// (or fails to instantiate) does not spin.
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-h.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(backoff*2, maxBackoff)
		np, err := h.startProc()
		if err != nil {
			h.log.Error("restart wasm instance", "err", err)
			p = nil
			continue
		}
		p = np
	}
}

// pool hands idle instances to requests, FIFO for waiters.
type pool struct {
	mu      sync.Mutex
	closed  bool
	idle    []*proc
	waiters []chan *proc
}

func newPool() *pool { return &pool{} }

func (pl *pool) get(ctx context.Context) (*proc, error) {
	pl.mu.Lock()
	for len(pl.idle) > 0 {
		p := pl.idle[len(pl.idle)-1]
		pl.idle = pl.idle[:len(pl.idle)-1]
		select {
		case <-p.done:
			continue // died while idle; its supervisor replaces it
		default:
		}
		pl.mu.Unlock()
		return p, nil
	}
	if pl.closed {
		pl.mu.Unlock()
		return nil, ErrClosed
	}
	ch := make(chan *proc, 1)
	pl.waiters = append(pl.waiters, ch)
	pl.mu.Unlock()
	select {
	case p := <-ch:
		if p == nil {
			return nil, ErrClosed
		}
		return p, nil
	case <-ctx.Done():
		pl.mu.Lock()
		for i, c := range pl.waiters {
			if c == ch {
				pl.waiters = append(pl.waiters[:i], pl.waiters[i+1:]...)
				pl.mu.Unlock()
				return nil, ctx.Err()
			}
		}
		pl.mu.Unlock()
		// Lost the race: an instance was already handed over; give it back.
		if p := <-ch; p != nil {
			pl.put(p)
		}
		return nil, ctx.Err()
	}
}

func (pl *pool) put(p *proc) {
	pl.mu.Lock()
	if p.retired || pl.closed {
		pl.mu.Unlock()
		return
	}
	if len(pl.waiters) > 0 {
		ch := pl.waiters[0]
		pl.waiters = pl.waiters[1:]
		pl.mu.Unlock()
		ch <- p
		return
	}
	pl.idle = append(pl.idle, p)
	pl.mu.Unlock()
}

// retire removes a dead instance so it is never handed out again.
func (pl *pool) retire(p *proc) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	p.retired = true
	for i, q := range pl.idle {
		if q == p {
			pl.idle = append(pl.idle[:i], pl.idle[i+1:]...)
			break
		}
	}
}

func (pl *pool) close() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.closed = true
	pl.idle = nil
	for _, ch := range pl.waiters {
		ch <- nil
	}
	pl.waiters = nil
}

// hopHeaders are connection-scoped and never forwarded (RFC 9110 7.6.1).
var hopHeaders = map[string]bool{
	"Connection":          true,
	"Proxy-Connection":    true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Content-Length":      true, // rewritten explicitly
	"Host":                true, // written explicitly
}

// requestOmit is what writeRequest leaves out of the headers it copies:
// the hop headers and X-Forwarded-For, which it writes itself.
var requestOmit = func() map[string]bool {
	m := map[string]bool{"X-Forwarded-For": true}
	for k := range hopHeaders {
		m[k] = true
	}
	return m
}()

// exclude returns the headers to drop from h, including those Connection lists.
func exclude(h http.Header) map[string]bool { return excludeFrom(hopHeaders, h) }

func excludeFrom(base map[string]bool, h http.Header) map[string]bool {
	conn := h.Values("Connection")
	if len(conn) == 0 {
		return base
	}
	ex := make(map[string]bool, len(base)+len(conn))
	for k := range base {
		ex[k] = true
	}
	for _, v := range conn {
		for _, f := range bytes.Split([]byte(v), []byte(",")) {
			if name := http.CanonicalHeaderKey(string(bytes.TrimSpace(f))); name != "" {
				ex[name] = true
			}
		}
	}
	return ex
}

// requestBody returns the body and its length, buffering bodies of unknown
// length so the guest always sees Content-Length.
func requestBody(r *http.Request) (io.Reader, int64, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, 0, nil
	}
	if r.ContentLength > 0 {
		return r.Body, r.ContentLength, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBufferedBody+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read request body: %w", err)
	}
	if len(b) > maxBufferedBody {
		return nil, 0, fmt.Errorf("chunked request body over %d bytes", maxBufferedBody)
	}
	return bytes.NewReader(b), int64(len(b)), nil
}

func writeRequest(bw *bufio.Writer, r *http.Request, body io.Reader, n int64) error {
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	fmt.Fprintf(bw, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, uri, host)
	if err := r.Header.WriteSubset(bw, excludeFrom(requestOmit, r.Header)); err != nil {
		return err
	}
	if xff := forwardedFor(r); xff != "" {
		fmt.Fprintf(bw, "X-Forwarded-For: %s\r\n", xff)
	}
	fmt.Fprintf(bw, "Content-Length: %d\r\n\r\n", n)
	if body != nil {
		if _, err := io.CopyN(bw, body, n); err != nil {
			return fmt.Errorf("copy request body: %w", err)
		}
	}
	return bw.Flush()
}

// forwardedFor is the X-Forwarded-For the guest gets: what the client
// sent, with the address the request came from (r.RemoteAddr's host)
// appended as the last hop. The guest takes that last hop as its
// RemoteAddr, so a client cannot forge it.
func forwardedFor(r *http.Request) string {
	prior := strings.Join(r.Header.Values("X-Forwarded-For"), ", ")
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	v := host
	switch {
	case host == "":
		v = prior
	case prior != "":
		v = prior + ", " + host
	}
	return crlf.Replace(v) // as Header.Write does
}

var crlf = strings.NewReplacer("\r", " ", "\n", " ")

// errWriter drops writes after the first failure so the response body can
// still be drained from the instance when the client has gone.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
	return len(p), nil
}

func (h *HTTPHandler) servePersistent(w http.ResponseWriter, r *http.Request) {
	body, n, err := requestBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p, err := h.pool.get(r.Context())
	if err != nil {
		if errors.Is(err, ErrClosed) {
			http.Error(w, "wasm module: no instance available: handler closed", http.StatusServiceUnavailable)
		}
		return // client gone
	}
	var timer *time.Timer
	if lim := h.spec.Limits.CPUTime; lim > 0 {
		timer = time.AfterFunc(lim, func() {
			p.kill(fmt.Errorf("%w (%s per request)", ErrCPUTimeExceeded, lim))
		})
	}
	stopTimer := func() bool { return timer == nil || timer.Stop() }

	// The request is written concurrently with reading the response so a
	// guest that answers before reading its whole body cannot deadlock us.
	werr := make(chan error, 1)
	if n == 0 {
		// Without a body the guest reads the whole request before it can
		// answer, so writing first cannot deadlock; it saves a goroutine.
		werr <- writeRequest(p.bw, r, body, n)
	} else {
		go func() { werr <- writeRequest(p.bw, r, body, n) }()
	}

	resp, err := http.ReadResponse(p.br, r)
	if err == nil && resp.ContentLength < 0 && len(resp.TransferEncoding) == 0 && bodyAllowed(r, resp) {
		// Close-delimited bodies cannot be framed on a persistent stream.
		err = errors.New("response without Content-Length")
	}
	if err != nil {
		stopTimer()
		h.fail(w, p, err)
		<-werr
		return
	}
	for k, vs := range resp.Header {
		if !hopHeaders[k] {
			w.Header()[k] = vs
		}
	}
	if resp.ContentLength >= 0 && bodyAllowed(r, resp) {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	_, copyErr := io.CopyBuffer(&errWriter{w: w}, resp.Body, p.copyBuf)
	_ = resp.Body.Close()
	if !stopTimer() {
		copyErr = errors.Join(copyErr, errors.New("cpu time limit fired"))
	}
	if copyErr == nil {
		// The guest has normally consumed the request by now; the writer
		// only needs to be scheduled. If it stays blocked, the guest
		// answered without reading its whole request and the stream is out
		// of sync, so the instance must go.
		t := time.NewTimer(writerGrace)
		select {
		case copyErr = <-werr:
		case <-t.C:
			copyErr = errors.New("guest answered before reading its request")
		}
		t.Stop()
	}
	if copyErr != nil {
		p.kill(fmt.Errorf("persistent exchange: %w", copyErr))
		<-werr
		return
	}
	h.pool.put(p)
}

func bodyAllowed(r *http.Request, resp *http.Response) bool {
	return r.Method != http.MethodHead && resp.StatusCode >= 200 &&
		resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified
}

// fail answers a request whose instance broke, and makes sure it is killed.
func (h *HTTPHandler) fail(w http.ResponseWriter, p *proc, err error) {
	p.kill(fmt.Errorf("persistent exchange: %w", err))
	cause := context.Cause(p.ctx)
	status := http.StatusBadGateway
	if errors.Is(cause, ErrCPUTimeExceeded) {
		status = http.StatusGatewayTimeout
	}
	// The instance's own exit reason is more useful than a pipe error.
	select {
	case <-p.done:
		if p.err != nil && !errors.Is(cause, ErrCPUTimeExceeded) {
			cause = p.err
		}
	case <-time.After(100 * time.Millisecond):
		// Still shutting down; answer with what is known.
	}
	http.Error(w, "wasm module: "+cause.Error(), status)
}
