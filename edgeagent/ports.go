package edgeagent

import (
	"fmt"
	"net"
	"strconv"
	"sync"
)

// ports hands out host ports from the node's pod port range. A port is
// taken by listening on it, so ports used by other processes are skipped
// and there is no window between choosing and binding.
type ports struct {
	addr     string
	lo, hi   int
	mu       sync.Mutex
	next     int
	reserved map[int]bool
}

func newPorts(addr string, r [2]int) *ports {
	return &ports{addr: addr, lo: r[0], hi: r[1], next: r[0], reserved: map[int]bool{}}
}

// listen opens a TCP listener on a free port of the range.
func (p *ports) listen() (net.Listener, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.hi - p.lo + 1
	for i := 0; i < n; i++ {
		port := p.next
		// Round-robin so a just-released port is not reused at once by
		// another pod while clients may still hold its old address.
		p.next++
		if p.next > p.hi {
			p.next = p.lo
		}
		if p.reserved[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(p.addr, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		p.reserved[port] = true
		return ln, port, nil
	}
	return nil, 0, fmt.Errorf("no free port in %d-%d on %s", p.lo, p.hi, p.addr)
}

// release returns a port to the range; the caller closed its listener.
func (p *ports) release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.reserved, port)
}

// reserve takes a free port of the range for a process that will listen
// on it itself (an OCI container on the host network): the port is probed
// by listening and handed over closed, reserved until release.
func (p *ports) reserve() (int, error) {
	ln, port, err := p.listen()
	if err != nil {
		return 0, err
	}
	_ = ln.Close()
	return port, nil
}

// claim marks port as taken by a container adopted from a previous agent.
func (p *ports) claim(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reserved[port] = true
}
