package edgeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla-edge/flotilla/api/wire"
)

// execIdle ends a session whose process produces nothing and whose client
// sends nothing for this long, so an abandoned session cannot leak.
var execIdle = 30 * time.Minute

// serveExec answers exec requests on flotilla.exec.<node> until ctx ends
// (docs/api.md describes the protocol).
func (a *Agent) serveExec(ctx context.Context) {
	sub, err := a.nc.Subscribe(wire.ExecSubject(a.cfg.Name), func(m *nats.Msg) {
		var req wire.ExecRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			replyJSON(m, wire.ExecReply{Error: fmt.Sprintf("bad exec request: %v", err)})
			return
		}
		a.wg.Go(func() { a.execSession(ctx, m, req) })
	})
	if err != nil {
		a.log.Error("subscribe to exec requests", "err", err)
		return
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
}

func replyJSON(m *nats.Msg, v any) {
	b, _ := json.Marshal(v)
	_ = m.Respond(b)
}

// findContainer returns the runner of pod ns/name and the index of its
// container (the first when container is empty).
func (a *Agent) findContainer(ns, name, container string) (*podRunner, int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.running {
		if r.pod.Namespace != ns || r.pod.Name != name {
			continue
		}
		for i, c := range r.pod.Spec.Containers {
			if container == "" || c.Name == container {
				return r, i, nil
			}
		}
		return nil, 0, fmt.Errorf("container %s is not valid for pod %s/%s", container, ns, name)
	}
	return nil, 0, fmt.Errorf("pod %s/%s is not running on node %s", ns, name, a.cfg.Name)
}

// execSession runs one exec: accept or refuse, stream stdin in and output
// out, and end with the exit code.
func (a *Agent) execSession(ctx context.Context, m *nats.Msg, req wire.ExecRequest) {
	if req.Inbox == "" || len(req.Command) == 0 {
		replyJSON(m, wire.ExecReply{Error: "exec request needs an inbox and a command"})
		return
	}
	r, i, err := a.findContainer(req.Namespace, req.Pod, req.Container)
	if err != nil {
		replyJSON(m, wire.ExecReply{Error: err.Error()})
		return
	}
	rt := runtimes[r.pod.Spec.Containers[i].Runtime]
	if rt == nil {
		replyJSON(m, wire.ExecReply{Error: "unknown runtime"})
		return
	}
	if _, ok := rt.(wasmRuntime); ok {
		replyJSON(m, wire.ExecReply{Error: errExecWasm.Error()})
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stdin io.Reader
	if req.Stdin {
		pr, pw := io.Pipe()
		stdin = pr
		var once sync.Once
		closeIn := func() { once.Do(func() { pw.Close() }) }
		defer closeIn()
		sub, err := a.nc.Subscribe(req.Inbox+".stdin", func(msg *nats.Msg) {
			if msg.Header.Get("Eof") != "" {
				closeIn()
				return
			}
			_, _ = pw.Write(msg.Data)
		})
		if err != nil {
			replyJSON(m, wire.ExecReply{Error: fmt.Sprintf("subscribe stdin: %v", err)})
			return
		}
		defer sub.Unsubscribe()
		_ = a.nc.Flush() // the subscription is live before the client sends
	}
	replyJSON(m, wire.ExecReply{})
	out := &pubWriter{nc: a.nc, subject: req.Inbox + ".stdout"}
	errw := &pubWriter{nc: a.nc, subject: req.Inbox + ".stderr"}
	r.log.Info("exec", "container", r.pod.Spec.Containers[i].Name, "command", req.Command)
	tctx, tcancel := context.WithTimeout(sctx, execIdle)
	defer tcancel()
	code, err := rt.exec(tctx, r, i, req.Command, stdin, out, errw, req.TTY)
	exit := wire.ExecExit{Code: code}
	if err != nil {
		exit.Error = err.Error()
	}
	b, _ := json.Marshal(exit)
	_ = a.nc.Publish(req.Inbox+".exit", b)
	_ = a.nc.Flush()
}

// pubWriter publishes each write as one message; NATS keeps a publisher's
// messages in order, so output arrives before the exit message.
type pubWriter struct {
	nc      *nats.Conn
	subject string
}

func (w *pubWriter) Write(p []byte) (int, error) {
	const chunk = 64 << 10
	for off := 0; off < len(p); off += chunk {
		end := min(off+chunk, len(p))
		if err := w.nc.Publish(w.subject, append([]byte(nil), p[off:end]...)); err != nil {
			return off, err
		}
	}
	return len(p), nil
}
