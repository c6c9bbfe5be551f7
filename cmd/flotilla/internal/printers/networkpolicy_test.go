package printers

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

func TestNetworkPolicyPrinter(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	created := api.Time{Time: now.Add(-90 * time.Second)}
	port := api.FromInt(8080)
	allow := &api.NetworkPolicy{TypeMeta: api.TypeMeta{Kind: "NetworkPolicy"}, ObjectMeta: api.ObjectMeta{Name: "backend-from-frontend", Namespace: "default", CreationTimestamp: created},
		Spec: api.NetworkPolicySpec{
			PodSelector: api.LabelSelector{MatchLabels: map[string]string{"app": "backend"}},
			PolicyTypes: []string{"Ingress"},
			Ingress: []api.NetworkPolicyIngressRule{{
				From:  []api.NetworkPolicyPeer{{PodSelector: &api.LabelSelector{MatchLabels: map[string]string{"app": "frontend"}}}},
				Ports: []api.NetworkPolicyPort{{Protocol: "TCP", Port: &port}},
			}},
		}}
	deny := &api.NetworkPolicy{TypeMeta: api.TypeMeta{Kind: "NetworkPolicy"}, ObjectMeta: api.ObjectMeta{Name: "deny-all", Namespace: "default", CreationTimestamp: created},
		Spec: api.NetworkPolicySpec{PolicyTypes: []string{"Ingress", "Egress"}}}
	var buf bytes.Buffer
	if err := BuildTable("NetworkPolicy", []api.Object{allow, deny}, Options{Now: now}).Write(&buf); err != nil {
		t.Fatal(err)
	}
	want := "NAME                    POD-SELECTOR   AGE\nbackend-from-frontend   app=backend    90s\ndeny-all                <none>         90s\n"
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
	tests := []struct {
		obj  *api.NetworkPolicy
		want []string
	}{
		{allow, []string{"Name:", "backend-from-frontend", "PodSelector:", "app=backend", "To Port:", "8080/TCP", "PodSelector:", "app=frontend", "Not affecting egress traffic", "Policy Types:", "Ingress"}},
		{deny, []string{"(Allowing the specific traffic to all pods in this namespace)", "(Selected pods are isolated for ingress connectivity)", "(Selected pods are isolated for egress connectivity)"}},
	}
	for _, tt := range tests {
		buf.Reset()
		if err := Describe(&buf, tt.obj, nil, nil, now); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, w := range tt.want {
			i := strings.Index(out, w)
			if i < 0 {
				t.Errorf("describe %s: no %q in\n%s", tt.obj.Name, w, buf.String())
				break
			}
			out = out[i+len(w):] // in order
		}
	}
	buf.Reset()
	_ = Describe(&buf, allow, nil, nil, now)
	t.Logf("\n%s", buf.String())
}
