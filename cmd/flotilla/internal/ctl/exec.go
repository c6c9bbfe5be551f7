package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/wire"
)

// ExitError carries a remote process's non-zero exit code to the CLI's
// exit status.
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.Code)
}

// ExecOptions are `flotilla exec`'s arguments.
type ExecOptions struct {
	Pod, Container string
	Command        []string
	Stdin          io.Reader // nil unless -i
	TTY            bool
}

// Exec runs a command in a pod's container through its node's agent
// (flotilla.exec.<node>, see docs/api.md), streaming stdin in and output
// out. A non-zero remote exit code comes back as an *ExitError.
func Exec(ctx context.Context, e *Env, o ExecOptions) error {
	obj, err := e.Client.Get(ctx, "Pod", e.Namespace, o.Pod)
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	p := obj.(*api.Pod)
	if p.Spec.NodeName == "" {
		return fmt.Errorf("exec: pod %s is not scheduled to a node yet", o.Pod)
	}
	nc := e.Client.NC
	inbox := nats.NewInbox()
	msgs := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(inbox+".>", msgs)
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(wire.ExecRequest{Namespace: e.Namespace, Pod: o.Pod, Container: o.Container,
		Command: o.Command, Stdin: o.Stdin != nil, TTY: o.TTY, Inbox: inbox})
	resp, err := nc.RequestWithContext(ctx, wire.ExecSubject(p.Spec.NodeName), req)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("exec: the agent of node %s does not answer", p.Spec.NodeName)
		}
		return fmt.Errorf("exec: %w", err)
	}
	var rep wire.ExecReply
	if err := json.Unmarshal(resp.Data, &rep); err != nil {
		return fmt.Errorf("exec: bad reply: %w", err)
	}
	if rep.Error != "" {
		return fmt.Errorf("exec: %s", rep.Error)
	}
	if o.Stdin != nil {
		go pumpStdin(nc, inbox+".stdin", o.Stdin)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-msgs:
			switch m.Subject {
			case inbox + ".stdout":
				_, _ = e.Out.Write(m.Data)
			case inbox + ".stderr":
				_, _ = e.ErrOut.Write(m.Data)
			case inbox + ".exit":
				var ex wire.ExecExit
				if err := json.Unmarshal(m.Data, &ex); err != nil {
					return fmt.Errorf("exec: bad exit message: %w", err)
				}
				if ex.Error != "" {
					return fmt.Errorf("exec: %s", ex.Error)
				}
				if ex.Code != 0 {
					return &ExitError{Code: ex.Code}
				}
				return nil
			}
		case <-time.After(24 * time.Hour):
			return errors.New("exec: no output for 24h")
		}
	}
}

// pumpStdin sends stdin in chunks, then an end-of-file marker.
func pumpStdin(nc *nats.Conn, subject string, in io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			_ = nc.Publish(subject, append([]byte(nil), buf[:n]...))
		}
		if err != nil {
			break
		}
	}
	m := nats.NewMsg(subject)
	m.Header.Set("Eof", "1")
	_ = nc.PublishMsg(m)
	_ = nc.Flush()
}
