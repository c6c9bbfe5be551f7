package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api/wire"
)

// Logs writes a container's output from the log stream to w, one line per
// message. container "" means every container of the pod. tail < 0 prints
// the whole history, otherwise its last tail lines. Without follow Logs
// returns once it has caught up with the stream; with follow it keeps
// printing until ctx ends.
func (c *Client) Logs(ctx context.Context, ns, pod, container string, tail int, follow bool, w io.Writer) error {
	if container == "" {
		container = "*"
	}
	subject := wire.LogSubject(ns, pod, container)
	js, err := jetstream.New(c.NC)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	stream, err := js.Stream(ctx, wire.LogStream)
	if err != nil {
		return fmt.Errorf("logs: open stream %s: %w", wire.LogStream, err)
	}
	// Count what is stored for the pod first: an ordered consumer gives no
	// sign when nothing matches, and without follow we must not wait.
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return fmt.Errorf("logs: stream info: %w", err)
	}
	var stored uint64
	for _, n := range info.State.Subjects {
		stored += n
	}
	if stored == 0 && !follow {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("logs: consumer: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("logs: consume: %w", err)
	}
	defer it.Stop()

	t := newTail(tail)
	caughtUp := stored == 0
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				// Interrupting a follow is the normal way to end it.
				if follow && !caughtUp {
					return t.flush(w)
				}
				return nil
			}
			return fmt.Errorf("logs: %w", err)
		}
		line := msg.Data()
		if len(line) == 0 || line[len(line)-1] != '\n' {
			line = append(line, '\n')
		}
		if caughtUp {
			if _, err := w.Write(line); err != nil {
				return err
			}
			continue
		}
		t.add(line)
		md, err := msg.Metadata()
		if err != nil || md.NumPending > 0 {
			continue
		}
		caughtUp = true
		if err := t.flush(w); err != nil {
			return err
		}
		if !follow {
			return nil
		}
	}
}

// tailBuf keeps the last n lines (all when n < 0) until the reader has
// caught up with the stream; with n >= 0 it is a ring so a long history
// costs O(n) memory.
type tailBuf struct {
	n     int
	lines [][]byte
	next  int // ring position of the oldest line once full
}

func newTail(n int) *tailBuf { return &tailBuf{n: n} }

func (t *tailBuf) add(line []byte) {
	switch {
	case t.n == 0:
	case t.n < 0 || len(t.lines) < t.n:
		t.lines = append(t.lines, line)
	default:
		t.lines[t.next] = line
		t.next = (t.next + 1) % t.n
	}
}

func (t *tailBuf) flush(w io.Writer) error {
	for i := range t.lines {
		if _, err := w.Write(t.lines[(t.next+i)%len(t.lines)]); err != nil {
			return err
		}
	}
	t.lines, t.next = nil, 0
	return nil
}
