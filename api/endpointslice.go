package api

import "fmt"

// EndpointSlice lists where a service's pods can be reached. It has the
// service's name; the endpoints controller writes it for services with a
// selector, users write it for services without one.
//
// Unlike Kubernetes, where every endpoint of a slice shares one port list,
// each endpoint here carries its own ports: a pod is reached at its node's
// address and a host port the agent allocated for that pod alone, so two
// pods of one service on one node differ only by port. Endpoint ports are
// named after the service ports they serve ("" for an unnamed single
// port).
type EndpointSlice struct {
	TypeMeta    `json:",inline"`
	ObjectMeta  `json:"metadata"`
	AddressType string     `json:"addressType,omitempty"` // IPv4
	Endpoints   []Endpoint `json:"endpoints,omitempty"`
}

// Endpoint is one backend of a service: usually one pod.
type Endpoint struct {
	// Addresses holds the node address the pod is reachable at.
	Addresses  []string           `json:"addresses"`
	Conditions EndpointConditions `json:"conditions,omitempty"`
	NodeName   string             `json:"nodeName,omitempty"`
	TargetRef  *ObjectReference   `json:"targetRef,omitempty"`
	// Ports maps each service port name to this endpoint's port.
	Ports []EndpointPort `json:"ports,omitempty"`
}

// EndpointConditions says whether an endpoint takes traffic.
type EndpointConditions struct {
	Ready *bool `json:"ready,omitempty"`
}

// IsReady reports whether the endpoint takes traffic (unset means ready).
func (e *Endpoint) IsReady() bool { return e.Conditions.Ready == nil || *e.Conditions.Ready }

// EndpointPort is where an endpoint serves one service port.
type EndpointPort struct {
	Name     string `json:"name,omitempty"`
	Port     int32  `json:"port"`
	Protocol string `json:"protocol,omitempty"`
}

// AddressTypeIPv4 is the only address type served.
const AddressTypeIPv4 = "IPv4"

func defaultEndpointSlice(s *EndpointSlice) {
	if s.AddressType == "" {
		s.AddressType = AddressTypeIPv4
	}
	for i := range s.Endpoints {
		for j := range s.Endpoints[i].Ports {
			if s.Endpoints[i].Ports[j].Protocol == "" {
				s.Endpoints[i].Ports[j].Protocol = "TCP"
			}
		}
	}
}

func validateEndpointSlice(fe *FieldErrors, s *EndpointSlice) {
	if s.AddressType != AddressTypeIPv4 {
		fe.add("addressType", "%q is not IPv4", s.AddressType)
	}
	for i, e := range s.Endpoints {
		f := fmt.Sprintf("endpoints[%d]", i)
		if len(e.Addresses) == 0 {
			fe.add(f+".addresses", "at least one address is required")
		}
		for j, a := range e.Addresses {
			if !isIPv4(a) {
				fe.add(fmt.Sprintf("%s.addresses[%d]", f, j), "%q is not an IPv4 address", a)
			}
		}
		for j, p := range e.Ports {
			pf := fmt.Sprintf("%s.ports[%d]", f, j)
			if p.Port < 1 || p.Port > 65535 {
				fe.add(pf+".port", "must be between 1 and 65535, got %d", p.Port)
			}
			if p.Protocol != "TCP" && p.Protocol != "UDP" {
				fe.add(pf+".protocol", "%q is not TCP or UDP", p.Protocol)
			}
		}
	}
}
