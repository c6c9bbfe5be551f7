package edgeagent

import "testing"

func TestDialDirect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		euid   int
		direct bool
	}{
		{"root, eBPF or userspace LB: cluster IPs work", Config{ServiceLB: "auto"}, 0, false},
		{"asked to", Config{ServiceLB: "auto", ServiceDialDirect: true}, 0, true},
		{"no load balancer", Config{ServiceLB: "off"}, 0, true},
		{"not root: no VIPs on lo", Config{ServiceLB: "auto"}, 1000, true},
		{"library default leaves it to the embedder", Config{}, 1000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dialDirect(tc.cfg, tc.euid); got != tc.direct {
				t.Fatalf("dialDirect = %v, want %v", got, tc.direct)
			}
		})
	}
}
