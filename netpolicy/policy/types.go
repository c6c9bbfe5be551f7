// Package policy evaluates NetworkPolicies (Kubernetes semantics) over a
// snapshot of the fleet: which pods exist where, their labels and their
// namespaces' labels. It is pure computation with no I/O; the datapaths
// (wasm host calls, the eBPF socket programs, the userspace proxy) ask it
// questions or take compiled rule sets from it. See docs/networking.md.
//
// Addresses: every pod endpoint is a node address plus a host port the
// agent allocated for one container port of that pod, so a destination
// address:port names a pod port; anything else is outside the fleet and
// only ipBlock peers can match it. A policy port refers to the pod's
// container port (number or name), as in Kubernetes, and to the dialled
// port for destinations outside the fleet.
package policy

import (
	"net/netip"

	"github.com/flotilla-edge/flotilla/api"
)

// Protocols a policy distinguishes.
const (
	TCP = "TCP"
	UDP = "UDP"
)

// PodRef names a pod.
type PodRef struct{ Namespace, Name string }

func (r PodRef) String() string { return r.Namespace + "/" + r.Name }

// Namespace is a namespace and its labels (namespaceSelector input).
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Port is one container port of a pod and where it is reachable.
type Port struct {
	Name          string // container port name, "" if unnamed
	ContainerPort uint16
	HostPort      uint16 // 0: not reachable (no endpoint)
	Protocol      string // TCP (default) or UDP
}

// Pod is what policy needs to know about a pod.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	// NodeIP is the pod's address (status.hostIP): pods share their
	// node's address.
	NodeIP netip.Addr
	Ports  []Port
}

// Ref returns the pod's name.
func (p *Pod) Ref() PodRef { return PodRef{p.Namespace, p.Name} }

// Service is a virtual IP:port translated to backends before the policy
// check (the eBPF LB rewrites at connect, so rules see backends).
type Service struct {
	VIP      netip.Addr
	Port     uint16
	Protocol string
	Backends []netip.AddrPort
}

// Input is a snapshot of the fleet.
type Input struct {
	Policies   []*api.NetworkPolicy
	Pods       []Pod
	Namespaces []Namespace
	Services   []Service
}

// Source is who opens a connection: a pod of the fleet, or an address
// that is not known to be one (IP only).
type Source struct {
	Pod *PodRef
	IP  netip.Addr
}

// FromPod is a pod source.
func FromPod(ns, name string) Source { return Source{Pod: &PodRef{ns, name}} }

// FromIP is a source known only by its address.
func FromIP(a netip.Addr) Source { return Source{IP: a} }

// Decision is the answer to a question, with the reason for logs and for
// the error a denied wasm guest sees.
type Decision struct {
	Allowed bool
	// Reason says why traffic is denied ("denied by NetworkPolicy
	// default/deny-all (egress of default/frontend)"); "" when allowed.
	Reason string
}

func normProto(p string) string {
	if p == UDP || p == "udp" {
		return UDP
	}
	return TCP
}
