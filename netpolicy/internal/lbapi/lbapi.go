// Package lbapi holds the service load-balancer types shared by package
// netpolicy and its two implementations (ebpflb, userspace). It exists only
// to break the import cycle; use the aliases in package netpolicy.
package lbapi

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// MaxBackends is the largest backend list one service may have.
const MaxBackends = 65535

// ErrNotFound is returned by Delete for a service that is not installed.
var ErrNotFound = errors.New("service not found")

// Service is one virtual IP:port of a protocol, load-balanced over Backends.
type Service struct {
	VIP      netip.Addr
	Port     uint16
	Protocol string // "TCP" or "UDP"
	Backends []netip.AddrPort
	// AffinityTimeout enables ClientIP session affinity when > 0: a client
	// keeps its backend while it used it within the timeout. 0 = none.
	AffinityTimeout time.Duration
}

// LB is a service load balancer.
type LB interface {
	// Upsert installs or replaces a service. Replacing is atomic for
	// clients: a new connection sees the old or the new backend list.
	Upsert(Service) error
	// Delete removes a service; it returns an error wrapping ErrNotFound
	// when none is installed.
	Delete(vip netip.Addr, port uint16, proto string) error
	// Services lists the installed services, sorted by VIP, port, protocol.
	Services() []Service
	// Close releases the LB's resources in this process.
	Close() error
	// Mode is "ebpf" or "userspace".
	Mode() string
}

// NormalizeProto returns "TCP" or "UDP" for a protocol name in any case;
// "" means TCP.
func NormalizeProto(p string) (string, error) {
	switch strings.ToUpper(p) {
	case "", "TCP":
		return "TCP", nil
	case "UDP":
		return "UDP", nil
	}
	return "", fmt.Errorf("unsupported protocol %q (want TCP or UDP)", p)
}

// Normalize validates s and returns a copy with IPv4 addresses unmapped,
// the protocol upper-cased and the backend list copied.
func Normalize(s Service) (Service, error) {
	out := s
	var err error
	if out.Protocol, err = NormalizeProto(s.Protocol); err != nil {
		return out, err
	}
	out.VIP = s.VIP.Unmap()
	if !out.VIP.Is4() {
		return out, fmt.Errorf("service VIP %v: only IPv4 is supported", s.VIP)
	}
	if s.Port == 0 {
		return out, fmt.Errorf("service %v: port 0", s.VIP)
	}
	if len(s.Backends) > MaxBackends {
		return out, fmt.Errorf("service %v:%d: %d backends, at most %d", s.VIP, s.Port, len(s.Backends), MaxBackends)
	}
	if s.AffinityTimeout < 0 {
		return out, fmt.Errorf("service %v:%d: negative affinity timeout", s.VIP, s.Port)
	}
	out.Backends = make([]netip.AddrPort, 0, len(s.Backends))
	for _, b := range s.Backends {
		a := b.Addr().Unmap()
		if !a.Is4() || b.Port() == 0 {
			return out, fmt.Errorf("service %v:%d: backend %v: want IPv4 address and non-zero port", s.VIP, s.Port, b)
		}
		out.Backends = append(out.Backends, netip.AddrPortFrom(a, b.Port()))
	}
	return out, nil
}

// Sort orders services by VIP, port and protocol.
func Sort(svcs []Service) {
	sort.Slice(svcs, func(i, j int) bool {
		a, b := svcs[i], svcs[j]
		if c := a.VIP.Compare(b.VIP); c != 0 {
			return c < 0
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Protocol < b.Protocol
	})
}
