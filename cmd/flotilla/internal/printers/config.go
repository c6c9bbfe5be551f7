package printers

import (
	"strconv"
	"strings"

	"github.com/flotilla-edge/flotilla/api"
)

func init() {
	register("ConfigMap", KindPrinter{
		Columns: func(Options) []string { return []string{"NAME", "DATA", "AGE"} },
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.ConfigMap)
			return []string{x.Name, strconv.Itoa(len(x.Data) + len(x.BinaryData)), Age(x.CreationTimestamp, o.now())}
		},
		Describe: func(d *describer, obj api.Object) {
			x := obj.(*api.ConfigMap)
			d.meta(&x.ObjectMeta, true)
			d.line(0, "")
			d.line(0, "Data")
			d.line(0, "====")
			for _, k := range sortedKeys(x.Data) {
				d.line(0, "%s:", k)
				d.line(0, "----")
				d.line(0, "%s", strings.TrimRight(x.Data[k], "\n"))
				d.line(0, "")
			}
			for _, k := range sortedKeys(x.BinaryData) {
				d.line(0, "%s:\t%d bytes", k, len(x.BinaryData[k]))
			}
		},
	})
	register("Secret", KindPrinter{
		Columns: func(Options) []string { return []string{"NAME", "TYPE", "DATA", "AGE"} },
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.Secret)
			return []string{x.Name, x.Type, strconv.Itoa(len(x.Data)), Age(x.CreationTimestamp, o.now())}
		},
		Describe: func(d *describer, obj api.Object) {
			x := obj.(*api.Secret)
			d.meta(&x.ObjectMeta, true)
			d.line(0, "")
			d.line(0, "Type:\t%s", x.Type)
			d.line(0, "")
			d.line(0, "Data")
			d.line(0, "====")
			// Values stay hidden, as kubectl does.
			for _, k := range sortedKeys(x.Data) {
				d.line(0, "%s:\t%d bytes", k, len(x.Data[k]))
			}
		},
	})
	register("Event", KindPrinter{
		// Oldest first, newest at the bottom, as `kubectl events` lists them.
		Less: func(a, b api.Object) bool {
			return a.(*api.Event).LastTimestamp.Before(b.(*api.Event).LastTimestamp.Time)
		},
		Columns: func(Options) []string { return []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"} },
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.Event)
			ref := strings.ToLower(x.InvolvedObject.Kind) + "/" + x.InvolvedObject.Name
			return []string{Age(x.LastTimestamp, o.now()), x.Type, x.Reason, ref, x.Message}
		},
		Describe: func(d *describer, obj api.Object) {
			x := obj.(*api.Event)
			d.meta(&x.ObjectMeta, true)
			d.line(0, "Involved Object:\t%s/%s", x.InvolvedObject.Kind, x.InvolvedObject.Name)
			d.line(0, "Type:\t%s", x.Type)
			d.line(0, "Reason:\t%s", x.Reason)
			d.line(0, "Message:\t%s", x.Message)
			d.line(0, "Source:\t%s %s", x.Source.Component, x.Source.Host)
			d.line(0, "Count:\t%d", x.Count)
			d.line(0, "First Seen:\t%s", stamp(x.FirstTimestamp))
			d.line(0, "Last Seen:\t%s", stamp(x.LastTimestamp))
		},
	})
}
