// Package bpfenc converts addresses and ports to and from the in-memory
// form BPF programs use for __be32 and __be16 fields: bytes in network
// order, read by Go as native-endian integers (bpf2go's struct fields).
package bpfenc

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Addr4 returns the field value of an IPv4 address.
func Addr4(a netip.Addr) uint32 {
	b := a.Unmap().As4()
	return binary.NativeEndian.Uint32(b[:])
}

// AddrOf is the inverse of Addr4.
func AddrOf(v uint32) netip.Addr {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// Port returns the field value of a port.
func Port(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

// PortOf is the inverse of Port.
func PortOf(v uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return binary.BigEndian.Uint16(b[:])
}

// Proto returns the IP protocol number of "TCP" (the default) or "UDP".
func Proto(p string) uint8 {
	if p == "UDP" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// ProtoName is the inverse of Proto.
func ProtoName(n uint8) string {
	if n == unix.IPPROTO_UDP {
		return "UDP"
	}
	return "TCP"
}
