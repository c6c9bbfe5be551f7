package printers

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/flotilla-edge/flotilla/api"
)

func init() {
	register("StatefulSet", KindPrinter{
		Columns: func(o Options) []string {
			h := []string{"NAME", "READY", "AGE"}
			if o.Wide {
				h = append(h, "CONTAINERS", "IMAGES")
			}
			return h
		},
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.StatefulSet)
			r := []string{x.Name, fmt.Sprintf("%d/%d", x.Status.ReadyReplicas, replicas(x.Spec.Replicas)), Age(x.CreationTimestamp, o.now())}
			if o.Wide {
				r = append(r, templateColumns(x.Spec.Template.Spec, x.Spec.Selector)[:2]...)
			}
			return r
		},
		Describe: func(d *describer, obj api.Object) {
			x := obj.(*api.StatefulSet)
			d.meta(&x.ObjectMeta, true)
			d.line(0, "Selector:\t%s", SelectorString(x.Spec.Selector))
			d.line(0, "Replicas:\t%d desired | %d total", replicas(x.Spec.Replicas), x.Status.Replicas)
			strategy := x.Spec.UpdateStrategy.Type
			d.line(0, "Update Strategy:\t%s", orNone(strategy))
			if ru := x.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
				d.line(1, "Partition:\t%d", *ru.Partition)
			}
			d.line(0, "Pod Management Policy:\t%s", orNone(x.Spec.PodManagementPolicy))
			d.line(0, "Service Name:\t%s", orNone(x.Spec.ServiceName))
			d.line(0, "Pods Status:\t%d Ready / %d Current / %d Updated / %d Available", x.Status.ReadyReplicas, x.Status.CurrentReplicas, x.Status.UpdatedReplicas, x.Status.AvailableReplicas)
			d.line(0, "Revisions:\tcurrent %s, update %s", orNone(x.Status.CurrentRevision), orNone(x.Status.UpdateRevision))
			d.template(x.Spec.Template)
			d.line(0, "Volume Claims:")
			if len(x.Spec.VolumeClaimTemplates) == 0 {
				d.line(1, "<none>")
			}
			for _, c := range x.Spec.VolumeClaimTemplates {
				d.line(1, "Name:\t%s", c.Name)
				d.line(1, "Capacity:\t%s", claimStorage(&c.Spec))
				d.line(1, "Access Modes:\t%s", strings.Join(c.Spec.AccessModes, ","))
			}
		},
	})
	register("DaemonSet", KindPrinter{
		Columns: func(o Options) []string {
			h := []string{"NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"}
			if o.Wide {
				h = append(h, "CONTAINERS", "IMAGES", "SELECTOR")
			}
			return h
		},
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.DaemonSet)
			s := x.Status
			r := []string{x.Name, int32Str(s.DesiredNumberScheduled), int32Str(s.CurrentNumberScheduled), int32Str(s.NumberReady),
				int32Str(s.UpdatedNumberScheduled), int32Str(s.NumberAvailable), orNone(api.FormatLabels(x.Spec.Template.Spec.NodeSelector)),
				Age(x.CreationTimestamp, o.now())}
			if o.Wide {
				r = append(r, templateColumns(x.Spec.Template.Spec, x.Spec.Selector)...)
			}
			return r
		},
		Describe: func(d *describer, obj api.Object) {
			x := obj.(*api.DaemonSet)
			s := x.Status
			d.meta(&x.ObjectMeta, true)
			d.line(0, "Selector:\t%s", SelectorString(x.Spec.Selector))
			d.line(0, "Node-Selector:\t%s", orNone(api.FormatLabels(x.Spec.Template.Spec.NodeSelector)))
			d.line(0, "Desired Number of Nodes Scheduled:\t%d", s.DesiredNumberScheduled)
			d.line(0, "Current Number of Nodes Scheduled:\t%d", s.CurrentNumberScheduled)
			d.line(0, "Number of Nodes Scheduled with Up-to-date Pods:\t%d", s.UpdatedNumberScheduled)
			d.line(0, "Number of Nodes Scheduled with Available Pods:\t%d", s.NumberAvailable)
			d.line(0, "Number of Nodes Misscheduled:\t%d", s.NumberMisscheduled)
			d.line(0, "Pods Status:\t%d Ready", s.NumberReady)
			us := x.Spec.UpdateStrategy
			d.line(0, "Update Strategy:\t%s", orNone(us.Type))
			if us.RollingUpdate != nil && us.RollingUpdate.MaxUnavailable != nil {
				d.line(1, "Max Unavailable:\t%s", us.RollingUpdate.MaxUnavailable)
			}
			d.template(x.Spec.Template)
			if len(x.Spec.Template.Spec.Tolerations) > 0 {
				d.line(1, "Tolerations:")
				for _, t := range x.Spec.Template.Spec.Tolerations {
					d.line(2, "%s", tolerationString(t))
				}
			}
		},
	})
	register("PersistentVolumeClaim", KindPrinter{
		Columns: func(Options) []string {
			return []string{"NAME", "STATUS", "NODE", "CAPACITY", "ACCESS MODES", "AGE"}
		},
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.PersistentVolumeClaim)
			return []string{x.Name, orUnknown(x.Status.Phase), orNone(x.Status.NodeName), claimStorage(&x.Spec),
				accessModes(x.Spec.AccessModes), Age(x.CreationTimestamp, o.now())}
		},
		Describe: func(d *describer, obj api.Object) {
			x := obj.(*api.PersistentVolumeClaim)
			d.meta(&x.ObjectMeta, true)
			d.line(0, "Status:\t%s", orUnknown(x.Status.Phase))
			d.line(0, "Node:\t%s", orNone(x.Status.NodeName))
			d.line(0, "Capacity:\t%s", claimStorage(&x.Spec))
			d.line(0, "Access Modes:\t%s", accessModes(x.Spec.AccessModes))
		},
	})
	register("ControllerRevision", KindPrinter{
		Columns: func(Options) []string { return []string{"NAME", "CONTROLLER", "REVISION", "AGE"} },
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.ControllerRevision)
			owner := "<none>"
			if r := api.ControllerOf(&x.ObjectMeta); r != nil {
				owner = strings.ToLower(r.Kind) + "/" + r.Name
			}
			return []string{x.Name, owner, strconv.FormatInt(x.Revision, 10), Age(x.CreationTimestamp, o.now())}
		},
	})
}

func int32Str(n int32) string { return strconv.Itoa(int(n)) }

func claimStorage(s *api.PersistentVolumeClaimSpec) string {
	if q, ok := s.Resources.Requests["storage"]; ok {
		return q.String()
	}
	return "<none>"
}

// accessModes abbreviates as kubectl does: RWO, ROX, RWX.
func accessModes(modes []string) string {
	short := map[string]string{api.ReadWriteOnce: "RWO", api.ReadOnlyMany: "ROX", api.ReadWriteMany: "RWX"}
	var out []string
	for _, m := range modes {
		if s, ok := short[m]; ok {
			out = append(out, s)
		} else {
			out = append(out, m)
		}
	}
	return orNone(strings.Join(out, ","))
}

func tolerationString(t api.Toleration) string {
	s := t.Key
	if t.Operator == "Exists" {
		if s == "" {
			s = "op=Exists"
		} else {
			s += " op=Exists"
		}
	} else if t.Value != "" {
		s += "=" + t.Value
	}
	if t.Effect != "" {
		s += ":" + t.Effect
	}
	if t.TolerationSeconds != nil {
		s += fmt.Sprintf(" for %ds", *t.TolerationSeconds)
	}
	return s
}
