package edgeagent

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api/wire"
)

// maxLine caps one shipped log line; longer output is split.
const maxLine = 16 << 10

// logLine is one line of container output on its way to the log stream.
type logLine struct {
	subject string
	stream  string // stdout or stderr
	data    []byte
}

// shipper publishes container output to the log stream from a buffer, so a
// slow or absent NATS never blocks a module; lines that do not fit are
// dropped and counted.
type shipper struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	lines   chan logLine
	dropped atomic.Int64
}

func newShipper(nc *nats.Conn, js jetstream.JetStream, log *slog.Logger) *shipper {
	return &shipper{nc: nc, js: js, log: log, lines: make(chan logLine, 4096)}
}

// ensureStream creates the log stream, retrying until NATS answers.
func (s *shipper) ensureStream(ctx context.Context) {
	bo := newBackoff(500*time.Millisecond, 30*time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := s.js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{
			Name:     wire.LogStream,
			Subjects: []string{wire.LogSubjects},
			MaxAge:   72 * time.Hour,
			MaxBytes: 256 << 20,
			Discard:  jetstream.DiscardOld,
			Storage:  jetstream.FileStorage,
		})
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Warn("create log stream", "err", err)
		if !sleepCtx(ctx, bo.next()) {
			return
		}
	}
}

// run publishes lines until ctx ends, then drains what is buffered.
func (s *shipper) run(ctx context.Context) {
	for {
		select {
		case l := <-s.lines:
			s.publish(l)
		case <-ctx.Done():
			for {
				select {
				case l := <-s.lines:
					s.publish(l)
				default:
					if s.nc.IsConnected() {
						_ = s.nc.FlushTimeout(2 * time.Second)
					}
					if n := s.dropped.Load(); n > 0 {
						s.log.Warn("log lines dropped", "count", n)
					}
					return
				}
			}
		}
	}
}

func (s *shipper) publish(l logLine) {
	m := nats.NewMsg(l.subject)
	m.Header.Set("Stream", l.stream)
	m.Data = l.data
	// Core publish: the stream captures the subject, and the connection
	// buffers while reconnecting instead of blocking on acks.
	if err := s.nc.PublishMsg(m); err != nil {
		s.dropped.Add(1)
	}
}

func (s *shipper) send(l logLine) {
	select {
	case s.lines <- l:
	default:
		s.dropped.Add(1)
	}
}

// writer returns an io.WriteCloser that ships each line written to it.
func (s *shipper) writer(ns, pod, container, stream string) *lineWriter {
	return &lineWriter{s: s, subject: wire.LogSubject(ns, pod, container), stream: stream}
}

// lineWriter splits a module's output into lines.
type lineWriter struct {
	s       *shipper
	subject string
	stream  string
	mu      sync.Mutex
	buf     []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) >= maxLine {
				w.emit(w.buf[:maxLine])
				w.buf = w.buf[maxLine:]
				continue
			}
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) == 0 {
		w.buf = nil // let a large buffer go
	}
	return len(p), nil
}

func (w *lineWriter) emit(b []byte) {
	w.s.send(logLine{subject: w.subject, stream: w.stream, data: bytes.Clone(b)})
}

// Close ships a trailing partial line.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
	return nil
}
