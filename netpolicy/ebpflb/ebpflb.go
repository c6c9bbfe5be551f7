// Package ebpflb is Flotilla's eBPF service load balancer: cgroup sock_addr
// programs (connect, sendmsg, recvmsg and getpeername, each for AF_INET
// and AF_INET6 sockets; see ../bpf/sock_lb.c) translate service VIPs to
// backends when a socket connects or sends, instead of NATing packets.
// Services are IPv4; an AF_INET6 socket reaches them at ::ffff:VIP.
//
// Maps and links are pinned under the pin directory (default
// /sys/fs/bpf/flotilla), so the datapath keeps serving while the agent
// restarts and a new agent picks up the same maps and links.
package ebpflb

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/flotilla-edge/flotilla/netpolicy/internal/bpfenc"
	"github.com/flotilla-edge/flotilla/netpolicy/internal/lbapi"
)

// DefaultPinDir is where maps and links are pinned when Config.PinDir is "".
const DefaultPinDir = "/sys/fs/bpf/flotilla"

// slotsPerGen must match SLOTS_PER_GEN in sock_lb.c.
const slotsPerGen = 65536

const flagGen = 1

// Config configures New.
type Config struct {
	// CgroupPath is the cgroup v2 directory the programs attach to; every
	// process in it or below it is load-balanced. "" = the cgroup v2 root.
	CgroupPath string
	// PinDir is a directory on a bpf filesystem; "" = DefaultPinDir.
	PinDir string
}

// LB is the eBPF load balancer. It implements netpolicy.LB.
type LB struct {
	mu     sync.Mutex
	objs   sockLBObjects
	links  []link.Link
	pinDir string
	cgroup string
	used   map[uint32]bool
	nextID uint32
	closed bool
	// polRules mirrors pol_rules per client cgroup (nil until first used).
	polRules map[uint64]map[sockLBPolKey]uint32
}

// hook is one program and where it attaches; its link is pinned as
// link_<name>.
type hook struct {
	name   string
	prog   *ebpf.Program
	attach ebpf.AttachType
}

// hooks lists every program of sock_lb.c with its attach type.
func hooks(objs *sockLBObjects) []hook {
	return []hook{
		{"connect4", objs.FlotillaConnect4, ebpf.AttachCGroupInet4Connect},
		{"sendmsg4", objs.FlotillaSendmsg4, ebpf.AttachCGroupUDP4Sendmsg},
		{"recvmsg4", objs.FlotillaRecvmsg4, ebpf.AttachCGroupUDP4Recvmsg},
		{"getpeername4", objs.FlotillaGetpeername4, ebpf.AttachCgroupInet4GetPeername},
		{"connect6", objs.FlotillaConnect6, ebpf.AttachCGroupInet6Connect},
		{"sendmsg6", objs.FlotillaSendmsg6, ebpf.AttachCGroupUDP6Sendmsg},
		{"recvmsg6", objs.FlotillaRecvmsg6, ebpf.AttachCGroupUDP6Recvmsg},
		{"getpeername6", objs.FlotillaGetpeername6, ebpf.AttachCgroupInet6GetPeername},
	}
}

// New loads the programs, creates or reopens the pinned maps and attaches
// (or reuses the pinned links of) the programs on the cgroup.
func New(cfg Config) (*LB, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("ebpf load balancer needs root (CAP_BPF, CAP_NET_ADMIN)")
	}
	if cfg.PinDir == "" {
		cfg.PinDir = DefaultPinDir
	}
	if cfg.CgroupPath == "" {
		root, err := Cgroup2Root()
		if err != nil {
			return nil, err
		}
		cfg.CgroupPath = root
	}
	if err := isCgroup2(cfg.CgroupPath); err != nil {
		return nil, err
	}
	if err := ensureBPFFS(filepath.Dir(cfg.PinDir)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.PinDir, 0o700); err != nil {
		return nil, fmt.Errorf("pin dir: %w", err)
	}
	if err := isBPFFS(cfg.PinDir); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("memlock rlimit: %w", err)
	}

	spec, err := loadSockLB()
	if err != nil {
		return nil, fmt.Errorf("load BPF object: %w", err)
	}
	l := &LB{pinDir: cfg.PinDir, cgroup: cfg.CgroupPath, used: map[uint32]bool{}, nextID: 1}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: cfg.PinDir}}
	if err := spec.LoadAndAssign(&l.objs, opts); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("BPF verifier rejected sock_lb: %+v", ve)
		}
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("pinned maps in %s are from an incompatible version (remove them to reset): %w", cfg.PinDir, err)
		}
		return nil, fmt.Errorf("load BPF programs: %w", err)
	}
	if err := l.attach(); err != nil {
		l.closeAll()
		return nil, err
	}
	if err := l.reconcile(); err != nil {
		l.closeAll()
		return nil, err
	}
	return l, nil
}

func (l *LB) attach() error {
	var cgStat unix.Stat_t
	if err := unix.Stat(l.cgroup, &cgStat); err != nil {
		return fmt.Errorf("cgroup %s: %w", l.cgroup, err)
	}
	// A pin dir written by an agent that predates a hook simply lacks its
	// link: that hook is attached fresh, the others are kept.
	for _, a := range hooks(&l.objs) {
		path := filepath.Join(l.pinDir, "link_"+a.name)
		if lk, err := link.LoadPinnedLink(path, nil); err == nil {
			info, ierr := lk.Info()
			if ierr == nil && info.Cgroup() != nil && info.Cgroup().CgroupId == cgStat.Ino {
				// A previous agent's link on the same cgroup: keep it and
				// swap in the freshly loaded program (same pinned maps).
				if uerr := lk.Update(a.prog); uerr != nil {
					lk.Close()
					return fmt.Errorf("update pinned link %s: %w", path, uerr)
				}
				l.links = append(l.links, lk)
				continue
			}
			// Pinned on another cgroup: replace it.
			_ = lk.Detach()
			_ = lk.Unpin()
			lk.Close()
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("open pinned link %s: %w", path, err)
		}
		lk, err := link.AttachCgroup(link.CgroupOptions{Path: l.cgroup, Attach: a.attach, Program: a.prog})
		if err != nil {
			return fmt.Errorf("attach %s to cgroup %s (kernel lacks cgroup BPF?): %w", a.name, l.cgroup, err)
		}
		if err := lk.Pin(path); err != nil {
			lk.Close()
			return fmt.Errorf("pin link %s (kernel lacks bpf_link?): %w", path, err)
		}
		l.links = append(l.links, lk)
	}
	return nil
}

// reconcile learns used service IDs from the pinned maps and deletes
// backend slots outside each service's active range (left over if an agent
// died in the middle of an update).
func (l *LB) reconcile() error {
	active := map[uint32]sockLBSvcVal{}
	var k sockLBSvcKey
	var v sockLBSvcVal
	it := l.objs.Services.Iterate()
	for it.Next(&k, &v) {
		active[v.Id] = v
		l.used[v.Id] = true
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read services map: %w", err)
	}
	var stale []sockLBBeKey
	var bk sockLBBeKey
	var bv sockLBBeVal
	bit := l.objs.Backends.Iterate()
	for bit.Next(&bk, &bv) {
		sv, ok := active[bk.SvcId]
		if !ok || bk.Slot/slotsPerGen != sv.Flags&flagGen || bk.Slot%slotsPerGen >= sv.Count {
			stale = append(stale, bk)
		}
	}
	if err := bit.Err(); err != nil {
		return fmt.Errorf("read backends map: %w", err)
	}
	for _, s := range stale {
		_ = l.objs.Backends.Delete(s)
	}
	return nil
}

// ProgramStats returns each attached program's run count and accumulated
// run time, keyed by hook name (connect4, sendmsg4, recvmsg4, getpeername4
// and the same with 6). The kernel collects them only while enabled, e.g.
// with ebpf.EnableStats(unix.BPF_STATS_RUN_TIME).
func (l *LB) ProgramStats() (map[string]ebpf.ProgramStats, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("load balancer closed")
	}
	out := map[string]ebpf.ProgramStats{}
	for _, h := range hooks(&l.objs) {
		st, err := h.prog.Stats()
		if err != nil {
			return nil, fmt.Errorf("%s stats: %w", h.name, err)
		}
		out[h.name] = *st
	}
	return out, nil
}

// Mode returns "ebpf".
func (l *LB) Mode() string { return "ebpf" }

// PinDir returns the directory holding the pinned maps and links.
func (l *LB) PinDir() string { return l.pinDir }

// CgroupPath returns the cgroup the programs are attached to.
func (l *LB) CgroupPath() string { return l.cgroup }

func svcKey(vip netip.Addr, port uint16, proto string) sockLBSvcKey {
	return sockLBSvcKey{Vip: bpfenc.Addr4(vip), Port: bpfenc.Port(port), Proto: bpfenc.Proto(proto)}
}

func affinitySeconds(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	s := (d + time.Second - 1) / time.Second
	if s > 1<<31 {
		s = 1 << 31
	}
	return uint32(s)
}

func (l *LB) allocID() (uint32, error) {
	for i := 0; i < 1<<20; i++ {
		id := l.nextID
		l.nextID++
		if l.nextID == 0 {
			l.nextID = 1
		}
		if id != 0 && !l.used[id] {
			l.used[id] = true
			return id, nil
		}
	}
	return 0, errors.New("no free service id")
}

// Upsert installs or replaces a service using the double-buffered slot
// ranges described in sock_lb.c: write the inactive range, flip the
// service entry in one update, then delete the old range.
func (l *LB) Upsert(s lbapi.Service) error {
	s, err := lbapi.Normalize(s)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("load balancer closed")
	}
	key := svcKey(s.VIP, s.Port, s.Protocol)
	var old sockLBSvcVal
	exists := true
	if err := l.objs.Services.Lookup(&key, &old); err != nil {
		if !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("lookup service: %w", err)
		}
		exists = false
	}
	nv := sockLBSvcVal{Count: uint32(len(s.Backends)), AffinityTimeout: affinitySeconds(s.AffinityTimeout)}
	var gen uint32
	if exists {
		nv.Id = old.Id
		gen = 1 - old.Flags&flagGen
	} else {
		if nv.Id, err = l.allocID(); err != nil {
			return err
		}
	}
	nv.Flags = gen
	for i, b := range s.Backends {
		bk := sockLBBeKey{SvcId: nv.Id, Slot: gen*slotsPerGen + uint32(i)}
		bv := sockLBBeVal{Addr: bpfenc.Addr4(b.Addr()), Port: bpfenc.Port(b.Port())}
		if err := l.objs.Backends.Update(&bk, &bv, ebpf.UpdateAny); err != nil {
			l.deleteSlots(nv.Id, gen, uint32(i))
			if !exists {
				delete(l.used, nv.Id)
			}
			return fmt.Errorf("write backend %v: %w", b, err)
		}
	}
	// The flip: one map update makes the new list visible.
	if err := l.objs.Services.Update(&key, &nv, ebpf.UpdateAny); err != nil {
		l.deleteSlots(nv.Id, gen, nv.Count)
		if !exists {
			delete(l.used, nv.Id)
		}
		return fmt.Errorf("write service: %w", err)
	}
	if exists {
		l.deleteSlots(nv.Id, old.Flags&flagGen, old.Count)
	}
	keep := map[uint64]bool{}
	if nv.AffinityTimeout > 0 {
		for _, b := range s.Backends {
			keep[uint64(bpfenc.Addr4(b.Addr()))<<16|uint64(bpfenc.Port(b.Port()))] = true
		}
	}
	l.purgeAffinity(nv.Id, keep)
	return nil
}

func (l *LB) deleteSlots(id, gen, count uint32) {
	for i := uint32(0); i < count; i++ {
		bk := sockLBBeKey{SvcId: id, Slot: gen*slotsPerGen + i}
		_ = l.objs.Backends.Delete(&bk)
	}
}

// purgeAffinity deletes the affinity entries of service id whose backend is
// not in keep (all of them when keep is empty).
func (l *LB) purgeAffinity(id uint32, keep map[uint64]bool) {
	var k sockLBAffKey
	var v sockLBAffVal
	var del []sockLBAffKey
	it := l.objs.Affinity.Iterate()
	for it.Next(&k, &v) {
		if k.SvcId == id && !keep[uint64(v.Addr)<<16|uint64(v.Port)] {
			del = append(del, k)
		}
	}
	for _, d := range del {
		_ = l.objs.Affinity.Delete(&d)
	}
}

// Delete removes a service. New connections to the VIP are no longer
// translated (and fail, as nothing owns the VIP).
func (l *LB) Delete(vip netip.Addr, port uint16, proto string) error {
	p, err := lbapi.NormalizeProto(proto)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("load balancer closed")
	}
	key := svcKey(vip.Unmap(), port, p)
	var old sockLBSvcVal
	if err := l.objs.Services.Lookup(&key, &old); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("%v:%d/%s: %w", vip, port, p, lbapi.ErrNotFound)
		}
		return err
	}
	if err := l.objs.Services.Delete(&key); err != nil {
		return fmt.Errorf("delete service: %w", err)
	}
	l.deleteSlots(old.Id, old.Flags&flagGen, old.Count)
	l.purgeAffinity(old.Id, nil)
	delete(l.used, old.Id)
	return nil
}

// Services reads the installed services back from the maps.
func (l *LB) Services() []lbapi.Service {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	var out []lbapi.Service
	var k sockLBSvcKey
	var v sockLBSvcVal
	it := l.objs.Services.Iterate()
	for it.Next(&k, &v) {
		s := lbapi.Service{
			VIP:             bpfenc.AddrOf(k.Vip),
			Port:            bpfenc.PortOf(k.Port),
			Protocol:        bpfenc.ProtoName(k.Proto),
			AffinityTimeout: time.Duration(v.AffinityTimeout) * time.Second,
			Backends:        []netip.AddrPort{},
		}
		gen := v.Flags & flagGen
		for i := uint32(0); i < v.Count; i++ {
			var bv sockLBBeVal
			bk := sockLBBeKey{SvcId: v.Id, Slot: gen*slotsPerGen + i}
			if err := l.objs.Backends.Lookup(&bk, &bv); err == nil {
				s.Backends = append(s.Backends, netip.AddrPortFrom(bpfenc.AddrOf(bv.Addr), bpfenc.PortOf(bv.Port)))
			}
		}
		out = append(out, s)
	}
	lbapi.Sort(out)
	return out
}

// Close releases this process's handles. The pinned links stay attached and
// the pinned maps keep their contents, so services keep working; a later
// New with the same PinDir takes over. Use Teardown to remove everything.
func (l *LB) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.closeAll()
	return nil
}

func (l *LB) closeAll() {
	for _, lk := range l.links {
		lk.Close()
	}
	l.links = nil
	l.objs.Close()
}

// Teardown detaches the programs pinned in pinDir and removes the pinned
// links and maps and the directory. It works whether or not an LB using
// pinDir is open (an open LB should be closed first).
func Teardown(pinDir string) error {
	if pinDir == "" {
		pinDir = DefaultPinDir
	}
	entries, err := os.ReadDir(pinDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(pinDir, e.Name())
		if strings.HasPrefix(e.Name(), "link_") {
			if lk, err := link.LoadPinnedLink(p, nil); err == nil {
				if err := lk.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
					errs = append(errs, fmt.Errorf("detach %s: %w", p, err))
				}
				lk.Close()
			}
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(pinDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Cgroup2Root returns the mount point of the cgroup v2 hierarchy (e.g.
// /sys/fs/cgroup or, on hybrid systems, /sys/fs/cgroup/unified).
func Cgroup2Root() (string, error) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "cgroup2" {
			return fields[1], nil
		}
	}
	return "", errors.New("no cgroup v2 filesystem mounted")
}

func isCgroup2(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("cgroup %s: %w", path, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("%s is not a cgroup v2 directory", path)
	}
	return nil
}

func isBPFFS(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("bpffs %s: %w", path, err)
	}
	if uint32(st.Type) != uint32(unix.BPF_FS_MAGIC) {
		return fmt.Errorf("%s is not on a bpf filesystem (no bpffs)", path)
	}
	return nil
}

// ensureBPFFS mounts bpffs on /sys/fs/bpf when dir is under it and nothing
// is mounted there yet.
func ensureBPFFS(dir string) error {
	if isBPFFS(dir) == nil {
		return nil
	}
	const root = "/sys/fs/bpf"
	if dir != root && !strings.HasPrefix(dir, root+"/") {
		return fmt.Errorf("%s is not on a bpf filesystem (no bpffs)", dir)
	}
	if isBPFFS(root) != nil {
		if err := os.MkdirAll(root, 0o700); err != nil {
			return fmt.Errorf("no bpffs: %w", err)
		}
		if err := unix.Mount("bpf", root, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("no bpffs: mount bpf on %s: %w", root, err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return isBPFFS(dir)
}
