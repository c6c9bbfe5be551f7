package dns

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// ResolvConf describes the resolv.conf given to containers.
type ResolvConf struct {
	// Nameserver is the cluster DNS address; resolv.conf has no port
	// syntax, so the server must listen on port 53 there.
	Nameserver netip.Addr
	// Upstreams are the node's own resolvers, listed after the cluster DNS:
	// it answers REFUSED for names outside the cluster domain, and both
	// glibc (next server on REFUSED) and musl (ignores REFUSED, takes the
	// other servers' answers) then use the upstreams.
	Upstreams []netip.Addr
	Namespace string
	Domain    string // default DefaultDomain
	Ndots     int    // default 5, as Kubernetes
}

// maxNameservers is glibc's MAXNS: later nameserver lines are ignored.
const maxNameservers = 3

// Render writes the file:
//
//	nameserver <cluster dns>
//	nameserver <upstream>...        (at most 3 nameservers in all)
//	search <ns>.svc.<domain> svc.<domain> <domain>
//	options ndots:5
func (rc ResolvConf) Render() string {
	domain := strings.Trim(rc.Domain, ".")
	if domain == "" {
		domain = DefaultDomain
	}
	ndots := rc.Ndots
	if ndots <= 0 {
		ndots = 5
	}
	var sb strings.Builder
	servers := []netip.Addr{rc.Nameserver}
	for _, u := range rc.Upstreams {
		if u.IsValid() && u != rc.Nameserver {
			servers = append(servers, u)
		}
	}
	for _, a := range servers[:min(len(servers), maxNameservers)] {
		fmt.Fprintf(&sb, "nameserver %s\n", a)
	}
	search := []string{"svc." + domain, domain}
	if rc.Namespace != "" {
		search = append([]string{rc.Namespace + ".svc." + domain}, search...)
	}
	fmt.Fprintf(&sb, "search %s\n", strings.Join(search, " "))
	fmt.Fprintf(&sb, "options ndots:%d\n", ndots)
	return sb.String()
}

// HostUpstreams reads the nameservers of a resolv.conf (the node's
// /etc/resolv.conf), skipping the cluster DNS itself.
func HostUpstreams(path string, self netip.Addr) ([]netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read upstream resolvers: %w", err)
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		// Zone-scoped IPv6 (fe80::1%eth0) parses; anything else is skipped.
		if a, err := netip.ParseAddr(fields[1]); err == nil && a != self {
			out = append(out, a)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read upstream resolvers %s: %w", path, err)
	}
	return out, nil
}
