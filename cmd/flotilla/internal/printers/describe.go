package printers

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// timeLayout is how kubectl describe prints timestamps.
const timeLayout = time.RFC1123Z

// describer writes kubectl-style "Key:\tvalue" lines at indent levels;
// one tabwriter aligns the values of each block.
type describer struct {
	tw  *tabwriter.Writer
	now time.Time
}

func (d *describer) line(level int, format string, args ...any) {
	fmt.Fprintf(d.tw, strings.Repeat("  ", level)+format+"\n", args...)
}

// kv prints a map one pair a line, the first beside the key: the way
// kubectl prints Labels and Annotations.
func (d *describer) kv(level int, key string, m map[string]string) {
	if len(m) == 0 {
		d.line(level, "%s:\t<none>", key)
		return
	}
	keys := sortedKeys(m)
	for i, k := range keys {
		if i == 0 {
			d.line(level, "%s:\t%s=%s", key, k, m[k])
			continue
		}
		d.line(level, "\t%s=%s", k, m[k])
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func stamp(t api.Time) string {
	if t.IsZero() {
		return "<unset>"
	}
	return t.Local().Format(timeLayout)
}

// Describe prints obj like kubectl describe. nodePods are the pods bound to
// the node when obj is a node (ignored otherwise).
func Describe(w io.Writer, obj api.Object, nodePods []*api.Pod, events []*api.Event, now time.Time) error {
	d := &describer{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0), now: now}
	switch x := obj.(type) {
	case *api.Pod:
		d.pod(x)
	case *api.Deployment:
		d.deployment(x)
	case *api.ReplicaSet:
		d.replicaSet(x)
	case *api.Node:
		d.node(x, nodePods)
	case *api.Namespace:
		d.namespace(x)
	default:
		kp, ok := kindPrinters[obj.GetType().Kind]
		if !ok || kp.Describe == nil {
			return fmt.Errorf("describe %T: %w", obj, api.ErrUnknownKind)
		}
		kp.Describe(d, obj)
	}
	d.events(events)
	return d.tw.Flush()
}

// events ends every describe with the object's events, like kubectl's.
func (d *describer) events(evs []*api.Event) {
	if len(evs) == 0 {
		d.line(0, "Events:\t<none>")
		return
	}
	if err := d.tw.Flush(); err != nil {
		return
	}
	d.line(0, "Events:")
	t := Table{Header: []string{"Type", "Reason", "Age", "From", "Message"}}
	for _, ev := range evs {
		age := Age(ev.LastTimestamp, d.now)
		if ev.Count > 1 {
			age = fmt.Sprintf("%s (x%d over %s)", age, ev.Count, Age(ev.FirstTimestamp, d.now))
		}
		t.Rows = append(t.Rows, []string{ev.Type, ev.Reason, age, ev.Source.Component, ev.Message})
	}
	var b strings.Builder
	_ = t.Write(&b)
	for _, l := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		d.line(1, "%s", l)
	}
}

func (d *describer) meta(m *api.ObjectMeta, namespaced bool) {
	d.line(0, "Name:\t%s", m.Name)
	if namespaced {
		d.line(0, "Namespace:\t%s", m.Namespace)
	}
	d.kv(0, "Labels", m.Labels)
	d.kv(0, "Annotations", m.Annotations)
	d.line(0, "CreationTimestamp:\t%s", stamp(m.CreationTimestamp))
}

func (d *describer) controlledBy(m *api.ObjectMeta) {
	if r := api.ControllerOf(m); r != nil {
		d.line(0, "Controlled By:\t%s/%s", r.Kind, r.Name)
	}
}

func (d *describer) pod(p *api.Pod) {
	d.meta(&p.ObjectMeta, true)
	node := orNone(p.Spec.NodeName)
	if p.Spec.NodeName != "" && p.Status.HostIP != "" {
		node += "/" + p.Status.HostIP
	}
	d.line(0, "Node:\t%s", node)
	if !p.Status.StartTime.IsZero() {
		d.line(0, "Start Time:\t%s", stamp(p.Status.StartTime))
	}
	// Like kubectl: the phase here, the container reasons further down.
	d.line(0, "Status:\t%s", orUnknown(p.Status.Phase))
	if p.Status.Reason != "" {
		d.line(0, "Reason:\t%s", p.Status.Reason)
	}
	if p.Status.Message != "" {
		d.line(0, "Message:\t%s", p.Status.Message)
	}
	if p.Status.Reason != "" {
		d.line(0, "Reason:\t%s", p.Status.Reason)
	}
	if p.Status.Message != "" {
		d.line(0, "Message:\t%s", p.Status.Message)
	}
	d.line(0, "IP:\t%s", p.Status.PodIP)
	d.controlledBy(&p.ObjectMeta)
	statuses := map[string]*api.ContainerStatus{}
	for i := range p.Status.ContainerStatuses {
		statuses[p.Status.ContainerStatuses[i].Name] = &p.Status.ContainerStatuses[i]
	}
	d.line(0, "Containers:")
	for _, c := range p.Spec.Containers {
		d.container(1, c, statuses[c.Name])
	}
	d.conditions(p.Status.Conditions, false)
	d.kv(0, "Node-Selectors", p.Spec.NodeSelector)
	d.line(0, "Restart Policy:\t%s", p.Spec.RestartPolicy)
}

func (d *describer) container(level int, c api.Container, cs *api.ContainerStatus) {
	d.line(level, "%s:", c.Name)
	l := level + 1
	d.line(l, "Image:\t%s", c.Image)
	if cs != nil {
		d.line(l, "Image ID:\t%s", cs.ImageID)
		if cs.ContainerID != "" {
			d.line(l, "Container ID:\t%s", cs.ContainerID)
		}
	}
	runtime := c.Runtime
	if runtime == "" {
		runtime = api.RuntimeWasm
	}
	if c.Wasm != nil && c.Wasm.Mode != "" {
		runtime += " (" + c.Wasm.Mode + ")"
	}
	d.line(l, "Runtime:\t%s", runtime)
	d.ports(l, c.Ports, cs)
	for _, list := range []struct {
		title string
		items []string
	}{{"Command:", c.Command}, {"Args:", c.Args}} {
		if len(list.items) > 0 {
			d.line(l, "%s", list.title)
			for _, a := range list.items {
				d.line(l+1, "%s", a)
			}
		}
	}
	if c.WorkingDir != "" {
		d.line(l, "Working Dir:	%s", c.WorkingDir)
	}
	if cs != nil {
		d.state(l, "State", cs.State)
		if cs.LastState != (api.ContainerState{}) {
			d.state(l, "Last State", cs.LastState)
		}
		d.line(l, "Ready:\t%s", titleBool(cs.Ready))
		d.line(l, "Restart Count:\t%d", cs.RestartCount)
	}
	d.resources(l, "Limits", c.Resources.Limits)
	d.resources(l, "Requests", c.Resources.Requests)
	if len(c.Env) == 0 {
		d.line(l, "Environment:\t<none>")
	} else {
		d.line(l, "Environment:")
		for _, e := range c.Env {
			d.line(l+1, "%s:\t%s", e.Name, e.Value)
		}
	}
}

func (d *describer) ports(level int, ports []api.ContainerPort, cs *api.ContainerStatus) {
	if len(ports) == 0 {
		d.line(level, "Port:\t<none>")
		return
	}
	var decl, host []string
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = "TCP"
		}
		decl = append(decl, fmt.Sprintf("%d/%s", p.ContainerPort, proto))
		if cs != nil {
			for _, ps := range cs.Ports {
				if ps.ContainerPort == p.ContainerPort {
					host = append(host, fmt.Sprintf("%s:%d", ps.HostIP, ps.HostPort))
				}
			}
		}
	}
	key := "Port"
	if len(ports) > 1 {
		key = "Ports"
	}
	d.line(level, "%s:\t%s", key, strings.Join(decl, ", "))
	if len(host) > 0 {
		d.line(level, "Host Endpoint:\t%s", strings.Join(host, ", "))
	}
}

func (d *describer) state(level int, key string, s api.ContainerState) {
	switch {
	case s.Running != nil:
		d.line(level, "%s:\tRunning", key)
		d.line(level+1, "Started:\t%s", stamp(s.Running.StartedAt))
	case s.Waiting != nil:
		d.line(level, "%s:\tWaiting", key)
		if s.Waiting.Reason != "" {
			d.line(level+1, "Reason:\t%s", s.Waiting.Reason)
		}
		if s.Waiting.Message != "" {
			d.line(level+1, "Message:\t%s", s.Waiting.Message)
		}
	case s.Terminated != nil:
		t := s.Terminated
		d.line(level, "%s:\tTerminated", key)
		if t.Reason != "" {
			d.line(level+1, "Reason:\t%s", t.Reason)
		}
		if t.Message != "" {
			d.line(level+1, "Message:\t%s", t.Message)
		}
		d.line(level+1, "Exit Code:\t%d", t.ExitCode)
		d.line(level+1, "Started:\t%s", stamp(t.StartedAt))
		d.line(level+1, "Finished:\t%s", stamp(t.FinishedAt))
	default:
		d.line(level, "%s:\tWaiting", key)
	}
}

func (d *describer) resources(level int, key string, rl api.ResourceList) {
	if len(rl) == 0 {
		return
	}
	d.line(level, "%s:", key)
	for _, k := range sortedKeys(rl) {
		d.line(level+1, "%s:\t%s", k, rl[k].String())
	}
}

func (d *describer) conditions(conds []api.Condition, withReason bool) {
	if len(conds) == 0 {
		d.line(0, "Conditions:\t<none>")
		return
	}
	d.line(0, "Conditions:")
	if withReason {
		d.line(1, "Type\tStatus\tReason")
		d.line(1, "----\t------\t------")
		for _, c := range conds {
			d.line(1, "%s\t%s\t%s", c.Type, c.Status, orNone(c.Reason))
		}
		return
	}
	d.line(1, "Type\tStatus")
	for _, c := range conds {
		d.line(1, "%s\t%s", c.Type, c.Status)
	}
}

func (d *describer) template(t api.PodTemplateSpec) {
	d.line(0, "Pod Template:")
	d.kv(1, "Labels", t.Labels)
	d.line(1, "Containers:")
	for _, c := range t.Spec.Containers {
		d.container(2, c, nil)
	}
	d.kv(1, "Node-Selectors", t.Spec.NodeSelector)
}

func (d *describer) deployment(x *api.Deployment) {
	d.meta(&x.ObjectMeta, true)
	d.line(0, "Selector:\t%s", SelectorString(x.Spec.Selector))
	s := x.Status
	d.line(0, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable",
		replicas(x.Spec.Replicas), s.UpdatedReplicas, s.Replicas, s.AvailableReplicas, s.UnavailableReplicas)
	d.deploymentStrategy(x)
	if x.Spec.Paused {
		d.line(0, "Paused:\ttrue")
	}
	d.template(x.Spec.Template)
	d.conditions(x.Status.Conditions, true)
}

func (d *describer) replicaSet(x *api.ReplicaSet) {
	d.meta(&x.ObjectMeta, true)
	d.line(0, "Selector:\t%s", SelectorString(x.Spec.Selector))
	d.controlledBy(&x.ObjectMeta)
	d.line(0, "Replicas:\t%d current / %d desired", x.Status.Replicas, replicas(x.Spec.Replicas))
	d.line(0, "Pods Status:\t%d Ready / %d Available", x.Status.ReadyReplicas, x.Status.AvailableReplicas)
	d.template(x.Spec.Template)
}

func (d *describer) namespace(x *api.Namespace) {
	d.meta(&x.ObjectMeta, false)
	d.line(0, "Status:\t%s", orUnknown(x.Status.Phase))
}

func (d *describer) node(n *api.Node, pods []*api.Pod) {
	d.line(0, "Name:\t%s", n.Name)
	d.line(0, "Roles:\t%s", NodeRoles(n))
	d.kv(0, "Labels", n.Labels)
	d.kv(0, "Annotations", n.Annotations)
	d.line(0, "CreationTimestamp:\t%s", stamp(n.CreationTimestamp))
	d.line(0, "Unschedulable:\t%t", n.Spec.Unschedulable)
	if len(n.Status.Conditions) == 0 {
		d.line(0, "Conditions:\t<none>")
	} else {
		d.line(0, "Conditions:")
		d.line(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
		d.line(1, "----\t------\t-----------------\t------------------\t------\t-------")
		for _, c := range n.Status.Conditions {
			d.line(1, "%s\t%s\t%s\t%s\t%s\t%s", c.Type, c.Status, stamp(c.LastHeartbeatTime), stamp(c.LastTransitionTime), c.Reason, c.Message)
		}
	}
	d.line(0, "Addresses:")
	for _, a := range n.Status.Addresses {
		d.line(1, "%s:\t%s", a.Type, a.Address)
	}
	for _, r := range []struct {
		key string
		rl  api.ResourceList
	}{{"Capacity", n.Status.Capacity}, {"Allocatable", n.Status.Allocatable}} {
		d.line(0, "%s:", r.key)
		for _, k := range sortedKeys(r.rl) {
			v := r.rl[k].String()
			if k == "memory" {
				v = FormatBytes(r.rl[k].Value())
			}
			d.line(1, "%s:\t%s", k, v)
		}
	}
	i := n.Status.NodeInfo
	d.line(0, "System Info:")
	d.line(1, "Operating System:\t%s", i.OperatingSystem)
	if i.Variant != "" {
		d.line(1, "Variant:\t%s", i.Variant)
	}
	d.line(1, "Architecture:\t%s", i.Architecture)
	d.line(1, "Kernel Version:\t%s", i.KernelVersion)
	d.line(1, "Agent Version:\t%s", i.AgentVersion)
	d.line(0, "Runtimes:\t%s", orNone(strings.Join(n.Status.Runtimes, ",")))
	if r := n.Status.DaemonPorts.PodPortRange; r != "" {
		d.line(0, "Pod Port Range:\t%s", r)
	}
	var active []*api.Pod
	for _, p := range pods {
		if !p.IsTerminal() {
			active = append(active, p)
		}
	}
	d.line(0, "Non-terminated Pods:\t(%d in total)", len(active))
	if len(active) > 0 {
		d.line(1, "Namespace\tName\tCPU Requests\tMemory Requests\tAge")
		d.line(1, "---------\t----\t------------\t---------------\t---")
		for _, p := range active {
			cpu, mem := p.Requests()
			d.line(1, "%s\t%s\t%s\t%s\t%s", p.Namespace, p.Name, FormatMilliCPU(cpu), FormatBytes(mem), Age(p.CreationTimestamp, d.now))
		}
	}
}

// FormatMilliCPU renders millicores as kubectl does: "250m", "2", "0".
func FormatMilliCPU(m int64) string {
	if m%1000 == 0 {
		return fmt.Sprint(m / 1000)
	}
	return fmt.Sprintf("%dm", m)
}

// FormatBytes renders bytes in the largest binary unit that divides them.
func FormatBytes(b int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if b != 0 && b%u.n == 0 {
			return fmt.Sprintf("%d%s", b/u.n, u.s)
		}
	}
	return fmt.Sprint(b)
}

func titleBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
