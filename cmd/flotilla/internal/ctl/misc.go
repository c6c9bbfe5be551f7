package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/api/client"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/printers"
	"github.com/flotilla-edge/flotilla/wasmrt/modstore"
)

// LogsOptions are logs' flags.
type LogsOptions struct {
	Container string
	Follow    bool
	Tail      int
}

// Logs prints a pod's container output. args is POD or pod/POD.
func Logs(ctx context.Context, e *Env, args []string, o LogsOptions) error {
	if len(args) != 1 {
		return fmt.Errorf("expected exactly one pod name, got %d arguments", len(args))
	}
	name := args[0]
	if t, n, ok := strings.Cut(name, "/"); ok {
		ki, err := api.LookupKind(t)
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		name = n
		if ki.Kind != "Pod" {
			// Like kubectl: the logs of a workload are those of its first pod.
			if name, err = firstPodOf(ctx, e, ki, n); err != nil {
				return err
			}
		}
	}
	obj, err := e.Client.Get(ctx, "Pod", e.Namespace, name)
	if err != nil {
		ki, _ := api.LookupKind("Pod")
		return notFound(err, ki, name)
	}
	pod := obj.(*api.Pod)
	ctr := o.Container
	if ctr == "" && len(pod.Spec.Containers) == 1 {
		ctr = pod.Spec.Containers[0].Name
	}
	if ctr != "" && !hasContainer(pod, ctr) {
		return fmt.Errorf("container %s is not valid for pod %s", ctr, name)
	}
	follow := o.Follow && !pod.IsTerminal()
	if follow {
		// Like kubectl, following ends once the pod has finished and its
		// last lines are printed.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			defer cancel()
			events, err := e.Client.Watch(ctx, "Pod", e.Namespace, "")
			if err != nil {
				return
			}
			for ev := range events {
				if p, ok := ev.Object.(*api.Pod); ok && p.Name == name && (ev.Type == "DELETED" || p.IsTerminal()) {
					break
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second): // let the last lines arrive
			}
		}()
	}
	return e.Client.Logs(ctx, e.Namespace, name, ctr, o.Tail, follow, e.Out)
}

func hasContainer(p *api.Pod, name string) bool {
	for _, c := range p.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	return false
}

func modules(ctx context.Context, c *client.Client) (*modstore.Store, error) {
	js, err := jetstream.New(c.NC)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return modstore.Open(ctx, js)
}

// ModulePush uploads a wasm file under NAME:TAG.
func ModulePush(ctx context.Context, e *Env, file, ref string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("module push: %w", err)
	}
	st, err := modules(ctx, e.Client)
	if err != nil {
		return fmt.Errorf("module push: %w", err)
	}
	digest, err := st.Push(ctx, ref, b)
	if err != nil {
		return fmt.Errorf("module push: %w", err)
	}
	fmt.Fprintf(e.Out, "pushed %s %s (%d bytes)\n", ref, digest, len(b))
	return nil
}

// ModuleList prints the registry's tags.
func ModuleList(ctx context.Context, e *Env) error {
	st, err := modules(ctx, e.Client)
	if err != nil {
		return fmt.Errorf("module ls: %w", err)
	}
	tags, err := st.List(ctx)
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		fmt.Fprintln(e.ErrOut, "No modules found")
		return nil
	}
	t := printers.Table{Header: []string{"NAME", "TAG", "DIGEST", "SIZE", "AGE"}}
	for _, m := range tags {
		d := strings.TrimPrefix(m.Digest, "sha256:")
		if len(d) > 12 {
			d = d[:12]
		}
		age := "<unknown>"
		if p, err := time.Parse(time.RFC3339, m.Pushed); err == nil {
			age = printers.HumanDuration(e.now().Sub(p))
		}
		t.Rows = append(t.Rows, []string{m.Name, m.Tag, d, FormatSize(m.Size), age})
	}
	return t.Write(e.Out)
}

// FormatSize renders a byte count with a binary unit: 512B, 1.5KiB, 2.0MiB.
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGT"[exp])
}

// ClusterInfo prints where the control plane runs, its leader, and how
// many nodes are ready.
func ClusterInfo(ctx context.Context, e *Env, server string) error {
	v, err := e.Client.Version(ctx)
	if err != nil {
		return fmt.Errorf("cluster-info: %w", err)
	}
	leader := v.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(e.Out, "Flotilla control plane is running at %s (leader: %s)\n", server, leader)
	nodes, err := e.Client.List(ctx, "Node", "", "")
	if err != nil {
		return fmt.Errorf("cluster-info: list nodes: %w", err)
	}
	ready := 0
	for _, o := range nodes {
		if n, ok := o.(*api.Node); ok && n.Ready() {
			ready++
		}
	}
	fmt.Fprintf(e.Out, "Nodes: %d/%d ready\n", ready, len(nodes))
	return nil
}

// Version prints the client's version and, when c is not nil and answers,
// the server's; an unreachable server is reported, not fatal.
func Version(ctx context.Context, out io.Writer, clientVersion string, c *client.Client, connErr error) {
	fmt.Fprintf(out, "Client Version: %s\n", clientVersion)
	if c == nil {
		if connErr != nil {
			fmt.Fprintf(out, "Server Version: unavailable (%v)\n", connErr)
		}
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.Version(ctx)
	if err != nil {
		fmt.Fprintf(out, "Server Version: unavailable (%v)\n", err)
		return
	}
	fmt.Fprintf(out, "Server Version: %s (API %s, leader %s)\n", v.Version, v.APIVersion, v.Leader)
}

// firstPodOf picks, by name, the first pod selected by a workload's
// spec.selector.
func firstPodOf(ctx context.Context, e *Env, ki *api.KindInfo, name string) (string, error) {
	obj, err := e.Client.Get(ctx, ki.Kind, e.Namespace, name)
	if err != nil {
		return "", notFound(err, ki, name)
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	var w struct {
		Spec struct {
			Selector *api.LabelSelector `json:"selector"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &w); err != nil || w.Spec.Selector == nil {
		return "", fmt.Errorf("logs: %s/%s has no pod selector", strings.ToLower(ki.Kind), name)
	}
	sel, err := w.Spec.Selector.AsSelector()
	if err != nil {
		return "", fmt.Errorf("logs: %s/%s: %w", strings.ToLower(ki.Kind), name, err)
	}
	pods, err := e.Client.List(ctx, "Pod", e.Namespace, sel.String())
	if err != nil {
		return "", err
	}
	if len(pods) == 0 {
		return "", fmt.Errorf("logs: %s/%s has no pods", strings.ToLower(ki.Kind), name)
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].GetMeta().Name < pods[j].GetMeta().Name })
	return pods[0].GetMeta().Name, nil
}
