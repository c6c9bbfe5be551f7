package e2e

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent/servicelb"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
	"github.com/flotilla-edge/flotilla/netpolicy/nodeport"
)

// TestServiceExternalIPFromOutside: an external IP the node holds (a
// second address on the node's interface) answers the service port to a
// client outside the node, as kube-proxy does, for TCP and UDP. The client
// runs in a cgroup of its own, so the node's socket LB (which serves the
// external IP to the node's own processes) cannot answer for the node:
// only the node's listener can. The listener is the same in both LB modes;
// eBPF mode is the one whose cluster-IP datapath stays off the client.
func TestServiceExternalIPFromOutside(t *testing.T) {
	for _, mode := range []string{"ebpf"} {
		t.Run(mode, func(t *testing.T) {
			e := newSvcEnv(t)
			f := testfleet.Start(t)
			// 10.231.n.1 is the node; 10.233.n.1 becomes its external IP,
			// routed to it from the client's namespace over the veth.
			ext := "10.233." + strings.TrimPrefix(e.nodeAddr, "10.231.")
			ifc, err := nodeport.InterfaceOf(netip.MustParseAddr(e.nodeAddr))
			if err != nil {
				t.Fatal(err)
			}
			sh(t, "ip", "addr", "add", ext+"/32", "dev", ifc)
			sh(t, "ip", "-n", e.ns, "route", "add", ext+"/32", "via", e.nodeAddr)

			bes := startTestBackends(t, e.nodeAddr, 3)
			createMix(t, f, e, bes, api.ServiceSpec{ExternalIPs: []string{ext}})
			c, err := servicelb.Start(e.lbConfig(f, mode))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Stop)
			outside := &svcEnv{ns: e.ns, cgroup: e.cgroup + "-client"}
			if err := os.Mkdir(outside.cgroup, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { removeCgroup(outside.cgroup) })
			for _, tc := range []struct{ op, addr string }{
				{"get", net.JoinHostPort(ext, "80")},
				{"udp", net.JoinHostPort(ext, "7")},
			} {
				var r clientResult
				testfleet.WaitFor(t, tc.addr+" answers from outside", 10*time.Second, func() bool {
					r = outside.fromNetns(t, tc.op, tc.addr, 1)
					return len(r.Errs) == 0
				})
				r = outside.fromNetns(t, tc.op, tc.addr, 30)
				if len(r.Errs) > 0 || len(r.Answers) != 3 {
					t.Fatalf("30 %s to %s: answers %v, errors %v (want all 3 backends)", tc.op, tc.addr, r.Answers, r.Errs)
				}
				t.Logf("%s %s: %v", tc.op, tc.addr, r.Answers)
			}
		})
	}
}
