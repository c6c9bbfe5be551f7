// Package nodeport translates node-port traffic from outside the node at
// TC (see ../bpf/nodeport.c): for externalTrafficPolicy Local services the
// node's interface rewrites client -> node:nodePort into client ->
// backend:port and the replies back, so the backend sees the client's own
// address. The agent's listener on the node port stays as the path for
// everything the programs leave alone.
//
// Programs attach through tcx links (Linux 6.6 or newer), else as
// direct-action bpf filters of a clsact qdisc (cls_bpf, the older kernels
// of many boards). Maps and tcx links are pinned under the pin directory,
// beside the socket LB's; cls_bpf filters stay on their device by
// themselves. Either way flows keep being translated while the agent
// restarts.
package nodeport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/flotilla-edge/flotilla/netpolicy/internal/bpfenc"
)

// MaxBackends is how many backends one node port can have here (the
// BPF value holds them inline so one update replaces the whole list).
const MaxBackends = 32

// linkPrefix names pinned links; ebpflb.Teardown detaches every pinned
// "link_*" of a pin dir, these included.
const linkPrefix = "link_np_"

// polAllow must match POL_ALLOW in nodeport.c.
const polAllow = 1

// Config configures New.
type Config struct {
	// PinDir is a directory on a bpf filesystem (the socket LB's).
	PinDir string
	// Interfaces are the Ethernet interfaces outside traffic arrives on
	// (those holding the node's address).
	Interfaces []string
	// Attach is AttachTCX, AttachTC, or "" for tcx where the kernel has
	// it, else tc.
	Attach string
}

// Attach modes.
const (
	AttachTCX = "tcx" // bpf_link on the device, Linux ≥ 6.6
	AttachTC  = "tc"  // cls_bpf filter on a clsact qdisc, Linux ≥ 4.5
)

// tcPriority and tcHandle name this package's cls_bpf filters; other
// filters on the device (another tool's) are left alone.
const (
	tcPriority = 0x4f4c // "OL"
	tcHandle   = 1
	tcPrefix   = "flotilla_np_"
)

// Entry is one node port of a Local service and this node's backends.
type Entry struct {
	Addr     netip.AddrPort // node address and node port
	Protocol string         // TCP or UDP
	Backends []netip.AddrPort
}

// Prefix is a client address range and whether a backend admits it.
type Prefix struct {
	Prefix netip.Prefix
	Allow  bool
}

// Backend names one backend port.
type Backend struct {
	Addr     netip.AddrPort
	Protocol string
}

// NAT is the loaded programs, their maps and links.
type NAT struct {
	mu     sync.Mutex
	objs   nodePortObjects
	links  []link.Link
	pinDir string
	mode   string // AttachTCX or AttachTC
	closed bool
	// admission mirrors np_pol_lpm per backend.
	admission map[Backend][]Prefix
}

// New loads the programs with the pinned maps of pinDir (creating them the
// first time) and attaches them, ingress and egress, to each interface,
// reusing the links an earlier agent pinned.
func New(cfg Config) (*NAT, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("node-port translation needs root (CAP_BPF, CAP_NET_ADMIN)")
	}
	if len(cfg.Interfaces) == 0 {
		return nil, errors.New("node-port translation: no interface to attach to")
	}
	if err := os.MkdirAll(cfg.PinDir, 0o700); err != nil {
		return nil, fmt.Errorf("pin dir: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("memlock rlimit: %w", err)
	}
	spec, err := loadNodePort()
	if err != nil {
		return nil, fmt.Errorf("load BPF object: %w", err)
	}
	n := &NAT{pinDir: cfg.PinDir, admission: map[Backend][]Prefix{}}
	if err := spec.LoadAndAssign(&n.objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: cfg.PinDir}}); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("BPF verifier rejected nodeport: %+v", ve)
		}
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("pinned maps in %s are from an incompatible version (remove them to reset): %w", cfg.PinDir, err)
		}
		return nil, fmt.Errorf("load BPF programs: %w", err)
	}
	if err := n.attach(cfg.Interfaces, cfg.Attach); err != nil {
		n.closeAll()
		return nil, err
	}
	if err := n.readAdmission(); err != nil {
		n.closeAll()
		return nil, err
	}
	return n, nil
}

func (n *NAT) attach(ifaces []string, mode string) error {
	switch mode {
	case "", AttachTCX, AttachTC:
	default:
		return fmt.Errorf("attach mode %q: want %s or %s", mode, AttachTCX, AttachTC)
	}
	wanted := map[string]bool{}
	for _, name := range ifaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("interface %s: %w", name, err)
		}
		if len(ifc.HardwareAddr) != 6 {
			return fmt.Errorf("interface %s is not an Ethernet device", name)
		}
		for _, a := range []struct {
			dir    string
			prog   *ebpf.Program
			at     ebpf.AttachType
			parent uint32
		}{
			{"ingress", n.objs.FlotillaNpIngress, ebpf.AttachTCXIngress, netlink.HANDLE_MIN_INGRESS},
			{"egress", n.objs.FlotillaNpEgress, ebpf.AttachTCXEgress, netlink.HANDLE_MIN_EGRESS},
		} {
			if mode != AttachTC {
				file := linkPrefix + a.dir + "_" + name
				lk, err := n.attachOne(filepath.Join(n.pinDir, file), ifc.Index, a.prog, a.at)
				switch {
				case err == nil:
					wanted[file] = true
					n.links = append(n.links, lk)
					mode = AttachTCX
					continue
				case mode == "" && errors.Is(err, ebpf.ErrNotSupported):
					mode = AttachTC // an older kernel: every device uses tc
				default:
					return fmt.Errorf("attach %s to %s: %w", a.dir, name, err)
				}
			}
			if err := attachTC(ifc.Index, a.prog, a.parent, tcPrefix+a.dir); err != nil {
				return fmt.Errorf("attach %s to %s (tc): %w", a.dir, name, err)
			}
		}
		if mode == AttachTCX {
			// A kernel upgrade moved this device from tc to tcx.
			detachTC(ifc.Index)
		}
	}
	n.mode = mode
	// Links of interfaces no longer used (the node's address moved), or
	// of tcx when tc took over.
	ents, err := os.ReadDir(n.pinDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), linkPrefix) && !wanted[e.Name()] {
			detachPinned(filepath.Join(n.pinDir, e.Name()))
		}
	}
	return nil
}

// Mode is how the programs are attached: AttachTCX or AttachTC.
func (n *NAT) Mode() string { return n.mode }

// attachTC puts prog on the device as a direct-action bpf filter of its
// clsact qdisc (created if missing), replacing an earlier agent's.
func attachTC(ifindex int, prog *ebpf.Program, parent uint32, name string) error {
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	if err := netlink.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("clsact qdisc: %w", err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: parent, Handle: netlink.MakeHandle(0, tcHandle),
			Protocol: unix.ETH_P_ALL, Priority: tcPriority},
		Fd: prog.FD(), Name: name, DirectAction: true,
	}
	if err := netlink.FilterReplace(f); err != nil {
		return fmt.Errorf("bpf filter: %w", err)
	}
	return nil
}

// detachTC removes this package's cls_bpf filters from the device.
func detachTC(ifindex int) {
	lk, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return
	}
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		fs, err := netlink.FilterList(lk, parent)
		if err != nil {
			continue
		}
		for _, f := range fs {
			if bf, ok := f.(*netlink.BpfFilter); ok && bf.Priority == tcPriority && strings.HasPrefix(bf.Name, tcPrefix) {
				_ = netlink.FilterDel(bf)
			}
		}
	}
}

func (n *NAT) attachOne(path string, ifindex int, prog *ebpf.Program, at ebpf.AttachType) (link.Link, error) {
	if lk, err := link.LoadPinnedLink(path, nil); err == nil {
		info, ierr := lk.Info()
		if ierr == nil && info.TCX() != nil && int(info.TCX().Ifindex) == ifindex {
			// An earlier agent's link on the same device: keep it, with
			// the freshly loaded program (same pinned maps).
			if err := lk.Update(prog); err != nil {
				lk.Close()
				return nil, fmt.Errorf("update pinned link %s: %w", path, err)
			}
			return lk, nil
		}
		_ = lk.Detach()
		_ = lk.Unpin()
		lk.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open pinned link %s: %w", path, err)
	}
	lk, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: at})
	if err != nil {
		return nil, fmt.Errorf("tcx (needs Linux 6.6 or newer): %w", err)
	}
	if err := lk.Pin(path); err != nil {
		lk.Close()
		return nil, fmt.Errorf("pin link %s: %w", path, err)
	}
	return lk, nil
}

func detachPinned(path string) {
	if lk, err := link.LoadPinnedLink(path, nil); err == nil {
		_ = lk.Detach()
		_ = lk.Unpin()
		lk.Close()
		return
	}
	_ = os.Remove(path)
}

// InterfaceOf returns the name of the interface holding addr.
func InterfaceOf(addr netip.Addr) (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifc := range ifs {
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == addr.Unmap() {
				return ifc.Name, nil
			}
		}
	}
	return "", fmt.Errorf("no interface holds %s", addr)
}

func npKey(a netip.AddrPort, proto string) nodePortNpKey {
	return nodePortNpKey{Addr: bpfenc.Addr4(a.Addr()), Port: bpfenc.Port(a.Port()), Proto: bpfenc.Proto(proto)}
}

func (n *NAT) check() error {
	if n.closed {
		return errors.New("node-port translation closed")
	}
	return nil
}

// Upsert installs or replaces the backends of one node port with a
// single map update.
func (n *NAT) Upsert(e Entry) error {
	if !e.Addr.Addr().Unmap().Is4() {
		return fmt.Errorf("node port %v: only IPv4 is translated", e.Addr)
	}
	if e.Protocol != "TCP" && e.Protocol != "UDP" {
		return fmt.Errorf("node port %v: protocol %q is not TCP or UDP", e.Addr, e.Protocol)
	}
	if len(e.Backends) == 0 || len(e.Backends) > MaxBackends {
		return fmt.Errorf("node port %v: %d backends (want 1 to %d)", e.Addr, len(e.Backends), MaxBackends)
	}
	var v nodePortNpVal
	v.Count = uint32(len(e.Backends))
	for i, b := range e.Backends {
		if !b.Addr().Unmap().Is4() {
			return fmt.Errorf("node port %v: backend %v is not IPv4", e.Addr, b)
		}
		v.Be[i].Addr, v.Be[i].Port = bpfenc.Addr4(b.Addr()), bpfenc.Port(b.Port())
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return err
	}
	k := npKey(e.Addr, e.Protocol)
	if err := n.objs.NpServices.Put(&k, &v); err != nil {
		return fmt.Errorf("node port %v/%s: %w", e.Addr, e.Protocol, err)
	}
	return nil
}

// Delete removes a node port; its flows already pinned keep their
// backend until they end, as with conntrack.
func (n *NAT) Delete(addr netip.AddrPort, proto string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return err
	}
	k := npKey(addr, proto)
	if err := n.objs.NpServices.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("node port %v/%s: %w", addr, proto, err)
	}
	return nil
}

// Entries returns what the map holds (an earlier agent's entries after a
// restart), sorted.
func (n *NAT) Entries() ([]Entry, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return nil, err
	}
	var out []Entry
	var k nodePortNpKey
	var v nodePortNpVal
	it := n.objs.NpServices.Iterate()
	for it.Next(&k, &v) {
		e := Entry{Addr: netip.AddrPortFrom(bpfenc.AddrOf(k.Addr), bpfenc.PortOf(k.Port)), Protocol: bpfenc.ProtoName(k.Proto)}
		for i := 0; i < int(min(v.Count, MaxBackends)); i++ {
			e.Backends = append(e.Backends, netip.AddrPortFrom(bpfenc.AddrOf(v.Be[i].Addr), bpfenc.PortOf(v.Be[i].Port)))
		}
		out = append(out, e)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read node ports: %w", err)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return strings.Compare(a.Protocol, b.Protocol)
	})
	return out, nil
}

func polKey(b Backend, p netip.Prefix) nodePortPolKey {
	return nodePortPolKey{
		Prefixlen: 64 + uint32(p.Bits()),
		BeAddr:    bpfenc.Addr4(b.Addr.Addr()),
		BePort:    bpfenc.Port(b.Addr.Port()),
		Proto:     bpfenc.Proto(b.Protocol),
		Client:    bpfenc.Addr4(p.Masked().Addr()),
	}
}

// readAdmission loads what np_pol_lpm holds into the mirror.
func (n *NAT) readAdmission() error {
	var k nodePortPolKey
	var v uint32
	it := n.objs.NpPolLpm.Iterate()
	for it.Next(&k, &v) {
		if k.Prefixlen < 64 || k.Prefixlen > 96 {
			continue
		}
		b := Backend{Addr: netip.AddrPortFrom(bpfenc.AddrOf(k.BeAddr), bpfenc.PortOf(k.BePort)), Protocol: bpfenc.ProtoName(k.Proto)}
		p := netip.PrefixFrom(bpfenc.AddrOf(k.Client), int(k.Prefixlen-64))
		n.admission[b] = append(n.admission[b], Prefix{Prefix: p, Allow: v == polAllow})
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read node-port policy: %w", err)
	}
	for b := range n.admission {
		sortPrefixes(n.admission[b])
	}
	return nil
}

func sortPrefixes(ps []Prefix) {
	slices.SortFunc(ps, func(a, b Prefix) int {
		if c := a.Prefix.Bits() - b.Prefix.Bits(); c != 0 {
			return c
		}
		return a.Prefix.Addr().Compare(b.Prefix.Addr())
	})
}

// SetAdmission replaces which client addresses backend admits: the
// longest prefix containing the client decides. No prefixes = everyone
// (the backend's pod is not ingress-isolated). New entries are written
// before stale ones are removed.
func (n *NAT) SetAdmission(b Backend, prefixes []Prefix) error {
	if !b.Addr.Addr().Unmap().Is4() {
		return fmt.Errorf("backend %v: only IPv4 is translated", b.Addr)
	}
	want := map[netip.Prefix]bool{}
	var ps []Prefix
	for _, p := range prefixes {
		if !p.Prefix.Addr().Unmap().Is4() {
			continue // IPv6 clients are never translated
		}
		m := netip.PrefixFrom(p.Prefix.Addr().Unmap(), p.Prefix.Bits()).Masked()
		if _, dup := want[m]; dup {
			continue
		}
		want[m] = p.Allow
		ps = append(ps, Prefix{Prefix: m, Allow: p.Allow})
	}
	sortPrefixes(ps)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return err
	}
	b.Addr = netip.AddrPortFrom(b.Addr.Addr().Unmap(), b.Addr.Port())
	for _, p := range ps {
		k := polKey(b, p.Prefix)
		v := uint32(2)
		if p.Allow {
			v = polAllow
		}
		if err := n.objs.NpPolLpm.Put(&k, &v); err != nil {
			return fmt.Errorf("backend %v policy %v: %w", b.Addr, p.Prefix, err)
		}
	}
	for _, old := range n.admission[b] {
		if _, keep := want[old.Prefix]; keep {
			continue
		}
		k := polKey(b, old.Prefix)
		if err := n.objs.NpPolLpm.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("backend %v policy %v: %w", b.Addr, old.Prefix, err)
		}
	}
	if len(ps) == 0 {
		delete(n.admission, b)
	} else {
		n.admission[b] = ps
	}
	return nil
}

// Admission returns the backends with admission entries and their
// prefixes.
func (n *NAT) Admission() map[Backend][]Prefix {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[Backend][]Prefix, len(n.admission))
	for b, ps := range n.admission {
		out[b] = slices.Clone(ps)
	}
	return out
}

// Close releases the handles; pinned links and maps stay, so traffic
// keeps being translated until the next agent takes over.
func (n *NAT) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	return n.closeAll()
}

func (n *NAT) closeAll() error {
	var errs []error
	for _, l := range n.links {
		errs = append(errs, l.Close())
	}
	n.links = nil
	errs = append(errs, n.objs.Close())
	return errors.Join(errs...)
}

// Detach removes the programs from every device of this network
// namespace: the pinned tcx links of pinDir and this package's cls_bpf
// filters. The maps stay pinned (ebpflb.Teardown removes the pin dir).
func Detach(pinDir string) error {
	if ifs, err := net.Interfaces(); err == nil {
		for _, ifc := range ifs {
			detachTC(ifc.Index)
		}
	}
	ents, err := os.ReadDir(pinDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), linkPrefix) {
			detachPinned(filepath.Join(pinDir, e.Name()))
		}
	}
	return nil
}
