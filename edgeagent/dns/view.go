package dns

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Service is what DNS needs to know about one Service and its endpoints,
// independent of the API types so the server can be tested and fed from
// anything.
type Service struct {
	Namespace, Name string
	// ClusterIP is the virtual IP; invalid for headless and ExternalName
	// services.
	ClusterIP netip.Addr
	// ExternalName, when set, makes the name a CNAME to it.
	ExternalName string
	Ports        []Port
	// Endpoints are the service's backends (all of them, ready or not).
	Endpoints []Endpoint
}

// Headless reports whether the service has no virtual IP, so its name
// resolves to the endpoints themselves.
func (s *Service) Headless() bool { return !s.ClusterIP.IsValid() && s.ExternalName == "" }

// Port is a named service or endpoint port.
type Port struct {
	Name     string
	Protocol string // TCP, UDP (SCTP is not served)
	Port     uint16
}

// Endpoint is one backend. In Flotilla an endpoint is the node's address
// and a host port the agent allocated, so two endpoints may share an
// address and differ in port: only SRV records tell them apart.
type Endpoint struct {
	Addr netip.Addr
	// Hostname is the pod's spec.hostname when its spec.subdomain names this
	// service (StatefulSet pods): <hostname>.<service>.<ns>.svc.<domain>.
	Hostname string
	// PodName names the pod behind the endpoint, if any.
	PodName string
	Ready   bool
	// Ports are the endpoint's own ports, matched to service ports by name.
	Ports []Port
}

// View answers lookups of services by namespace and name.
type View interface {
	// Service returns the service, or false.
	Service(namespace, name string) (*Service, bool)
	// HasNamespace reports whether any service lives in the namespace.
	HasNamespace(namespace string) bool
}

// Store is an in-memory View that a feed (see Feed) keeps up to date. It is
// safe for concurrent use.
type Store struct {
	mu       sync.RWMutex
	services map[string]*Service   // "ns/name"
	slices   map[string]sliceEntry // "ns/slice name"
	perNS    map[string]int        // services per namespace
}

// sliceEntry is one EndpointSlice's contribution to a service.
type sliceEntry struct {
	service   string // "ns/name"
	endpoints []Endpoint
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{services: map[string]*Service{}, slices: map[string]sliceEntry{}, perNS: map[string]int{}}
}

func key(ns, name string) string { return strings.ToLower(ns) + "/" + strings.ToLower(name) }

// SetService adds or replaces a service (its Endpoints field is ignored:
// endpoints come from SetEndpoints).
func (s *Store) SetService(svc Service) {
	svc.Endpoints = nil
	svc.Ports = slices.Clone(svc.Ports)
	k := key(svc.Namespace, svc.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.services[k]; !ok {
		s.perNS[strings.ToLower(svc.Namespace)]++
	}
	s.services[k] = &svc
}

// DeleteService removes a service; its endpoint slices stay until deleted,
// so a re-created service gets them back.
func (s *Store) DeleteService(ns, name string) {
	k := key(ns, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.services[k]; !ok {
		return
	}
	delete(s.services, k)
	lns := strings.ToLower(ns)
	if s.perNS[lns]--; s.perNS[lns] <= 0 {
		delete(s.perNS, lns)
	}
}

// SetEndpoints records the endpoints of one EndpointSlice of a service.
func (s *Store) SetEndpoints(ns, slice, service string, eps []Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slices[key(ns, slice)] = sliceEntry{service: key(ns, service), endpoints: slices.Clone(eps)}
}

// DeleteEndpoints forgets one EndpointSlice.
func (s *Store) DeleteEndpoints(ns, slice string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.slices, key(ns, slice))
}

// Reset forgets everything; a feed calls it before replaying a watch.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.services)
	clear(s.slices)
	clear(s.perNS)
}

// Service implements View. The result is a copy with the endpoints of all
// the service's slices, ordered by address and port so answers are stable.
func (s *Store) Service(ns, name string) (*Service, bool) {
	k := key(ns, name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	svc, ok := s.services[k]
	if !ok {
		return nil, false
	}
	out := *svc
	out.Endpoints = nil
	// Linear in the number of slices: fine for an edge node's few hundred
	// services; index by service if that ever shows in a profile.
	for _, e := range s.slices {
		if e.service == k {
			out.Endpoints = append(out.Endpoints, e.endpoints...)
		}
	}
	slices.SortFunc(out.Endpoints, func(a, b Endpoint) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return strings.Compare(a.PodName+a.Hostname, b.PodName+b.Hostname)
	})
	return &out, true
}

// HasNamespace implements View.
func (s *Store) HasNamespace(ns string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.perNS[strings.ToLower(ns)] > 0
}
