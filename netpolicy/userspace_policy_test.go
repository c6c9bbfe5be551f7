package netpolicy_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/netpolicy"
	"github.com/flotilla-edge/flotilla/netpolicy/policy"
	"github.com/flotilla-edge/flotilla/netpolicy/userspace"
)

// TestUserspaceIngressPolicy: the proxy admits a client only to backends
// whose pods' ingress rules admit the client's address. Backends be1..be3
// stand for pods a, b, c (node address 127.0.0.x, host port 8080).
func TestUserspaceIngressPolicy(t *testing.T) {
	e := newEnv(t)
	e.startBackends(t, be1, be2, be3)
	lb := newLB(t, "userspace", e)
	us := lb.(*userspace.LB)
	cl := e.startClient(t)
	upsert(t, lb, netpolicy.Service{VIP: vip, Port: 80, Protocol: "TCP", Backends: []netip.AddrPort{be1, be2, be3}})

	pods := []policy.Pod{}
	for i, b := range []netip.AddrPort{be1, be2, be3} {
		pods = append(pods, policy.Pod{Namespace: "default", Name: string(rune('a' + i)), Labels: map[string]string{"app": "web", "idx": string(rune('a' + i))},
			NodeIP: b.Addr(), Ports: []policy.Port{{ContainerPort: 80, HostPort: b.Port(), Protocol: "TCP"}}})
	}
	webSel := func(idx string) api.LabelSelector {
		return api.LabelSelector{MatchLabels: map[string]string{"idx": idx}}
	}
	tests := []struct {
		name  string
		pols  []*api.NetworkPolicy
		reach []string // backends that must answer; others must not
	}{
		{"no policy: all backends", nil, []string{be1.String(), be2.String(), be3.String()}},
		{"b isolated with a pod-selector rule the proxy cannot verify", []*api.NetworkPolicy{{
			ObjectMeta: api.ObjectMeta{Name: "b-from-web", Namespace: "default"},
			Spec: api.NetworkPolicySpec{PodSelector: webSel("b"), Ingress: []api.NetworkPolicyIngressRule{{
				From: []api.NetworkPolicyPeer{{PodSelector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}}}}}},
			[]string{be1.String(), be3.String()}},
		// The client dials the VIP, which sits on lo, so its source
		// address is the VIP itself: that is what the proxy sees.
		{"b isolated, admits the client's range by ipBlock", []*api.NetworkPolicy{{
			ObjectMeta: api.ObjectMeta{Name: "b-from-vip-range", Namespace: "default"},
			Spec: api.NetworkPolicySpec{PodSelector: webSel("b"), Ingress: []api.NetworkPolicyIngressRule{{
				From: []api.NetworkPolicyPeer{{IPBlock: &api.IPBlock{CIDR: "10.96.0.0/16"}}}}}}}},
			[]string{be1.String(), be2.String(), be3.String()}},
		{"all isolated (deny-all): refused", []*api.NetworkPolicy{{ObjectMeta: api.ObjectMeta{Name: "deny-all", Namespace: "default"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range tt.pols {
				api.Defaults(p)
			}
			eng := policy.New(policy.Input{Policies: tt.pols, Pods: pods, Namespaces: []policy.Namespace{{Name: "default"}}})
			us.SetAdmit(func(client netip.Addr, be netip.AddrPort, proto string) error {
				if d := eng.AllowedDirect(policy.FromIP(client), be, proto); !d.Allowed {
					return errors.New(d.Reason)
				}
				return nil
			})
			r := cl.do(t, helperReq{Op: "tcp", Addr: ap(vip, 80), N: 45})
			for id := range r.Counts {
				if !containsStr(tt.reach, id) {
					t.Errorf("reached %s, want only %v", id, tt.reach)
				}
			}
			for _, id := range tt.reach {
				if r.Counts[id] == 0 {
					t.Errorf("%s never reached: %v %v", id, r.Counts, r.Errs)
				}
			}
			if len(tt.reach) == 0 && r.ErrCount != 45 {
				t.Errorf("deny-all: %d of 45 failed, counts %v", r.ErrCount, r.Counts)
			} else if len(tt.reach) > 0 && r.ErrCount > 0 {
				t.Errorf("%d errors: %v", r.ErrCount, r.Errs)
			}
		})
	}
	us.SetAdmit(nil)
}
