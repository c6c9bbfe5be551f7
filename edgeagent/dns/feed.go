package dns

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
)

// ResyncEvery restarts the watches: a watch whose server went away (a
// restart, a lease move) goes silent rather than failing, and a fresh
// replay repairs whatever was missed.
var ResyncEvery = 2 * time.Minute

// Feed keeps store in step with the fleet's Services and EndpointSlices in
// every namespace until ctx ends. It blocks; run it in a goroutine. Each
// (re)started watch replays the current objects, and objects that were not
// replayed are dropped once the replay ends (SYNCED).
func Feed(ctx context.Context, c *client.Client, store *Store, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	done := make(chan struct{}, 2)
	go func() { feedKind(ctx, c, "Service", store, log); done <- struct{}{} }()
	go func() { feedKind(ctx, c, "EndpointSlice", store, log); done <- struct{}{} }()
	<-done
	<-done
}

// feedKind runs one kind's watch, restarting it when it ends or on resync.
func feedKind(ctx context.Context, c *client.Client, kind string, store *Store, log *slog.Logger) {
	known := map[[2]string]bool{} // (ns, name) applied to the store
	retry := 200 * time.Millisecond
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, ResyncEvery)
		events, err := c.Watch(wctx, kind, "", "")
		if err != nil {
			cancel()
			log.Warn("dns: watch", "kind", kind, "err", err, "retry_in", retry)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			retry = min(retry*2, 5*time.Second)
			continue
		}
		retry = 200 * time.Millisecond
		seen := map[[2]string]bool{}
		syncing := true
		for ev := range events {
			if ev.Type == "SYNCED" {
				for k := range known {
					if !seen[k] {
						remove(store, kind, k[0], k[1])
						delete(known, k)
					}
				}
				syncing = false
				continue
			}
			if ev.Object == nil {
				continue
			}
			meta := ev.Object.GetMeta()
			k := [2]string{meta.Namespace, meta.Name}
			if ev.Type == "DELETED" {
				remove(store, kind, k[0], k[1])
				delete(known, k)
				continue
			}
			if syncing {
				seen[k] = true
			}
			apply(store, ev.Object, log)
			known[k] = true
		}
		cancel()
	}
}

func remove(store *Store, kind, ns, name string) {
	if kind == "Service" {
		store.DeleteService(ns, name)
	} else {
		store.DeleteEndpoints(ns, name)
	}
}

// apply converts an API object to the store's form.
func apply(store *Store, obj api.Object, log *slog.Logger) {
	switch o := obj.(type) {
	case *api.Service:
		store.SetService(FromService(o))
	case *api.EndpointSlice:
		// The slice carries its service's name (api/endpointslice.go).
		store.SetEndpoints(o.Namespace, o.Name, o.Name, FromEndpointSlice(o))
	default:
		log.Debug("dns: ignoring object", "type", obj.GetType().Kind)
	}
}

// FromService converts an API Service.
func FromService(s *api.Service) Service {
	out := Service{Namespace: s.Namespace, Name: s.Name}
	if s.Spec.Type == api.ServiceTypeExternalName {
		out.ExternalName = s.Spec.ExternalName
		return out
	}
	if a, err := netip.ParseAddr(s.Spec.ClusterIP); err == nil {
		out.ClusterIP = a
	}
	for _, p := range s.Spec.Ports {
		out.Ports = append(out.Ports, Port{Name: p.Name, Protocol: p.Protocol, Port: uint16(p.Port)})
	}
	return out
}

// FromEndpointSlice converts an API EndpointSlice: one Endpoint per
// address of each endpoint.
func FromEndpointSlice(s *api.EndpointSlice) []Endpoint {
	var out []Endpoint
	for _, e := range s.Endpoints {
		var ports []Port
		for _, p := range e.Ports {
			ports = append(ports, Port{Name: p.Name, Protocol: p.Protocol, Port: uint16(p.Port)})
		}
		pod := ""
		if e.TargetRef != nil && (e.TargetRef.Kind == "" || e.TargetRef.Kind == "Pod") {
			pod = e.TargetRef.Name
		}
		for _, a := range e.Addresses {
			addr, err := netip.ParseAddr(a)
			if err != nil {
				continue
			}
			// StatefulSet pods have hostname = pod name (api.PodSpec), so
			// the pod name doubles as the DNS hostname label.
			out = append(out, Endpoint{Addr: addr, PodName: pod, Ready: e.IsReady(), Ports: ports})
		}
	}
	return out
}
