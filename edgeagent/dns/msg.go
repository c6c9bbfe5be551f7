// Package dns is the edge agent's cluster DNS: a small authoritative server
// for the cluster domain (default cluster.local) answering service names
// from an in-memory view fed by the API's Services and EndpointSlices. It
// parses and builds RFC 1035 messages itself, on the standard library only.
package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Record types and classes used here (RFC 1035 3.2.2, RFC 3596, RFC 2782,
// RFC 6891).
const (
	TypeA     uint16 = 1
	TypeNS    uint16 = 2
	TypeCNAME uint16 = 5
	TypeSOA   uint16 = 6
	TypePTR   uint16 = 12
	TypeAAAA  uint16 = 28
	TypeSRV   uint16 = 33
	TypeOPT   uint16 = 41
	TypeANY   uint16 = 255

	ClassINET uint16 = 1
	ClassANY  uint16 = 255
)

// Response codes (RFC 1035 4.1.1).
const (
	RCodeSuccess  uint8 = 0
	RCodeFormErr  uint8 = 1
	RCodeServFail uint8 = 2
	RCodeNXDomain uint8 = 3
	RCodeNotImp   uint8 = 4
	RCodeRefused  uint8 = 5
)

// ErrMalformed wraps every decoding failure.
var ErrMalformed = errors.New("malformed dns message")

// Message is a decoded DNS message. Only the fields this server needs are
// typed; unknown record data is kept raw.
type Message struct {
	ID                 uint16
	Response           bool
	Opcode             uint8
	Authoritative      bool
	Truncated          bool
	RecursionDesired   bool
	RecursionAvailable bool
	RCode              uint8
	Questions          []Question
	Answers            []RR
	Authority          []RR
	Additional         []RR
}

// Question is one entry of the question section.
type Question struct {
	Name  string // lower case, no trailing dot
	Type  uint16
	Class uint16
}

// RR is one resource record. Which fields matter depends on Type.
type RR struct {
	Name  string // no trailing dot
	Type  uint16
	Class uint16 // for OPT: the requester's UDP payload size
	TTL   uint32
	// Addr is the address of an A or AAAA record.
	Addr netip.Addr
	// Target is the CNAME/NS/PTR target or the SRV target.
	Target string
	// SRV fields.
	Priority, Weight, Port uint16
	// SOA is set for SOA records.
	SOA *SOA
	// Raw is the record data of other types (OPT included).
	Raw []byte
}

// SOA is the data of an SOA record (RFC 1035 3.3.13).
type SOA struct {
	MName, RName                            string
	Serial, Refresh, Retry, Expire, Minimum uint32
}

const headerLen = 12

// Encode builds the wire form, compressing names (RFC 1035 4.1.4).
func (m *Message) Encode() ([]byte, error) {
	e := &encoder{buf: make([]byte, headerLen, 512), names: map[string]int{}}
	binary.BigEndian.PutUint16(e.buf[0:], m.ID)
	var flags uint16
	if m.Response {
		flags |= 1 << 15
	}
	flags |= uint16(m.Opcode&0xf) << 11
	if m.Authoritative {
		flags |= 1 << 10
	}
	if m.Truncated {
		flags |= 1 << 9
	}
	if m.RecursionDesired {
		flags |= 1 << 8
	}
	if m.RecursionAvailable {
		flags |= 1 << 7
	}
	flags |= uint16(m.RCode & 0xf)
	binary.BigEndian.PutUint16(e.buf[2:], flags)
	for i, n := range []int{len(m.Questions), len(m.Answers), len(m.Authority), len(m.Additional)} {
		if n > 0xffff {
			return nil, fmt.Errorf("encode dns message: section %d has %d records", i, n)
		}
		binary.BigEndian.PutUint16(e.buf[4+2*i:], uint16(n))
	}
	for _, q := range m.Questions {
		if err := e.name(q.Name); err != nil {
			return nil, err
		}
		e.u16(q.Type)
		e.u16(q.Class)
	}
	for _, sec := range [][]RR{m.Answers, m.Authority, m.Additional} {
		for _, rr := range sec {
			if err := e.rr(rr); err != nil {
				return nil, err
			}
		}
	}
	return e.buf, nil
}

type encoder struct {
	buf   []byte
	names map[string]int // lower-cased suffix -> offset, for compression
}

func (e *encoder) u16(v uint16) { e.buf = binary.BigEndian.AppendUint16(e.buf, v) }
func (e *encoder) u32(v uint32) { e.buf = binary.BigEndian.AppendUint32(e.buf, v) }

// name writes a domain name, pointing at an earlier copy of the longest
// suffix already written.
func (e *encoder) name(name string) error {
	name = strings.TrimSuffix(name, ".")
	if len(name) > 253 {
		return fmt.Errorf("encode dns name %q: longer than 253 bytes", name)
	}
	for name != "" {
		key := strings.ToLower(name)
		if off, ok := e.names[key]; ok {
			e.u16(0xc000 | uint16(off))
			return nil
		}
		if len(e.buf) < 0x3fff {
			e.names[key] = len(e.buf)
		}
		label, rest, _ := strings.Cut(name, ".")
		if label == "" || len(label) > 63 {
			return fmt.Errorf("encode dns name %q: bad label %q", name, label)
		}
		e.buf = append(e.buf, byte(len(label)))
		e.buf = append(e.buf, label...)
		name = rest
	}
	e.buf = append(e.buf, 0)
	return nil
}

func (e *encoder) rr(rr RR) error {
	if err := e.name(rr.Name); err != nil {
		return err
	}
	e.u16(rr.Type)
	e.u16(rr.Class)
	e.u32(rr.TTL)
	lenAt := len(e.buf)
	e.u16(0) // rdlength, patched below
	switch rr.Type {
	case TypeA:
		if !rr.Addr.Is4() {
			return fmt.Errorf("encode A record %s: %v is not IPv4", rr.Name, rr.Addr)
		}
		a := rr.Addr.As4()
		e.buf = append(e.buf, a[:]...)
	case TypeAAAA:
		if !rr.Addr.Is6() {
			return fmt.Errorf("encode AAAA record %s: %v is not IPv6", rr.Name, rr.Addr)
		}
		a := rr.Addr.As16()
		e.buf = append(e.buf, a[:]...)
	case TypeCNAME, TypeNS, TypePTR:
		if err := e.name(rr.Target); err != nil {
			return err
		}
	case TypeSRV:
		e.u16(rr.Priority)
		e.u16(rr.Weight)
		e.u16(rr.Port)
		// RFC 2782 forbids compressing the SRV target; write it whole.
		if err := appendName(&e.buf, rr.Target); err != nil {
			return err
		}
	case TypeSOA:
		if rr.SOA == nil {
			return fmt.Errorf("encode SOA record %s: no data", rr.Name)
		}
		if err := e.name(rr.SOA.MName); err != nil {
			return err
		}
		if err := e.name(rr.SOA.RName); err != nil {
			return err
		}
		for _, v := range []uint32{rr.SOA.Serial, rr.SOA.Refresh, rr.SOA.Retry, rr.SOA.Expire, rr.SOA.Minimum} {
			e.u32(v)
		}
	default:
		e.buf = append(e.buf, rr.Raw...)
	}
	n := len(e.buf) - lenAt - 2
	if n > 0xffff {
		return fmt.Errorf("encode record %s: data too long", rr.Name)
	}
	binary.BigEndian.PutUint16(e.buf[lenAt:], uint16(n))
	return nil
}

// appendName writes a name without compression.
func appendName(buf *[]byte, name string) error {
	name = strings.TrimSuffix(name, ".")
	for name != "" {
		label, rest, _ := strings.Cut(name, ".")
		if label == "" || len(label) > 63 {
			return fmt.Errorf("encode dns name %q: bad label %q", name, label)
		}
		*buf = append(*buf, byte(len(label)))
		*buf = append(*buf, label...)
		name = rest
	}
	*buf = append(*buf, 0)
	return nil
}

// Decode parses a wire-format message.
func Decode(b []byte) (*Message, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a header", ErrMalformed, len(b))
	}
	flags := binary.BigEndian.Uint16(b[2:])
	m := &Message{
		ID:                 binary.BigEndian.Uint16(b),
		Response:           flags&(1<<15) != 0,
		Opcode:             uint8(flags>>11) & 0xf,
		Authoritative:      flags&(1<<10) != 0,
		Truncated:          flags&(1<<9) != 0,
		RecursionDesired:   flags&(1<<8) != 0,
		RecursionAvailable: flags&(1<<7) != 0,
		RCode:              uint8(flags & 0xf),
	}
	d := &decoder{msg: b, off: headerLen}
	qd := int(binary.BigEndian.Uint16(b[4:]))
	counts := []int{int(binary.BigEndian.Uint16(b[6:])), int(binary.BigEndian.Uint16(b[8:])), int(binary.BigEndian.Uint16(b[10:]))}
	for range qd {
		name, err := d.name()
		if err != nil {
			return nil, err
		}
		t, err := d.u16()
		if err != nil {
			return nil, err
		}
		c, err := d.u16()
		if err != nil {
			return nil, err
		}
		m.Questions = append(m.Questions, Question{Name: strings.ToLower(name), Type: t, Class: c})
	}
	secs := []*[]RR{&m.Answers, &m.Authority, &m.Additional}
	for i, n := range counts {
		for range n {
			rr, err := d.rr()
			if err != nil {
				return nil, err
			}
			*secs[i] = append(*secs[i], rr)
		}
	}
	return m, nil
}

type decoder struct {
	msg []byte
	off int
}

func (d *decoder) u16() (uint16, error) {
	if d.off+2 > len(d.msg) {
		return 0, fmt.Errorf("%w: truncated at offset %d", ErrMalformed, d.off)
	}
	v := binary.BigEndian.Uint16(d.msg[d.off:])
	d.off += 2
	return v, nil
}

func (d *decoder) u32() (uint32, error) {
	if d.off+4 > len(d.msg) {
		return 0, fmt.Errorf("%w: truncated at offset %d", ErrMalformed, d.off)
	}
	v := binary.BigEndian.Uint32(d.msg[d.off:])
	d.off += 4
	return v, nil
}

// name reads a possibly compressed name at d.off and advances past it.
func (d *decoder) name() (string, error) {
	name, next, err := readName(d.msg, d.off)
	if err != nil {
		return "", err
	}
	d.off = next
	return name, nil
}

// readName follows compression pointers; it returns the name and the offset
// just after the name's first encoding.
func readName(msg []byte, off int) (string, int, error) {
	var sb strings.Builder
	next := -1
	// Each jump must go backwards, which bounds the walk and rules out loops.
	limit := off
	for {
		if off >= len(msg) {
			return "", 0, fmt.Errorf("%w: name runs past the end", ErrMalformed)
		}
		l := int(msg[off])
		switch {
		case l == 0:
			if next < 0 {
				next = off + 1
			}
			if sb.Len() > 253 {
				return "", 0, fmt.Errorf("%w: name longer than 253 bytes", ErrMalformed)
			}
			return sb.String(), next, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(msg) {
				return "", 0, fmt.Errorf("%w: truncated pointer", ErrMalformed)
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			if next < 0 {
				next = off + 2
			}
			if ptr >= limit {
				return "", 0, fmt.Errorf("%w: compression pointer does not point backwards", ErrMalformed)
			}
			limit, off = ptr, ptr
		case l&0xc0 != 0:
			return "", 0, fmt.Errorf("%w: reserved label type %#x", ErrMalformed, l)
		default:
			if off+1+l > len(msg) {
				return "", 0, fmt.Errorf("%w: label runs past the end", ErrMalformed)
			}
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.Write(msg[off+1 : off+1+l])
			off += 1 + l
		}
	}
}

func (d *decoder) rr() (RR, error) {
	var rr RR
	var err error
	if rr.Name, err = d.name(); err != nil {
		return rr, err
	}
	if rr.Type, err = d.u16(); err != nil {
		return rr, err
	}
	if rr.Class, err = d.u16(); err != nil {
		return rr, err
	}
	if rr.TTL, err = d.u32(); err != nil {
		return rr, err
	}
	n, err := d.u16()
	if err != nil {
		return rr, err
	}
	end := d.off + int(n)
	if end > len(d.msg) {
		return rr, fmt.Errorf("%w: record data runs past the end", ErrMalformed)
	}
	data := d.msg[d.off:end]
	switch rr.Type {
	case TypeA, TypeAAAA:
		addr, ok := netip.AddrFromSlice(data)
		if !ok || (rr.Type == TypeA) != addr.Is4() {
			return rr, fmt.Errorf("%w: bad address in %s record", ErrMalformed, rr.Name)
		}
		rr.Addr = addr
	case TypeCNAME, TypeNS, TypePTR:
		if rr.Target, _, err = readName(d.msg, d.off); err != nil {
			return rr, err
		}
	case TypeSRV:
		if n < 7 {
			return rr, fmt.Errorf("%w: short SRV record", ErrMalformed)
		}
		rr.Priority = binary.BigEndian.Uint16(data)
		rr.Weight = binary.BigEndian.Uint16(data[2:])
		rr.Port = binary.BigEndian.Uint16(data[4:])
		if rr.Target, _, err = readName(d.msg, d.off+6); err != nil {
			return rr, err
		}
	case TypeSOA:
		sd := &decoder{msg: d.msg, off: d.off}
		soa := &SOA{}
		if soa.MName, err = sd.name(); err != nil {
			return rr, err
		}
		if soa.RName, err = sd.name(); err != nil {
			return rr, err
		}
		for _, p := range []*uint32{&soa.Serial, &soa.Refresh, &soa.Retry, &soa.Expire, &soa.Minimum} {
			if *p, err = sd.u32(); err != nil {
				return rr, err
			}
		}
		rr.SOA = soa
	default:
		rr.Raw = append([]byte(nil), data...)
	}
	d.off = end
	return rr, nil
}
