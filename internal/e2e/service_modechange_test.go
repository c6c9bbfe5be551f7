package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/edgeagent/servicelb"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

// TestServiceLBModeChangeClearsEBPF: a node that ran the eBPF datapath
// (socket LB and TC node ports, all pinned so they outlive the agent) and
// restarts with load balancing off, or in userspace mode, removes it, so
// stale translations never shadow the mode it runs; the proxy then serves
// the same service.
func TestServiceLBModeChangeClearsEBPF(t *testing.T) {
	e := newSvcEnv(t)
	f := testfleet.Start(t)
	bes := startTestBackends(t, e.nodeAddr, 2)
	clusterIP := createMix(t, f, e, bes, api.ServiceSpec{Type: api.ServiceTypeNodePort, ExternalTrafficPolicy: api.TrafficPolicyLocal}).Spec.ClusterIP
	start := func(mode string) *servicelb.Controller {
		c, err := servicelb.Start(e.lbConfig(f, mode))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pinned := func() []string {
		ents, _ := os.ReadDir(e.pinDir)
		var names []string
		for _, en := range ents {
			names = append(names, en.Name())
		}
		return names
	}

	runEBPF := func() {
		t.Helper()
		c := start("ebpf")
		testfleet.WaitFor(t, "the socket LB and the node-port programs pinned", 10*time.Second, func() bool {
			s := strings.Join(pinned(), " ")
			return strings.Contains(s, "link_connect4") && strings.Contains(s, "link_np_ingress_")
		})
		c.Stop()
		if len(pinned()) == 0 {
			t.Fatal("stopping the eBPF agent removed its pins; they must outlive it")
		}
	}

	// Off: nothing runs, and nothing of eBPF is left either.
	runEBPF()
	servicelb.Run(context.Background(), e.lbConfig(f, "off"))
	if left := pinned(); len(left) != 0 {
		t.Fatalf("mode off kept the eBPF pins %v", left)
	}

	runEBPF()
	c := start("userspace")
	defer c.Stop()
	if left := pinned(); len(left) != 0 {
		t.Fatalf("userspace mode kept the eBPF pins %v", left)
	}
	var r clientResult
	testfleet.WaitFor(t, "the userspace proxy serving the cluster IP", 10*time.Second, func() bool {
		r = e.fromNetns(t, "get", clusterIP+":80", 10)
		return len(r.Errs) == 0 && len(r.Answers) == 2
	})
}
