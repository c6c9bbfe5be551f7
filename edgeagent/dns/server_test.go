package dns

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// query sends one question over UDP or TCP to the server, with the wire
// format this package encodes and decodes, through real sockets.
func query(t *testing.T, addr netip.AddrPort, network, name string, qtype uint16, edns uint16) *Message {
	t.Helper()
	q := &Message{ID: uint16(time.Now().UnixNano()), RecursionDesired: true,
		Questions: []Question{{Name: name, Type: qtype, Class: ClassINET}}}
	if edns > 0 {
		q.Additional = []RR{{Type: TypeOPT, Class: edns}}
	}
	b, err := q.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout(network, addr.String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var resp []byte
	if network == "udp" {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		resp = buf[:n]
	} else {
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)); err != nil {
			t.Fatal(err)
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		resp = make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, resp); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Decode(resp)
	if err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	if m.ID != q.ID || !m.Response {
		t.Fatalf("answer id %d response %v, want id %d response", m.ID, m.Response, q.ID)
	}
	return m
}

func startServer(t *testing.T, v View) *Server {
	t.Helper()
	s, err := Start(Config{Addr: "127.0.0.1:0", View: v, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testStore holds one service of each shape.
func testStore() *Store {
	st := NewStore()
	st.SetService(Service{Namespace: "default", Name: "web", ClusterIP: netip.MustParseAddr("10.96.0.10"),
		Ports: []Port{{Name: "http", Protocol: "TCP", Port: 80}, {Name: "dns", Protocol: "UDP", Port: 53}}})
	st.SetEndpoints("default", "web", "web", []Endpoint{
		{Addr: netip.MustParseAddr("192.168.1.20"), PodName: "web-a", Ready: true, Ports: []Port{{Name: "http", Protocol: "TCP", Port: 40001}}},
	})
	st.SetService(Service{Namespace: "default", Name: "ext", ExternalName: "example.org"})
	st.SetService(Service{Namespace: "default", Name: "alias", ExternalName: "web.default.svc.cluster.local"})
	st.SetService(Service{Namespace: "db", Name: "pg", Ports: []Port{{Name: "sql", Protocol: "TCP", Port: 5432}}})
	st.SetEndpoints("db", "pg", "pg", []Endpoint{
		{Addr: netip.MustParseAddr("192.168.1.21"), PodName: "pg-0", Ready: true, Ports: []Port{{Name: "sql", Protocol: "TCP", Port: 40010}}},
		{Addr: netip.MustParseAddr("192.168.1.21"), PodName: "pg-1", Ready: true, Ports: []Port{{Name: "sql", Protocol: "TCP", Port: 40011}}},
		{Addr: netip.MustParseAddr("192.168.1.22"), PodName: "pg-2", Ready: true, Ports: []Port{{Name: "sql", Protocol: "TCP", Port: 40012}}},
		{Addr: netip.MustParseAddr("192.168.1.23"), PodName: "pg-3", Ready: false, Ports: []Port{{Name: "sql", Protocol: "TCP", Port: 40013}}},
	})
	return st
}

// rrText renders records compactly for comparison.
func rrText(rrs []RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr.Type {
		case TypeA, TypeAAAA:
			out = append(out, rr.Name+" A "+rr.Addr.String())
		case TypeCNAME:
			out = append(out, rr.Name+" CNAME "+rr.Target)
		case TypeSRV:
			out = append(out, rr.Name+" SRV "+itoa(rr.Port)+" "+rr.Target)
		case TypeSOA:
			out = append(out, rr.Name+" SOA")
		case TypeOPT:
			// EDNS echo; checked separately
		default:
			out = append(out, rr.Name+" type "+itoa(rr.Type))
		}
	}
	return out
}

func itoa(v uint16) string { return strconv.Itoa(int(v)) }

func TestServerAnswers(t *testing.T) {
	s := startServer(t, testStore())
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		rcode   uint8
		answers []string // sorted
		extra   []string // additional section, sorted
	}{
		{"ClusterIP A", "web.default.svc.cluster.local", TypeA, RCodeSuccess,
			[]string{"web.default.svc.cluster.local A 10.96.0.10"}, nil},
		{"case insensitive", "WEB.Default.SVC.cluster.LOCAL", TypeA, RCodeSuccess,
			[]string{"web.default.svc.cluster.local A 10.96.0.10"}, nil},
		{"AAAA is NODATA", "web.default.svc.cluster.local", TypeAAAA, RCodeSuccess, nil, nil},
		{"ExternalName CNAME", "ext.default.svc.cluster.local", TypeA, RCodeSuccess,
			[]string{"ext.default.svc.cluster.local CNAME example.org"}, nil},
		{"ExternalName in zone is chased", "alias.default.svc.cluster.local", TypeA, RCodeSuccess,
			[]string{"alias.default.svc.cluster.local CNAME web.default.svc.cluster.local", "web.default.svc.cluster.local A 10.96.0.10"}, nil},
		{"headless A lists ready addresses once", "pg.db.svc.cluster.local", TypeA, RCodeSuccess,
			[]string{"pg.db.svc.cluster.local A 192.168.1.21", "pg.db.svc.cluster.local A 192.168.1.22"}, nil},
		{"SRV ClusterIP", "_http._tcp.web.default.svc.cluster.local", TypeSRV, RCodeSuccess,
			[]string{"_http._tcp.web.default.svc.cluster.local SRV 80 web.default.svc.cluster.local"},
			[]string{"web.default.svc.cluster.local A 10.96.0.10"}},
		{"SRV UDP port", "_dns._udp.web.default.svc.cluster.local", TypeSRV, RCodeSuccess,
			[]string{"_dns._udp.web.default.svc.cluster.local SRV 53 web.default.svc.cluster.local"},
			[]string{"web.default.svc.cluster.local A 10.96.0.10"}},
		{"SRV headless gives each endpoint's port", "_sql._tcp.pg.db.svc.cluster.local", TypeSRV, RCodeSuccess,
			[]string{
				"_sql._tcp.pg.db.svc.cluster.local SRV 40010 pg-0.pg.db.svc.cluster.local",
				"_sql._tcp.pg.db.svc.cluster.local SRV 40011 pg-1.pg.db.svc.cluster.local",
				"_sql._tcp.pg.db.svc.cluster.local SRV 40012 pg-2.pg.db.svc.cluster.local",
			},
			[]string{"pg-0.pg.db.svc.cluster.local A 192.168.1.21", "pg-1.pg.db.svc.cluster.local A 192.168.1.21", "pg-2.pg.db.svc.cluster.local A 192.168.1.22"}},
		{"StatefulSet pod hostname", "pg-2.pg.db.svc.cluster.local", TypeA, RCodeSuccess,
			[]string{"pg-2.pg.db.svc.cluster.local A 192.168.1.22"}, nil},
		{"unready pod hostname still resolves", "pg-3.pg.db.svc.cluster.local", TypeA, RCodeSuccess,
			[]string{"pg-3.pg.db.svc.cluster.local A 192.168.1.23"}, nil},
		{"SRV wrong proto", "_http._udp.web.default.svc.cluster.local", TypeSRV, RCodeNXDomain, nil, nil},
		{"unknown service", "nope.default.svc.cluster.local", TypeA, RCodeNXDomain, nil, nil},
		{"unknown namespace", "db.nope.svc.cluster.local", TypeA, RCodeNXDomain, nil, nil},
		{"unknown pod hostname", "pg-9.pg.db.svc.cluster.local", TypeA, RCodeNXDomain, nil, nil},
		{"namespace is an empty non-terminal", "db.svc.cluster.local", TypeA, RCodeSuccess, nil, nil},
		{"apex SOA", "cluster.local", TypeSOA, RCodeSuccess, []string{"cluster.local SOA"}, nil},
		{"pod records not served", "10-0-0-1.default.pod.cluster.local", TypeA, RCodeNXDomain, nil, nil},
		{"outside the domain is refused", "example.org", TypeA, RCodeRefused, nil, nil},
		{"suffix lookalike is refused", "web.default.svc.notcluster.local", TypeA, RCodeRefused, nil, nil},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range tests {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				m := query(t, s.Addr(), network, tc.qname, tc.qtype, 0)
				if m.RCode != tc.rcode {
					t.Fatalf("rcode %d, want %d", m.RCode, tc.rcode)
				}
				got := rrText(m.Answers)
				slices.Sort(got)
				if !slices.Equal(got, tc.answers) {
					t.Errorf("answers\n got %q\nwant %q", got, tc.answers)
				}
				extra := rrText(m.Additional)
				slices.Sort(extra)
				if !slices.Equal(extra, tc.extra) {
					t.Errorf("additional\n got %q\nwant %q", extra, tc.extra)
				}
				if tc.rcode == RCodeRefused {
					if m.Authoritative || len(m.Answers)+len(m.Authority) > 0 {
						t.Errorf("REFUSED must be bare: aa=%v %v %v", m.Authoritative, m.Answers, m.Authority)
					}
					return
				}
				if !m.Authoritative || m.RecursionAvailable {
					t.Errorf("aa=%v ra=%v, want authoritative without recursion", m.Authoritative, m.RecursionAvailable)
				}
				if len(m.Answers) == 0 || m.RCode == RCodeNXDomain {
					if len(m.Authority) != 1 || m.Authority[0].Type != TypeSOA || m.Authority[0].SOA.Minimum != 5 {
						t.Errorf("negative answer authority %+v, want the zone SOA (RFC 2308)", m.Authority)
					}
				}
				for _, rr := range m.Answers {
					if rr.TTL != 5 {
						t.Errorf("ttl %d, want 5", rr.TTL)
					}
				}
			})
		}
	}
}

// TestServerTruncatesUDP checks that an answer too big for 512 bytes sets
// TC over UDP, fits with EDNS, and comes whole over TCP.
func TestServerTruncatesUDP(t *testing.T) {
	st := NewStore()
	st.SetService(Service{Namespace: "default", Name: "big", Ports: []Port{{Name: "http", Port: 80}}})
	var eps []Endpoint
	for i := range 60 {
		eps = append(eps, Endpoint{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i / 250), byte(1 + i%250)}), Ready: true,
			Ports: []Port{{Name: "http", Port: uint16(40000 + i)}}})
	}
	st.SetEndpoints("default", "big", "big", eps)
	s := startServer(t, st)
	tests := []struct {
		network string
		edns    uint16
		qtype   uint16
		trunc   bool
		n       int
	}{
		{"udp", 0, TypeA, true, 0},      // 60 A records > 512 bytes
		{"udp", 4096, TypeA, false, 60}, // fits in 1232
		{"udp", 4096, TypeSRV, true, 0}, // 60 SRV + 60 A do not
		{"tcp", 0, TypeSRV, false, 60},  // TCP carries everything
		{"tcp", 0, TypeA, false, 60},
	}
	for _, tc := range tests {
		qname := "big.default.svc.cluster.local"
		if tc.qtype == TypeSRV {
			qname = "_http._tcp." + qname
		}
		m := query(t, s.Addr(), tc.network, qname, tc.qtype, tc.edns)
		if m.Truncated != tc.trunc || len(m.Answers) != tc.n {
			t.Errorf("%s edns=%d type=%d: tc=%v answers=%d, want tc=%v answers=%d", tc.network, tc.edns, tc.qtype, m.Truncated, len(m.Answers), tc.trunc, tc.n)
		}
		if tc.edns > 0 && findOPT(m) == nil {
			t.Errorf("%s edns=%d: no OPT in the answer", tc.network, tc.edns)
		}
	}
}

// TestServerMalformed checks the server survives garbage and answers
// FORMERR when it can.
func TestServerMalformed(t *testing.T) {
	s := startServer(t, testStore())
	c, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A header claiming one question, followed by a label running off the end.
	bad := []byte{0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 40, 'x'}
	if _, err := c.Write([]byte{1, 2, 3}); err != nil { // too short: no answer
		t.Fatal(err)
	}
	if _, err := c.Write(bad); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(buf[:n])
	if err != nil || m.ID != 0xabcd || m.RCode != RCodeFormErr {
		t.Fatalf("answer %+v err %v, want FORMERR for id 0xabcd", m, err)
	}
	// Still serving.
	if m := query(t, s.Addr(), "udp", "web.default.svc.cluster.local", TypeA, 0); len(m.Answers) != 1 {
		t.Fatalf("after garbage: %+v", m)
	}
}

func TestDecodeRejects(t *testing.T) {
	hdr := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	tests := []struct {
		name string
		msg  []byte
	}{
		{"short header", []byte{0, 1, 0}},
		{"pointer loop", append(slices.Clone(hdr), 0xc0, 12, 0, 1, 0, 1)},
		{"forward pointer", append(slices.Clone(hdr), 0xc0, 30, 0, 1, 0, 1)},
		{"label past end", append(slices.Clone(hdr), 5, 'a', 'b')},
		{"missing type", append(slices.Clone(hdr), 1, 'a', 0)},
		{"reserved label type", append(slices.Clone(hdr), 0x80, 0, 1, 0, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.msg); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %v, want ErrMalformed", err)
			}
		})
	}
}

// TestEncodeCompresses checks names repeated in a message are pointers and
// decode back to the same names.
func TestEncodeCompresses(t *testing.T) {
	m := &Message{ID: 7, Response: true, Questions: []Question{{Name: "a.default.svc.cluster.local", Type: TypeA, Class: ClassINET}}}
	for i := range 10 {
		m.Answers = append(m.Answers, RR{Name: "a.default.svc.cluster.local", Type: TypeA, Class: ClassINET, TTL: 5,
			Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})})
	}
	m.Answers = append(m.Answers, RR{Name: "b.default.svc.cluster.local", Type: TypeCNAME, Class: ClassINET, Target: "a.default.svc.cluster.local"})
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// Uncompressed, each answer name alone would take 29 bytes.
	if len(b) > 12+33+10*(2+14)+(4+10+2)+2+40 {
		t.Errorf("encoded %d bytes: names not compressed", len(b))
	}
	d, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := rrText(d.Answers); got[0] != "a.default.svc.cluster.local A 10.0.0.0" || !strings.HasSuffix(got[10], "CNAME a.default.svc.cluster.local") || got[10][:1] != "b" {
		t.Errorf("round trip: %q", got)
	}
}

func TestResolvConf(t *testing.T) {
	tests := []struct {
		name string
		rc   ResolvConf
		want string
	}{
		{"defaults", ResolvConf{Nameserver: netip.MustParseAddr("127.0.0.153"), Namespace: "shop"},
			"nameserver 127.0.0.153\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
		{"upstreams after, at most three, self skipped", ResolvConf{
			Nameserver: netip.MustParseAddr("127.0.0.153"), Namespace: "default", Domain: "edge.lan.",
			Upstreams: []netip.Addr{netip.MustParseAddr("127.0.0.153"), netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("9.9.9.9")}},
			"nameserver 127.0.0.153\nnameserver 192.168.1.1\nnameserver 1.1.1.1\nsearch default.svc.edge.lan svc.edge.lan edge.lan\noptions ndots:5\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rc.Render(); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
