package dns

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
)

// Feed keeps store in step with the fleet's Services and EndpointSlices in
// every namespace until ctx ends. It blocks; run it in a goroutine.
func Feed(ctx context.Context, c *client.Client, store *Store, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "dns")
	var wg sync.WaitGroup
	for _, kind := range []string{"Service", "EndpointSlice"} {
		m := &mirror{store: store, kind: kind, log: log, known: map[[2]string]bool{}}
		wg.Go(func() { c.Reflect(ctx, kind, m, log) })
	}
	wg.Wait()
}

// mirror applies one kind's objects to the store.
type mirror struct {
	store *Store
	kind  string
	log   *slog.Logger
	known map[[2]string]bool // (ns, name) applied to the store
}

func (m *mirror) Replace(objs []api.Object) {
	seen := map[[2]string]bool{}
	for _, o := range objs {
		meta := o.GetMeta()
		seen[[2]string{meta.Namespace, meta.Name}] = true
		apply(m.store, o, m.log)
	}
	for k := range m.known {
		if !seen[k] {
			remove(m.store, m.kind, k[0], k[1])
		}
	}
	m.known = seen
}

func (m *mirror) Apply(o api.Object, deleted bool) {
	meta := o.GetMeta()
	k := [2]string{meta.Namespace, meta.Name}
	if deleted {
		remove(m.store, m.kind, k[0], k[1])
		delete(m.known, k)
		return
	}
	apply(m.store, o, m.log)
	m.known[k] = true
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
