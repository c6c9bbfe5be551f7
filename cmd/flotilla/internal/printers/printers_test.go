package printers

import (
	"bytes"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "<invalid>"},
		{0, "0s"},
		{5 * time.Second, "5s"},
		{119 * time.Second, "119s"},
		{2 * time.Minute, "2m"},
		{3*time.Minute + 20*time.Second, "3m20s"},
		{9*time.Minute + 59*time.Second, "9m59s"},
		{10*time.Minute + 30*time.Second, "10m"},
		{45 * time.Minute, "45m"},
		{179 * time.Minute, "179m"},
		{3 * time.Hour, "3h"},
		{5*time.Hour + 10*time.Minute, "5h10m"},
		{30 * time.Hour, "30h"},
		{3*24*time.Hour + 4*time.Hour, "3d4h"},
		{7 * 24 * time.Hour, "7d"},
		{45 * 24 * time.Hour, "45d"},
		{(365*3 + 10) * 24 * time.Hour, "3y10d"},
		{10 * 365 * 24 * time.Hour, "10y"},
	}
	for _, tc := range tests {
		if got := HumanDuration(tc.d); got != tc.want {
			t.Errorf("HumanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestPodStatus(t *testing.T) {
	waiting := func(r string) api.ContainerState {
		return api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: r}}
	}
	terminated := func(r string, code int32) api.ContainerState {
		return api.ContainerState{Terminated: &api.ContainerStateTerminated{Reason: r, ExitCode: code}}
	}
	running := api.ContainerState{Running: &api.ContainerStateRunning{}}
	tests := []struct {
		name   string
		phase  string
		reason string
		states []api.ContainerState
		ready  []bool
		want   string
	}{
		{"phase only", api.PodPending, "", nil, nil, "Pending"},
		{"no phase yet", "", "", nil, nil, "Pending"},
		{"running", api.PodRunning, "", []api.ContainerState{running}, []bool{true}, "Running"},
		{"image pull error", api.PodPending, "", []api.ContainerState{waiting("ErrImagePull")}, nil, "ErrImagePull"},
		{"image pull backoff", api.PodPending, "", []api.ContainerState{waiting("ImagePullBackOff")}, nil, "ImagePullBackOff"},
		{"crash loop", api.PodRunning, "", []api.ContainerState{waiting("CrashLoopBackOff")}, nil, "CrashLoopBackOff"},
		{"invalid image", api.PodPending, "", []api.ContainerState{waiting("InvalidImage")}, nil, "InvalidImage"},
		{"completed", api.PodSucceeded, "", []api.ContainerState{terminated("Completed", 0)}, nil, "Completed"},
		{"error", api.PodFailed, "", []api.ContainerState{terminated("Error", 1)}, nil, "Error"},
		{"terminated without reason", api.PodFailed, "", []api.ContainerState{terminated("", 3)}, nil, "ExitCode:3"},
		{"waiting without reason shows phase", api.PodPending, "", []api.ContainerState{waiting("")}, nil, "Pending"},
		{"pod reason", api.PodFailed, "DeadlineExceeded", nil, nil, "DeadlineExceeded"},
		{"completed sidecar of a serving pod", api.PodRunning, "", []api.ContainerState{running, terminated("Completed", 0)}, []bool{true, false}, "Running"},
		{"last container wins", api.PodPending, "", []api.ContainerState{waiting("ErrImagePull"), waiting("CrashLoopBackOff")}, nil, "CrashLoopBackOff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &api.Pod{Status: api.PodStatus{Phase: tc.phase, Reason: tc.reason}}
			for i, s := range tc.states {
				cs := api.ContainerStatus{Name: "c", State: s}
				if i < len(tc.ready) {
					cs.Ready = tc.ready[i]
				}
				p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, cs)
			}
			if got := PodStatus(p); got != tc.want {
				t.Errorf("PodStatus = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNodeStatus(t *testing.T) {
	tests := []struct {
		cond   string
		cordon bool
		want   string
	}{
		{api.ConditionTrue, false, "Ready"},
		{api.ConditionFalse, false, "NotReady"},
		{api.ConditionUnknown, false, "Unknown"},
		{"", false, "Unknown"},
		{api.ConditionTrue, true, "Ready,SchedulingDisabled"},
	}
	for _, tc := range tests {
		n := &api.Node{Spec: api.NodeSpec{Unschedulable: tc.cordon}}
		if tc.cond != "" {
			n.Status.Conditions = []api.Condition{{Type: api.NodeReady, Status: tc.cond}}
		}
		if got := NodeStatus(n); got != tc.want {
			t.Errorf("NodeStatus(%q, cordon=%v) = %q, want %q", tc.cond, tc.cordon, got, tc.want)
		}
	}
}

func TestTableGolden(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) api.Time { return api.Time{Time: now.Add(-d)} }
	objs := []api.Object{
		&api.Pod{
			ObjectMeta: api.ObjectMeta{Name: "web-5d8f9-x2x7q", Namespace: "default", CreationTimestamp: at(200 * time.Second), Labels: map[string]string{"app": "web"}},
			Spec:       api.PodSpec{Containers: []api.Container{{Name: "hello"}}, NodeName: "board-1"},
			Status: api.PodStatus{Phase: api.PodRunning, PodIP: "10.0.0.7", ContainerStatuses: []api.ContainerStatus{{
				Name: "hello", Ready: true, RestartCount: 2,
				State:     api.ContainerState{Running: &api.ContainerStateRunning{}},
				LastState: api.ContainerState{Terminated: &api.ContainerStateTerminated{FinishedAt: at(65 * time.Second)}},
				Ports:     []api.PortStatus{{ContainerPort: 8080, HostIP: "10.0.0.7", HostPort: 40001}},
			}}},
		},
		&api.Pod{
			ObjectMeta: api.ObjectMeta{Name: "batch-1", Namespace: "jobs", CreationTimestamp: at(5 * time.Second)},
			Spec:       api.PodSpec{Containers: []api.Container{{Name: "a"}}},
			Status: api.PodStatus{Phase: api.PodPending, ContainerStatuses: []api.ContainerStatus{{
				Name: "a", State: api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "ErrImagePull"}},
			}}},
		},
	}
	var buf bytes.Buffer
	opts := Options{Wide: true, AllNamespaces: true, ShowLabels: true, Now: now}
	if err := BuildTable("Pod", objs, opts).Write(&buf); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"NAMESPACE   NAME              READY   STATUS         RESTARTS      AGE     IP         NODE      PORTS            LABELS\n" +
		"default     web-5d8f9-x2x7q   1/1     Running        2 (65s ago)   3m20s   10.0.0.7   board-1   10.0.0.7:40001   app=web\n" +
		"jobs        batch-1           0/1     ErrImagePull   0             5s      <none>     <none>    <none>           <none>\n"
	if got := buf.String(); got != want {
		t.Errorf("table mismatch\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestDeploymentRowAndNames(t *testing.T) {
	now := time.Now()
	d := &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: "web", CreationTimestamp: api.Time{Time: now.Add(-45 * time.Minute)}},
		Spec: api.DeploymentSpec{Replicas: api.Int32(3), Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: api.PodTemplateSpec{Spec: api.PodSpec{Containers: []api.Container{{Name: "hello", Image: "hello:v1"}}}}},
		Status: api.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2},
	}
	got := Row(d, Options{Wide: true, Now: now})
	want := []string{"web", "2/3", "3", "2", "45m", "hello", "hello:v1", "app=web"}
	if len(got) != len(want) {
		t.Fatalf("Row = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("column %d = %q, want %q", i, got[i], want[i])
		}
	}
	if n := Name(d); n != "deployment/web" {
		t.Errorf("Name = %q", n)
	}
}
