// Package printers renders API objects the way kubectl does: tables for
// get, key: value sections for describe, YAML/JSON/name output.
package printers

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// Table is a header and rows of cells.
type Table struct {
	Header []string
	Rows   [][]string
}

// NewTabWriter aligns columns exactly as kubectl's get does.
func NewTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
}

// Write prints the table with aligned columns.
func (t Table) Write(w io.Writer) error {
	tw := NewTabWriter(w)
	if len(t.Header) > 0 {
		fmt.Fprintln(tw, strings.Join(t.Header, "\t"))
	}
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// RowLine renders one row padded to the widths the header and reference
// rows give, so rows printed later (get -w) line up with the first table.
func RowLine(t Table, row []string) string {
	var buf bytes.Buffer
	ref := Table{Header: t.Header, Rows: append(append([][]string{}, t.Rows...), row)}
	_ = ref.Write(&buf)
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	return lines[len(lines)-1] + "\n"
}

// Options shape a get table.
type Options struct {
	Wide          bool
	ShowLabels    bool
	AllNamespaces bool
	// Now is the reference time for AGE; zero means time.Now().
	Now time.Time
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// Age renders the time since t like kubectl's AGE column.
func Age(t api.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return HumanDuration(now.Sub(t.Time))
}

// HumanDuration is kubectl's duration format: precise when small, coarse
// when large (5s, 3m20s, 45m, 5h10m, 3d4h, 45d, 2y10d).
func HumanDuration(d time.Duration) string {
	if s := int(d.Seconds()); s < -1 {
		return "<invalid>"
	} else if s < 0 {
		return "0s"
	} else if s < 60*2 {
		return fmt.Sprintf("%ds", s)
	}
	minutes := int(d / time.Minute)
	if minutes < 10 {
		if s := int(d/time.Second) % 60; s != 0 {
			return fmt.Sprintf("%dm%ds", minutes, s)
		}
		return fmt.Sprintf("%dm", minutes)
	} else if minutes < 60*3 {
		return fmt.Sprintf("%dm", minutes)
	}
	hours := int(d / time.Hour)
	switch {
	case hours < 8:
		if m := minutes % 60; m != 0 {
			return fmt.Sprintf("%dh%dm", hours, m)
		}
		return fmt.Sprintf("%dh", hours)
	case hours < 48:
		return fmt.Sprintf("%dh", hours)
	case hours < 24*8:
		if h := hours % 24; h != 0 {
			return fmt.Sprintf("%dd%dh", hours/24, h)
		}
		return fmt.Sprintf("%dd", hours/24)
	case hours < 24*365*2:
		return fmt.Sprintf("%dd", hours/24)
	case hours < 24*365*8:
		if dy := (hours / 24) % 365; dy != 0 {
			return fmt.Sprintf("%dy%dd", hours/24/365, dy)
		}
		return fmt.Sprintf("%dy", hours/24/365)
	}
	return fmt.Sprintf("%dy", hours/24/365)
}

// Columns returns the header of a kind's table.
func Columns(kind string, o Options) []string {
	var h []string
	switch kind {
	case "Node":
		h = []string{"NAME", "STATUS", "ROLES", "AGE", "VERSION"}
		if o.Wide {
			h = append(h, "INTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "ARCH", "RUNTIMES")
		}
	case "Pod":
		h = []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}
		if o.Wide {
			h = append(h, "IP", "NODE", "PORTS")
		}
	case "Deployment":
		h = []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}
		if o.Wide {
			h = append(h, "CONTAINERS", "IMAGES", "SELECTOR")
		}
	case "ReplicaSet":
		h = []string{"NAME", "DESIRED", "CURRENT", "READY", "AGE"}
		if o.Wide {
			h = append(h, "CONTAINERS", "IMAGES", "SELECTOR")
		}
	case "Namespace":
		h = []string{"NAME", "STATUS", "AGE"}
	default:
		if kp, ok := kindPrinters[kind]; ok && kp.Columns != nil {
			h = kp.Columns(o)
		} else {
			h = []string{"NAME", "AGE"}
		}
	}
	if o.AllNamespaces {
		h = append([]string{"NAMESPACE"}, h...)
	}
	if o.ShowLabels {
		h = append(h, "LABELS")
	}
	return h
}

// Row renders one object as a table row matching Columns.
func Row(obj api.Object, o Options) []string {
	now := o.now()
	m := obj.GetMeta()
	age := Age(m.CreationTimestamp, now)
	var r []string
	switch x := obj.(type) {
	case *api.Node:
		r = []string{m.Name, NodeStatus(x), NodeRoles(x), age, orNone(x.Status.NodeInfo.AgentVersion)}
		if o.Wide {
			r = append(r, orNone(x.InternalIP()), orUnknown(osImage(x)), orUnknown(x.Status.NodeInfo.KernelVersion),
				orUnknown(x.Status.NodeInfo.Architecture), orNone(strings.Join(x.Status.Runtimes, ",")))
		}
	case *api.Pod:
		ready, total := PodReady(x)
		r = []string{m.Name, fmt.Sprintf("%d/%d", ready, total), PodStatus(x), PodRestarts(x, now), age}
		if o.Wide {
			r = append(r, orNone(x.Status.PodIP), orNone(x.Spec.NodeName), orNone(strings.Join(PodPorts(x), ",")))
		}
	case *api.Deployment:
		desired := replicas(x.Spec.Replicas)
		r = []string{m.Name, fmt.Sprintf("%d/%d", x.Status.ReadyReplicas, desired),
			strconv.Itoa(int(x.Status.UpdatedReplicas)), strconv.Itoa(int(x.Status.AvailableReplicas)), age}
		if o.Wide {
			r = append(r, templateColumns(x.Spec.Template.Spec, x.Spec.Selector)...)
		}
	case *api.ReplicaSet:
		r = []string{m.Name, strconv.Itoa(int(replicas(x.Spec.Replicas))), strconv.Itoa(int(x.Status.Replicas)),
			strconv.Itoa(int(x.Status.ReadyReplicas)), age}
		if o.Wide {
			r = append(r, templateColumns(x.Spec.Template.Spec, x.Spec.Selector)...)
		}
	case *api.Namespace:
		r = []string{m.Name, orUnknown(x.Status.Phase), age}
	default:
		if kp, ok := kindPrinters[obj.GetType().Kind]; ok && kp.Row != nil {
			r = kp.Row(obj, o)
		} else {
			r = []string{m.Name, age}
		}
	}
	if o.AllNamespaces {
		r = append([]string{m.Namespace}, r...)
	}
	if o.ShowLabels {
		r = append(r, api.FormatLabels(m.Labels))
	}
	return r
}

// BuildTable renders objects of one kind, sorted by namespace and name
// (or by the kind's own order, such as events by time).
func BuildTable(kind string, objs []api.Object, o Options) Table {
	sorted := append([]api.Object(nil), objs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if less := kindPrinters[kind].Less; less != nil {
			return less(sorted[i], sorted[j])
		}
		a, b := sorted[i].GetMeta(), sorted[j].GetMeta()
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	t := Table{Header: Columns(kind, o)}
	for _, obj := range sorted {
		t.Rows = append(t.Rows, Row(obj, o))
	}
	return t
}

func templateColumns(spec api.PodSpec, sel *api.LabelSelector) []string {
	var names, images []string
	for _, c := range spec.Containers {
		names = append(names, c.Name)
		images = append(images, c.Image)
	}
	return []string{orNone(strings.Join(names, ",")), orNone(strings.Join(images, ",")), orNone(SelectorString(sel))}
}

// SelectorString renders a label selector in -l syntax.
func SelectorString(sel *api.LabelSelector) string {
	s, err := sel.AsSelector()
	if err != nil {
		return "<error>"
	}
	return s.String()
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func osImage(n *api.Node) string {
	i := n.Status.NodeInfo
	if i.Variant != "" {
		return strings.TrimSpace(i.OperatingSystem + " " + i.Variant)
	}
	return i.OperatingSystem
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

// KindPrinter prints one kind. The kinds added after the first five each
// register one from their own file (see register), so adding a kind does
// not touch the switches above.
type KindPrinter struct {
	// Columns and Row leave out NAMESPACE and LABELS; the caller adds them.
	Columns  func(o Options) []string
	Row      func(obj api.Object, o Options) []string
	Describe func(d *describer, obj api.Object)
	// Less orders the rows; nil means by namespace and name.
	Less func(a, b api.Object) bool
}

var kindPrinters = map[string]KindPrinter{}

// register adds the printer of a kind; call it from an init function.
func register(kind string, p KindPrinter) { kindPrinters[kind] = p }
