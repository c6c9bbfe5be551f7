// Package client is the Go client of Flotilla's NATS API, used by the CLI
// and the edge agent. Any NATS client can do the same by following
// docs/api.md.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/wire"
)

// Client talks to a fleet through NATS.
type Client struct {
	NC *nats.Conn
}

// Connect dials the fleet's NATS; token may be empty.
func Connect(url, token, name string) (*Client, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond)}
	if token != "" {
		opts = append(opts, nats.Token(token))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to fleet at %s: %w", url, err)
	}
	return &Client{NC: nc}, nil
}

// New wraps an existing connection.
func New(nc *nats.Conn) *Client { return &Client{NC: nc} }

// Close closes the connection.
func (c *Client) Close() { c.NC.Close() }

func (c *Client) request(ctx context.Context, subject string, req, reply any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	m, err := c.NC.RequestWithContext(ctx, subject, b)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("%s: no flotilla server is answering on this NATS", subject)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", subject, err)
	}
	return json.Unmarshal(m.Data, reply)
}

func fromWire(e *wire.Error) error {
	if e == nil {
		return nil
	}
	return api.ErrorFromCode(e.Code, e.Message)
}

// Decode turns an object's JSON into its typed form.
func Decode(raw json.RawMessage) (api.Object, error) {
	var tm api.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return nil, err
	}
	ki, err := api.LookupKind(tm.Kind)
	if err != nil {
		return nil, err
	}
	obj := ki.New()
	return obj, json.Unmarshal(raw, obj)
}

func (c *Client) objectCall(ctx context.Context, subject string, req any) (api.Object, error) {
	var r wire.Reply
	if err := c.request(ctx, subject, req, &r); err != nil {
		return nil, err
	}
	if err := fromWire(r.Error); err != nil {
		return nil, err
	}
	return Decode(r.Object)
}

// Get reads one object.
func (c *Client) Get(ctx context.Context, kind, ns, name string) (api.Object, error) {
	return c.objectCall(ctx, wire.SubjectGet, wire.ObjectRef{Kind: kind, Namespace: ns, Name: name})
}

// ListPage reads one page of a list.
func (c *Client) ListPage(ctx context.Context, req wire.ListRequest) ([]api.Object, string, error) {
	var r wire.ListReply
	if err := c.request(ctx, wire.SubjectList, req, &r); err != nil {
		return nil, "", err
	}
	if err := fromWire(r.Error); err != nil {
		return nil, "", err
	}
	out := make([]api.Object, 0, len(r.Items))
	for _, raw := range r.Items {
		obj, err := Decode(raw)
		if err != nil {
			return nil, "", err
		}
		out = append(out, obj)
	}
	return out, r.Continue, nil
}

// List reads every object of a kind, page by page; ns "" means all
// namespaces.
func (c *Client) List(ctx context.Context, kind, ns, selector string) ([]api.Object, error) {
	var all []api.Object
	req := wire.ListRequest{Kind: kind, Namespace: ns, LabelSelector: selector, Limit: 500}
	for {
		page, next, err := c.ListPage(ctx, req)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		req.Continue = next
	}
}

func (c *Client) write(ctx context.Context, subject string, obj api.Object) (api.Object, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return c.objectCall(ctx, subject, wire.WriteRequest{Object: b})
}

// Create stores a new object.
func (c *Client) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	return c.write(ctx, wire.SubjectCreate, withType(obj))
}

// Update replaces an object; it fails with api.ErrConflict when the object's
// resourceVersion is stale.
func (c *Client) Update(ctx context.Context, obj api.Object) (api.Object, error) {
	return c.write(ctx, wire.SubjectUpdate, withType(obj))
}

// Apply creates the object or updates its spec, labels and annotations.
func (c *Client) Apply(ctx context.Context, obj api.Object) (api.Object, error) {
	return c.write(ctx, wire.SubjectApply, withType(obj))
}

// ApplyRaw applies a manifest's JSON as is, so the server's strict decoding
// sees exactly what the user wrote.
func (c *Client) ApplyRaw(ctx context.Context, raw json.RawMessage) (api.Object, error) {
	return c.objectCall(ctx, wire.SubjectApply, wire.WriteRequest{Object: raw})
}

func withType(obj api.Object) api.Object {
	if obj.GetType().Kind == "" {
		if ki, err := api.KindOf(obj); err == nil {
			obj.GetType().Kind = ki.Kind
			obj.GetType().APIVersion = api.Version
		}
	}
	return obj
}

// Delete removes an object; it returns the object as it was.
func (c *Client) Delete(ctx context.Context, kind, ns, name string) (api.Object, error) {
	return c.objectCall(ctx, wire.SubjectDelete, wire.ObjectRef{Kind: kind, Namespace: ns, Name: name})
}

// Modify reads an object, applies fn and writes it back, retrying on
// conflicts: the read-modify-write every client-side edit (scale, label)
// needs.
func (c *Client) Modify(ctx context.Context, kind, ns, name string, fn func(api.Object) error) (api.Object, error) {
	for attempt := 0; ; attempt++ {
		obj, err := c.Get(ctx, kind, ns, name)
		if err != nil {
			return nil, err
		}
		if err := fn(obj); err != nil {
			return nil, err
		}
		out, err := c.Update(ctx, obj)
		if errors.Is(err, api.ErrConflict) && attempt < 20 {
			// Back off with jitter so two writers do not collide in lockstep.
			d := time.Duration(1<<min(attempt, 6)) * time.Millisecond
			d += time.Duration(rand.Int64N(int64(d)))
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		return out, err
	}
}

// Event is one watch event.
type Event struct {
	Type   string // ADDED, MODIFIED, DELETED, SYNCED
	Object api.Object
}

// Watch streams events until ctx ends. The first events list the current
// objects, followed by one SYNCED.
func (c *Client) Watch(ctx context.Context, kind, ns, selector string) (<-chan Event, error) {
	inbox := c.NC.NewRespInbox()
	msgs := make(chan *nats.Msg, 256)
	sub, err := c.NC.ChanSubscribe(inbox, msgs)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(wire.WatchRequest{Kind: kind, Namespace: ns, LabelSelector: selector})
	if err := c.NC.PublishRequest(wire.SubjectWatch, inbox, b); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		defer func() {
			_ = sub.Unsubscribe()
			ctl, _ := json.Marshal(wire.WatchControl{Inbox: inbox})
			_ = c.NC.Publish(wire.SubjectStop, ctl)
		}()
		t := time.NewTicker(wire.KeepaliveEvery * time.Second)
		defer t.Stop()
		ctl, _ := json.Marshal(wire.WatchControl{Inbox: inbox})
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = c.NC.Publish(wire.SubjectKeepalive, ctl)
			case m := <-msgs:
				var ev wire.WatchEvent
				if json.Unmarshal(m.Data, &ev) != nil {
					continue
				}
				if ev.Type == "ERROR" {
					return
				}
				e := Event{Type: ev.Type}
				if len(ev.Object) > 0 && string(ev.Object) != "null" {
					obj, err := Decode(ev.Object)
					if err != nil {
						continue
					}
					e.Object = obj
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// Version asks a server for its version and the current leader.
func (c *Client) Version(ctx context.Context) (wire.VersionReply, error) {
	var v wire.VersionReply
	err := c.request(ctx, wire.SubjectVersion, struct{}{}, &v)
	return v, err
}
