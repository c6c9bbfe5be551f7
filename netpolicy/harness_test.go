package netpolicy_test

// Test harness: a network namespace without a default route per test, a
// fresh cgroup v2 directory, backends inside the namespace (goroutines on a
// thread switched into it) and a client process (this test binary re-run as
// TestHelperProcess under `ip netns exec`, started directly inside the test
// cgroup with CLONE_INTO_CGROUP) driven over stdin/stdout with JSON lines.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/internal/netns"
	"github.com/flotilla-edge/flotilla/internal/privtest"

	"golang.org/x/sys/unix"

	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
)

// requirePrivileged: see privtest.RequireEBPF.
func requirePrivileged(t testing.TB) {
	t.Helper()
	privtest.RequireEBPF(t)
}

func randSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type testEnv struct {
	ns     string // netns name
	cgroup string // cgroup v2 dir
	pinDir string
}

// newEnv creates the namespace (loopback up, no other interface, no
// default route), the cgroup and a pin dir name; cleanup removes them.
func newEnv(t testing.TB) *testEnv {
	t.Helper()
	requirePrivileged(t)
	sfx := randSuffix()
	e := &testEnv{ns: "fltest-" + sfx, pinDir: "/sys/fs/bpf/flotilla-test-" + sfx}
	run(t, "ip", "netns", "add", e.ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", e.ns).Run() })
	run(t, "ip", "-n", e.ns, "link", "set", "lo", "up")
	// Loopback TIME_WAIT reuse, for benchmarks that open many connections.
	_ = exec.Command("ip", "netns", "exec", e.ns, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1").Run()

	root, err := ebpflb.Cgroup2Root()
	if err != nil {
		t.Fatal(err)
	}
	e.cgroup = filepath.Join(root, "flotilla-test-"+sfx)
	if err := os.Mkdir(e.cgroup, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ { // the helper may take a moment to leave
			if err := os.Remove(e.cgroup); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("cgroup %s not removed", e.cgroup)
	})
	t.Cleanup(func() {
		if err := ebpflb.Teardown(e.pinDir); err != nil {
			t.Errorf("teardown %s: %v", e.pinDir, err)
		}
	})
	return e
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// inNetns runs fn on a thread in the namespace (netns.Do).
func (e *testEnv) inNetns(fn func() error) error { return netns.Do(e.ns, fn) }

// startBackends runs a TCP and a UDP server on each address (IPv4 or IPv6)
// inside the namespace. Both answer every request line / datagram with the
// backend's identity (its address).
func (e *testEnv) startBackends(t testing.TB, addrs ...netip.AddrPort) {
	t.Helper()
	var closers []io.Closer
	var wg sync.WaitGroup
	err := e.inNetns(func() error {
		for _, a := range addrs {
			id := a.String()
			tcp, udp := "tcp4", "udp4"
			if a.Addr().Is6() {
				tcp, udp = "tcp6", "udp6"
			}
			ln, err := net.Listen(tcp, a.String())
			if err != nil {
				return err
			}
			closers = append(closers, ln)
			pc, err := net.ListenUDP(udp, net.UDPAddrFromAddrPort(a))
			if err != nil {
				return err
			}
			closers = append(closers, pc)
			wg.Add(2)
			go func() {
				defer wg.Done()
				var cw sync.WaitGroup
				defer cw.Wait()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					cw.Add(1)
					go func() {
						defer cw.Done()
						defer c.Close()
						_ = c.SetDeadline(time.Now().Add(30 * time.Second))
						r := bufio.NewReader(c)
						for {
							if _, err := r.ReadString('\n'); err != nil {
								return
							}
							if _, err := io.WriteString(c, id+"\n"); err != nil {
								return
							}
						}
					}()
				}
			}()
			go func() {
				defer wg.Done()
				buf := make([]byte, 2048)
				for {
					_, from, err := pc.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					_, _ = pc.WriteToUDPAddrPort([]byte(id+"\n"), from)
				}
			}()
		}
		return nil
	})
	t.Cleanup(func() {
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
	})
	if err != nil {
		t.Fatalf("start backends: %v", err)
	}
}

// helperReq / helperResp are the client protocol. "tcp" and "udp" use
// AF_INET sockets; "tcp6" and "udp6" use dual-stack AF_INET6 sockets (an
// IPv4 Addr is dialled as ::ffff:a.b.c.d), as Node.js or Java do.
type helperReq struct {
	Op        string // "hello", "tcp", "udp", "tcp6", "udp6", "bench"
	Addr      string
	N         int
	Connected bool // udp: connected socket
	KeepAlive bool // bench: one connection for all requests
}

type helperResp struct {
	Counts     map[string]int // backend identity -> replies
	Peers      map[string]int // getpeername / reply source -> count
	Errs       []string       // first errors
	ErrCount   int
	MaxErrMS   int64 // slowest failing attempt
	Cgroup     string
	ElapsedNS  int64
	P50NS      int64
	P99NS      int64
	HelperFail string
}

type helper struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

// startClient starts the client process in the namespace and the cgroup.
func (e *testEnv) startClient(t testing.TB) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cg, err := os.Open(e.cgroup)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	cmd := exec.Command("ip", "netns", "exec", e.ns, exe, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "FLOTILLA_LB_HELPER=1")
	cmd.SysProcAttr = &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start client: %v", err)
	}
	h := &helper{cmd: cmd, in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "@@") {
				h.lines <- l[2:]
			}
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	r := h.do(t, helperReq{Op: "hello"})
	want := strings.TrimPrefix(e.cgroup, mustCgroupRoot(t))
	if !strings.Contains(r.Cgroup, "0::"+want+"\n") {
		t.Fatalf("client is not in cgroup %s: %q", want, r.Cgroup)
	}
	return h
}

func mustCgroupRoot(t testing.TB) string {
	r, err := ebpflb.Cgroup2Root()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (h *helper) do(t testing.TB, req helperReq) helperResp {
	t.Helper()
	b, _ := json.Marshal(req)
	if _, err := h.in.Write(append(b, '\n')); err != nil {
		t.Fatalf("client: %v", err)
	}
	select {
	case l, ok := <-h.lines:
		if !ok {
			t.Fatal("client exited")
		}
		var r helperResp
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("client reply %q: %v", l, err)
		}
		if r.HelperFail != "" {
			t.Fatalf("client: %s", r.HelperFail)
		}
		return r
	case <-time.After(90 * time.Second):
		t.Fatalf("client did not answer %+v", req)
	}
	return helperResp{}
}

// TestHelperProcess is the client process; it does nothing in a normal run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("FLOTILLA_LB_HELPER") != "1" {
		return
	}
	_ = os.WriteFile("/proc/sys/net/ipv4/tcp_tw_reuse", []byte("1"), 0o644)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var req helperReq
		var resp helperResp
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.HelperFail = err.Error()
		} else {
			resp = serveHelper(req)
		}
		b, _ := json.Marshal(resp)
		fmt.Printf("@@%s\n", b)
	}
	os.Exit(0)
}

func serveHelper(req helperReq) helperResp {
	r := helperResp{Counts: map[string]int{}, Peers: map[string]int{}}
	if req.N > 100000 {
		req.N = 100000
	}
	fail := func(start time.Time, err error) {
		r.ErrCount++
		if len(r.Errs) < 5 {
			r.Errs = append(r.Errs, err.Error())
		}
		if ms := time.Since(start).Milliseconds(); ms > r.MaxErrMS {
			r.MaxErrMS = ms
		}
	}
	switch req.Op {
	case "hello":
		b, _ := os.ReadFile("/proc/self/cgroup")
		r.Cgroup = string(b)
	case "tcp":
		for i := 0; i < req.N; i++ {
			start := time.Now()
			id, peer, err := tcpRequest(req.Addr)
			if err != nil {
				fail(start, err)
				continue
			}
			r.Counts[id]++
			r.Peers[peer]++
		}
	case "udp":
		for i := 0; i < req.N; i++ {
			start := time.Now()
			id, from, err := udpRequest(req.Addr, req.Connected)
			if err != nil {
				fail(start, err)
				continue
			}
			r.Counts[id]++
			r.Peers[from]++
		}
	case "tcp6", "udp6":
		for i := 0; i < req.N; i++ {
			start := time.Now()
			id, peer, err := inet6Request(req.Op == "tcp6", req.Addr, req.Connected)
			if err != nil {
				fail(start, err)
				continue
			}
			r.Counts[id]++
			r.Peers[peer]++
		}
	case "bench":
		lat, err := bench(req.Addr, req.N, req.KeepAlive)
		if err != nil {
			r.HelperFail = err.Error()
			break
		}
		var total time.Duration
		for _, l := range lat {
			total += l
		}
		r.ElapsedNS = int64(total)
		slices.Sort(lat)
		r.P50NS = int64(lat[len(lat)/2])
		r.P99NS = int64(lat[len(lat)*99/100])
	default:
		r.HelperFail = "unknown op " + req.Op
	}
	return r
}

// tcpRequest opens a connection, asks once, and returns the backend's
// identity and the peer address getpeername(2) reports.
func tcpRequest(addr string) (id, peer string, err error) {
	c, err := net.DialTimeout("tcp4", addr, time.Second)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	peer, err = getpeername(c.(*net.TCPConn))
	if err != nil {
		return "", "", err
	}
	if _, err := io.WriteString(c, "who\n"); err != nil {
		return "", "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", "", err
	}
	return strings.TrimSpace(line), peer, nil
}

func getpeername(c syscallConner) (string, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return "", err
	}
	var sa unix.Sockaddr
	var gerr error
	if err := rc.Control(func(fd uintptr) { sa, gerr = unix.Getpeername(int(fd)) }); err != nil {
		return "", err
	}
	if gerr != nil {
		return "", gerr
	}
	return sockaddrString(sa)
}

// sockaddrString formats a socket address keeping its family: an AF_INET6
// peer is "[::ffff:a.b.c.d]:port" even when it carries an IPv4 address.
func sockaddrString(sa unix.Sockaddr) (string, error) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String(), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)).String(), nil
	}
	return "", fmt.Errorf("peer %T", sa)
}

// inet6Request asks once over a dual-stack AF_INET6 socket made with raw
// syscalls (Go's net package would dial ::ffff:a.b.c.d with an AF_INET
// socket). TCP: connect, getpeername, request, reply. UDP: sendto and
// recvfrom on an unconnected socket, or connect, getpeername, send and
// recvfrom (whose source must equal the peer). It returns the backend's
// identity and the peer (TCP, connected UDP) or reply source (UDP).
func inet6Request(stream bool, addr string, connected bool) (id, peer string, err error) {
	dst, err := netip.ParseAddrPort(addr)
	if err != nil {
		return "", "", err
	}
	typ := unix.SOCK_DGRAM
	if stream {
		typ = unix.SOCK_STREAM
	}
	fd, err := unix.Socket(unix.AF_INET6, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", "", fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	// Dual-stack whatever net.ipv6.bindv6only says; the timeouts bound
	// connect (SO_SNDTIMEO), send and recv.
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	for _, o := range []struct{ level, opt int }{{unix.SOL_SOCKET, unix.SO_SNDTIMEO}, {unix.SOL_SOCKET, unix.SO_RCVTIMEO}} {
		if err := unix.SetsockoptTimeval(fd, o.level, o.opt, &tv); err != nil {
			return "", "", err
		}
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
		return "", "", err
	}
	sa := &unix.SockaddrInet6{Addr: dst.Addr().As16(), Port: int(dst.Port())}
	msg := []byte("who\n")
	if stream || connected {
		if err := connectNoEINTR(fd, sa); err != nil {
			return "", "", fmt.Errorf("connect: %w", err)
		}
		psa, err := unix.Getpeername(fd)
		if err != nil {
			return "", "", fmt.Errorf("getpeername: %w", err)
		}
		if peer, err = sockaddrString(psa); err != nil {
			return "", "", err
		}
		if _, err := noEINTR(func() (int, error) { return unix.Write(fd, msg) }); err != nil {
			return "", "", fmt.Errorf("write: %w", err)
		}
	} else if _, err := noEINTR(func() (int, error) { return 0, unix.Sendto(fd, msg, 0, sa) }); err != nil {
		return "", "", fmt.Errorf("sendto: %w", err)
	}
	buf := make([]byte, 2048)
	if stream {
		// Replies are one short line in one segment.
		n, err := noEINTR(func() (int, error) { return unix.Read(fd, buf) })
		if err != nil {
			return "", "", fmt.Errorf("read: %w", err)
		}
		return strings.TrimSpace(string(buf[:n])), peer, nil
	}
	var from unix.Sockaddr
	n, err := noEINTR(func() (n int, err error) { n, from, err = unix.Recvfrom(fd, buf, 0); return n, err })
	if err != nil {
		return "", "", fmt.Errorf("recvfrom: %w", err)
	}
	src, err := sockaddrString(from)
	if err != nil {
		return "", "", err
	}
	if connected && src != peer {
		return "", "", fmt.Errorf("reply from %v but peer is %v", src, peer)
	}
	return strings.TrimSpace(string(buf[:n])), src, nil
}

// noEINTR retries f while it fails with EINTR: socket calls on a socket
// with SO_RCVTIMEO/SO_SNDTIMEO are not restarted after a signal.
func noEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// connectNoEINTR connects; an interrupted connect goes on in the
// background, so it then waits for the socket to be writable and reads the
// outcome from SO_ERROR.
func connectNoEINTR(fd int, sa unix.Sockaddr) error {
	err := unix.Connect(fd, sa)
	for err == unix.EINTR {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if _, err = unix.Poll(pfd, 2000); err == nil {
			var soErr int
			if soErr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && soErr != 0 {
				err = unix.Errno(soErr)
			}
		}
	}
	return err
}

type syscallConner interface {
	SyscallConn() (syscall.RawConn, error)
}

// udpRequest sends one datagram from a fresh socket and returns the reply's
// identity and its source address as recvfrom(2) reports it (for a
// connected socket: what getpeername reports).
func udpRequest(addr string, connected bool) (id, from string, err error) {
	dst, err := netip.ParseAddrPort(addr)
	if err != nil {
		return "", "", err
	}
	buf := make([]byte, 2048)
	if connected {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return "", "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		peer, err := getpeername(c)
		if err != nil {
			return "", "", err
		}
		if _, err := c.Write([]byte("who\n")); err != nil {
			return "", "", err
		}
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return "", "", err
		}
		if src.String() != peer {
			return "", "", fmt.Errorf("reply from %v but peer is %v", src, peer)
		}
		return strings.TrimSpace(string(buf[:n])), src.String(), nil
	}
	c, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.WriteToUDPAddrPort([]byte("who\n"), dst); err != nil {
		return "", "", err
	}
	n, src, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return "", "", err
	}
	return strings.TrimSpace(string(buf[:n])), src.String(), nil
}

// bench performs n request/response exchanges and returns their latencies.
func bench(addr string, n int, keepAlive bool) ([]time.Duration, error) {
	if n < 1 {
		n = 1
	}
	lat := make([]time.Duration, 0, n)
	buf := make([]byte, 256)
	exchange := func(c net.Conn) error {
		if _, err := c.Write([]byte("who\n")); err != nil {
			return err
		}
		_, err := c.Read(buf) // replies are one short line, one segment
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	if keepAlive {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		_ = c.SetDeadline(deadline)
		for i := 0; i < n; i++ {
			s := time.Now()
			if err := exchange(c); err != nil {
				return nil, err
			}
			lat = append(lat, time.Since(s))
		}
		return lat, nil
	}
	for i := 0; i < n; i++ {
		s := time.Now()
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(deadline)
		err = exchange(c)
		c.Close()
		if err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(s))
		if time.Now().After(deadline) {
			return nil, errors.New("bench took too long")
		}
	}
	return lat, nil
}

// policyProbe is one check of a policy test: n tries of op to addr.
type policyProbe struct {
	op     string // tcp | udp | tcp6 | udp6
	addr   string
	n      int
	okFrom []string // every reply comes from one of these; nil: none may
	fails  bool     // some tries must fail, with EPERM
}

// check runs the probe through the client and reports what broke it.
func (p policyProbe) check(t *testing.T, cl *helper) {
	t.Helper()
	r := cl.do(t, helperReq{Op: p.op, Addr: p.addr, N: p.n})
	for id := range r.Counts {
		if !containsStr(p.okFrom, id) {
			t.Errorf("%s %s reached %s, allowed only %v", p.op, p.addr, id, p.okFrom)
		}
	}
	if len(p.okFrom) > 0 && len(r.Counts) == 0 {
		t.Errorf("%s %s: nothing answered: %v", p.op, p.addr, r.Errs)
	}
	if p.fails != (r.ErrCount > 0) {
		t.Errorf("%s %s: %d failures (%v), want failures=%v", p.op, p.addr, r.ErrCount, r.Errs, p.fails)
	}
	for _, e := range r.Errs {
		if !strings.Contains(e, "operation not permitted") {
			t.Errorf("%s %s: error %q, want EPERM", p.op, p.addr, e)
		}
	}
}
