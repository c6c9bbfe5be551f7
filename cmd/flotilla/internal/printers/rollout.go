package printers

import (
	"io"
	"text/tabwriter"

	"github.com/flotilla-edge/flotilla/api"
)

// DescribeTemplate prints a pod template the way describe does, for
// `rollout history --revision=N`.
func DescribeTemplate(w io.Writer, t api.PodTemplateSpec) error {
	d := &describer{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	d.kv(0, "Annotations", t.Annotations)
	d.template(t)
	return d.tw.Flush()
}

// deploymentStrategy prints the rollout settings kubectl describe shows.
func (d *describer) deploymentStrategy(x *api.Deployment) {
	st := x.Spec.Strategy.Type
	if st == "" {
		st = api.RollingUpdateStrategy
	}
	d.line(0, "StrategyType:\t%s", st)
	d.line(0, "MinReadySeconds:\t%d", x.Spec.MinReadySeconds)
	if ru := x.Spec.Strategy.RollingUpdate; ru != nil && st == api.RollingUpdateStrategy {
		d.line(0, "RollingUpdateStrategy:\t%s max unavailable, %s max surge", orDefault(ru.MaxUnavailable), orDefault(ru.MaxSurge))
	}
}

func orDefault(v *api.IntOrString) string {
	if v == nil {
		return "25%"
	}
	return v.String()
}
