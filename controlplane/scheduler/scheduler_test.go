package scheduler

import (
	"errors"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
)

func TestFilters(t *testing.T) {
	tests := []struct {
		name       string
		filter     Filter
		pod        *api.Pod
		node       *api.Node
		used       []*api.Pod // already bound to the node
		wantOK     bool
		wantReason string
	}{
		// NodeReady
		{"ready node passes", NodeReady{}, pod("p"), node("n"), nil, true, ""},
		{"not-ready node is rejected", NodeReady{}, pod("p"), node("n", readyStatus(api.ConditionFalse)), nil, false, ReasonNotReady},
		{"node with unknown Ready is unreachable", NodeReady{}, pod("p"), node("n", readyStatus(api.ConditionUnknown)), nil, false, ReasonUnreachable},
		{"node that never reported Ready is not ready", NodeReady{}, pod("p"), node("n", noConditions), nil, false, ReasonNotReady},
		{"cordoned ready node is unschedulable", NodeReady{}, pod("p"), node("n", cordoned), nil, false, ReasonUnschedulable},

		// Runtime
		{"container without runtime defaults to wasm", Runtime{}, pod("p"), node("n"), nil, true, ""},
		{"wasm pod is rejected by oci-only node", Runtime{}, pod("p"), node("n", runtimes(api.RuntimeOCI)), nil, false, ReasonRuntime},
		{"every container's runtime must be offered", Runtime{}, pod("p", containerRuntimes("wasm", "oci")), node("n"), nil, false, ReasonRuntime},
		{"node offering all runtimes passes", Runtime{}, pod("p", containerRuntimes("wasm", "oci")), node("n", runtimes("oci", "wasm")), nil, true, ""},
		{"node with no runtimes is rejected", Runtime{}, pod("p"), node("n", runtimes()), nil, false, ReasonRuntime},

		// NodeSelector
		{"pod without selector fits any node", NodeSelector{}, pod("p"), node("n"), nil, true, ""},
		{"selector subset of labels matches", NodeSelector{}, pod("p", nodeSelector("zone", "a")), node("n", labels("zone", "a", "arch", "arm64")), nil, true, ""},
		{"selector with wrong value mismatches", NodeSelector{}, pod("p", nodeSelector("zone", "a")), node("n", labels("zone", "b")), nil, false, ReasonNodeSelector},
		{"selector with missing key mismatches", NodeSelector{}, pod("p", nodeSelector("gpu", "")), node("n", labels("zone", "a")), nil, false, ReasonNodeSelector},
		{"selector must match every pair", NodeSelector{}, pod("p", nodeSelector("zone", "a", "arch", "amd64")), node("n", labels("zone", "a", "arch", "arm64")), nil, false, ReasonNodeSelector},

		// Resources
		{"pod fitting exactly passes", Resources{}, pod("p", requests("500m", "64Mi")), node("n", capacity("1", "128Mi")), []*api.Pod{pod("q", requests("500m", "64Mi"))}, true, ""},
		{"cpu beyond what is left is insufficient", Resources{}, pod("p", requests("600m", "1Mi")), node("n", capacity("1", "128Mi")), []*api.Pod{pod("q", requests("500m", ""))}, false, ReasonInsufficientCPU},
		{"memory beyond what is left is insufficient", Resources{}, pod("p", requests("100m", "65Mi")), node("n", capacity("1", "128Mi")), []*api.Pod{pod("q", requests("", "64Mi"))}, false, ReasonInsufficientMemory},
		{"allocatable wins over capacity", Resources{}, pod("p", requests("", "100Mi")), node("n", capacity("4", "1Gi"), allocatableRes("4", "64Mi")), nil, false, ReasonInsufficientMemory},
		{"capacity is the fallback per resource", Resources{}, pod("p", requests("3", "")), node("n", capacity("2", "1Gi"), allocatableRes("", "512Mi")), nil, false, ReasonInsufficientCPU},
		{"unreported resource is unlimited", Resources{}, pod("p", requests("64", "64Gi")), node("n"), nil, true, ""},
		{"terminal pods hold no resources", Resources{}, pod("p", requests("1", "")), node("n", capacity("1", "")), []*api.Pod{pod("done", requests("1", ""), phase(api.PodSucceeded))}, true, ""},
		{"pod without requests fits a full node", Resources{}, pod("p"), node("n", capacity("1", "1Mi")), []*api.Pod{pod("q", requests("1", "1Mi"))}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := NewNodeInfo(tt.node)
			for _, u := range tt.used {
				ni.AddPod(u)
			}
			ok, reason := tt.filter.Filter(tt.pod, ni)
			if ok != tt.wantOK || reason != tt.wantReason {
				t.Errorf("%s.Filter = (%v, %q), want (%v, %q)", tt.filter.Name(), ok, reason, tt.wantOK, tt.wantReason)
			}
		})
	}
}

func TestScorersOrderNodes(t *testing.T) {
	tests := []struct {
		name   string
		scorer Scorer
		pod    *api.Pod
		nodes  []*NodeInfo // best first
	}{
		{
			name:   "least-allocated ranks the emptier node higher",
			scorer: LeastAllocated{},
			pod:    pod("p", requests("100m", "16Mi")),
			nodes: func() []*NodeInfo {
				ns := infos(node("empty", capacity("1", "256Mi")), node("half", capacity("1", "256Mi")), node("full", capacity("1", "256Mi")))
				ns[1].AddPod(pod("a", requests("500m", "128Mi")))
				ns[2].AddPod(pod("b", requests("900m", "240Mi")))
				return ns
			}(),
		},
		{
			name:   "least-allocated ranks the bigger of two empty nodes higher",
			scorer: LeastAllocated{},
			pod:    pod("p", requests("500m", "64Mi")),
			nodes:  infos(node("unlimited"), node("big", capacity("4", "1Gi")), node("small", capacity("1", "128Mi"))),
		},
		{
			name:   "spread ranks nodes with fewer pods of the owner higher",
			scorer: Spread{},
			pod:    pod("p", ownedBy("rs1")),
			nodes: func() []*NodeInfo {
				ns := infos(node("none"), node("one"), node("two"))
				ns[0].AddPod(pod("other", ownedBy("rs2"))) // another owner does not count
				ns[1].AddPod(pod("a", ownedBy("rs1")))
				ns[2].AddPod(pod("b", ownedBy("rs1")))
				ns[2].AddPod(pod("c", ownedBy("rs1")))
				return ns
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := 2.0
			for _, n := range tt.nodes {
				s := tt.scorer.Score(tt.pod, n)
				if s < 0 || s > 1 {
					t.Fatalf("%s scored %s %v, outside 0..1", tt.scorer.Name(), n.Node.Name, s)
				}
				if s >= prev {
					t.Errorf("%s scored %s %v, not below the previous node's %v", tt.scorer.Name(), n.Node.Name, s, prev)
				}
				prev = s
			}
		})
	}
}

func TestSpreadIsNeutralForPodsWithoutController(t *testing.T) {
	ns := infos(node("a"), node("b"))
	ns[0].AddPod(pod("x", ownedBy("rs1")))
	p := pod("bare")
	if a, b := (Spread{}).Score(p, ns[0]), (Spread{}).Score(p, ns[1]); a != b {
		t.Errorf("Spread scores %v and %v, want equal", a, b)
	}
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		name      string
		scheduler *Scheduler
		nodes     []*api.Node
		pods      []*api.Pod // scheduled in order, each bound with AddPod
		want      []string
	}{
		{
			name:      "three replicas of one owner land on three equal nodes",
			scheduler: New(),
			nodes:     []*api.Node{node("n1", capacity("4", "1Gi")), node("n2", capacity("4", "1Gi")), node("n3", capacity("4", "1Gi"))},
			pods:      []*api.Pod{pod("r1", ownedBy("rs"), requests("100m", "32Mi")), pod("r2", ownedBy("rs"), requests("100m", "32Mi")), pod("r3", ownedBy("rs"), requests("100m", "32Mi"))},
			want:      []string{"n1", "n2", "n3"},
		},
		{
			name:      "spread beats packing when replicas' requests are small",
			scheduler: New(),
			nodes:     []*api.Node{node("big", capacity("8", "8Gi")), node("small", capacity("1", "256Mi"))},
			pods:      []*api.Pod{pod("r1", ownedBy("rs"), requests("100m", "16Mi")), pod("r2", ownedBy("rs"), requests("100m", "16Mi"))},
			want:      []string{"big", "small"},
		},
		{
			name:      "least-allocated prefers the emptier node",
			scheduler: New(),
			nodes:     []*api.Node{node("busy", capacity("2", "512Mi")), node("idle", capacity("2", "512Mi"))},
			pods:      []*api.Pod{pod("hog", requests("1500m", "400Mi")), pod("next", requests("100m", "16Mi"))},
			want:      []string{"busy", "idle"}, // hog breaks the tie by name, next avoids it
		},
		{
			name:      "equal nodes take turns by pod count even without scorers",
			scheduler: NewWith([]Filter{NodeReady{}}, nil),
			nodes:     []*api.Node{node("c"), node("a"), node("b")},
			pods:      []*api.Pod{pod("1"), pod("2"), pod("3"), pod("4")},
			want:      []string{"a", "b", "c", "a"},
		},
		{
			name:      "only feasible nodes are chosen",
			scheduler: New(),
			nodes: []*api.Node{
				node("down", readyStatus(api.ConditionFalse)),
				node("oci", runtimes(api.RuntimeOCI), labels("zone", "a")),
				node("elsewhere", labels("zone", "b")),
				node("tiny", labels("zone", "a"), capacity("100m", "")),
				node("fits", labels("zone", "a"), capacity("1", "")),
			},
			pods: []*api.Pod{pod("p", nodeSelector("zone", "a"), requests("500m", ""))},
			want: []string{"fits"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := infos(tt.nodes...)
			var got []string
			for _, p := range tt.pods {
				ni, err := tt.scheduler.Schedule(p, ns)
				if err != nil {
					t.Fatalf("Schedule(%s): %v", p.Name, err)
				}
				ni.AddPod(p)
				got = append(got, ni.Node.Name)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("placed on %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("placed on %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestFitError(t *testing.T) {
	tests := []struct {
		name  string
		nodes []*api.Node
		pod   *api.Pod
		want  string
	}{
		{
			name: "reasons are counted and the most common comes first",
			nodes: []*api.Node{
				node("a", labels("zone", "b")),
				node("b", labels("zone", "c")),
				node("c", labels("zone", "a"), capacity("4", "64Mi")),
			},
			pod:  pod("p", nodeSelector("zone", "a"), requests("100m", "128Mi")),
			want: "0/3 nodes are available: 2 node(s) didn't match Pod's node selector, 1 Insufficient memory.",
		},
		{
			name: "a node short of cpu and memory counts under both",
			nodes: []*api.Node{
				node("a", capacity("100m", "1Mi")),
				node("b", capacity("100m", "1Gi")),
				node("c", cordoned),
			},
			pod:  pod("p", requests("1", "64Mi")),
			want: "0/3 nodes are available: 2 Insufficient cpu, 1 Insufficient memory, 1 node(s) were unschedulable.",
		},
		{
			name: "a node reports only its first failing filter",
			nodes: []*api.Node{
				node("a", readyStatus(api.ConditionUnknown), labels("zone", "b")),
				node("b", runtimes(api.RuntimeOCI), capacity("1m", "")),
			},
			pod:  pod("p", nodeSelector("zone", "a"), requests("1", "")),
			want: "0/2 nodes are available: 1 node(s) didn't support the Pod's runtime, 1 node(s) were unreachable.",
		},
		{
			name:  "no nodes at all says so",
			nodes: nil,
			pod:   pod("p"),
			want:  "0/0 nodes are available: no nodes registered.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni, err := New().Schedule(tt.pod, infos(tt.nodes...))
			if ni != nil {
				t.Fatalf("Schedule chose %s, want none", ni.Node.Name)
			}
			var fe *FitError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want *FitError", err, err)
			}
			if fe.NumNodes != len(tt.nodes) {
				t.Errorf("NumNodes = %d, want %d", fe.NumNodes, len(tt.nodes))
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Error() =\n  %q\nwant\n  %q", got, tt.want)
			}
		})
	}
}

func TestNodeInfoAccounting(t *testing.T) {
	ni := NewNodeInfo(node("n", capacity("2", "1Gi")))
	a := pod("a", ownedBy("rs"), requests("250m", "64Mi"))
	b := pod("b", ownedBy("rs"), requests("500m", "128Mi"))
	done := pod("done", ownedBy("rs"), requests("1", "1Gi"), phase(api.PodFailed))
	for _, p := range []*api.Pod{a, b, done} {
		ni.AddPod(p)
	}
	if ni.RequestedMilliCPU != 750 || ni.RequestedMemory != 192<<20 || ni.PodCount != 2 || ni.OwnerCounts["rs"] != 2 {
		t.Fatalf("after adds: cpu=%d mem=%d pods=%d owner=%d", ni.RequestedMilliCPU, ni.RequestedMemory, ni.PodCount, ni.OwnerCounts["rs"])
	}
	ni.RemovePod(a)
	ni.RemovePod(b)
	ni.RemovePod(done)
	if ni.RequestedMilliCPU != 0 || ni.RequestedMemory != 0 || ni.PodCount != 0 || len(ni.OwnerCounts) != 0 {
		t.Fatalf("after removes: cpu=%d mem=%d pods=%d owners=%v", ni.RequestedMilliCPU, ni.RequestedMemory, ni.PodCount, ni.OwnerCounts)
	}
}

func TestNodeInfoLiteralAndSwappedNodeUseCurrentNode(t *testing.T) {
	p := pod("p", requests("2", ""))
	lit := &NodeInfo{Node: node("lit", capacity("1", ""))}
	if ok, _ := (Resources{}).Filter(p, lit); ok {
		t.Error("NodeInfo literal: pod fit a 1-cpu node")
	}
	ni := NewNodeInfo(node("n", capacity("1", "")))
	ni.Node = node("n", capacity("4", ""))
	if ok, reason := (Resources{}).Filter(p, ni); !ok {
		t.Errorf("after swapping in a 4-cpu node: %s", reason)
	}
}

func TestScheduleDoesNotAllocatePerNode(t *testing.T) {
	nodes := benchNodes(200)
	p := benchPod(0)
	s := New()
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := s.Schedule(p, nodes); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Schedule allocated %v times per call over %d nodes, want 0", allocs, len(nodes))
	}
}
