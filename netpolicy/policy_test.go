package netpolicy_test

import (
	"net/netip"
	"testing"

	"github.com/flotilla-edge/flotilla/netpolicy"
	"github.com/flotilla-edge/flotilla/netpolicy/ebpflb"
)

// TestEBPFConnectPolicy: NetworkPolicy verdicts installed per client cgroup
// are enforced by connect4/sendmsg4 after service translation. The client
// is a real process in the test cgroup and namespace.
func TestEBPFConnectPolicy(t *testing.T) {
	e := newEnv(t)
	e.startBackends(t, be1, be2, be3)
	lb, err := ebpflb.New(ebpflb.Config{CgroupPath: e.cgroup, PinDir: e.pinDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	cl := e.startClient(t)
	cg, err := ebpflb.CgroupID(e.cgroup)
	if err != nil {
		t.Fatal(err)
	}
	all := []netip.AddrPort{be1, be2, be3}
	upsert(t, lb, netpolicy.Service{VIP: vip, Port: 80, Protocol: "TCP", Backends: all})
	allow := func(dsts ...netip.AddrPort) []ebpflb.PolicyEntry {
		var out []ebpflb.PolicyEntry
		for _, d := range dsts {
			out = append(out, ebpflb.PolicyEntry{Dst: d, Protocol: "TCP", Allow: true})
		}
		return out
	}

	steps := []struct {
		name   string
		set    *ebpflb.ClientPolicy // nil: delete the policy
		cgroup uint64               // 0: the client's cgroup
		probes []policyProbe
	}{
		{"isolated with one allowed backend", &ebpflb.ClientPolicy{EgressIsolated: true, Entries: allow(be1)}, 0, []policyProbe{
			{"tcp", be1.String(), 3, []string{be1.String()}, false},
			{"tcp", be2.String(), 3, nil, true},
			{"udp", be3.String(), 3, nil, true},
			// Through the VIP: the policy judges the backend the LB chose.
			{"tcp", ap(vip, 80), 30, []string{be1.String()}, true},
		}},
		{"open with a deny entry", &ebpflb.ClientPolicy{Entries: []ebpflb.PolicyEntry{{Dst: be2, Protocol: "TCP"}}}, 0, []policyProbe{
			{"tcp", be1.String(), 3, []string{be1.String()}, false},
			{"tcp", be2.String(), 3, nil, true},
			{"tcp", be3.String(), 3, []string{be3.String()}, false},
			{"udp", be2.String(), 3, []string{be2.String()}, false}, // the entry is TCP only
		}},
		{"another cgroup's policy does not apply", &ebpflb.ClientPolicy{EgressIsolated: true}, cg + 1, []policyProbe{
			{"tcp", be2.String(), 3, []string{be2.String()}, false},
		}},
		{"policy removed", nil, 0, []policyProbe{
			{"tcp", ap(vip, 80), 30, []string{be1.String(), be2.String(), be3.String()}, false},
			{"udp", be3.String(), 3, []string{be3.String()}, false},
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			id := cg
			if st.cgroup != 0 {
				id = st.cgroup
			}
			if st.set == nil {
				if err := lb.DeletePolicy(id); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := lb.SetPolicy(id, *st.set); err != nil {
					t.Fatal(err)
				}
				if st.cgroup != 0 {
					t.Cleanup(func() { _ = lb.DeletePolicy(id) })
					// Clear the client's own policy for this step.
					if err := lb.DeletePolicy(cg); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, p := range st.probes {
				p.check(t, cl)
			}
		})
	}
	got, err := lb.PolicedCgroups()
	if err != nil || len(got) != 0 {
		t.Fatalf("policed cgroups after removal: %v %v", got, err)
	}
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
