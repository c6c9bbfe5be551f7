package printers

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

func init() {
	register("Service", KindPrinter{
		Columns: func(o Options) []string {
			h := []string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"}
			if o.Wide {
				h = append(h, "SELECTOR")
			}
			return h
		},
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.Service)
			r := []string{x.Name, x.Spec.Type, orNone(x.Spec.ClusterIP), ServiceExternalIP(x), ServicePorts(x), Age(x.CreationTimestamp, o.now())}
			if o.Wide {
				r = append(r, orNone(selectorOf(x.Spec.Selector)))
			}
			return r
		},
		Describe: func(d *describer, obj api.Object) { d.service(obj.(*api.Service), nil) },
	})
	register("EndpointSlice", KindPrinter{
		Columns: func(Options) []string { return []string{"NAME", "ENDPOINTS", "AGE"} },
		Row: func(obj api.Object, o Options) []string {
			x := obj.(*api.EndpointSlice)
			return []string{x.Name, EndpointsString(x, 3), Age(x.CreationTimestamp, o.now())}
		},
		Describe: func(d *describer, obj api.Object) {
			x := obj.(*api.EndpointSlice)
			d.meta(&x.ObjectMeta, true)
			d.line(0, "AddressType:\t%s", x.AddressType)
			d.line(0, "Endpoints:")
			for _, e := range x.Endpoints {
				ref := ""
				if e.TargetRef != nil {
					ref = strings.ToLower(e.TargetRef.Kind) + "/" + e.TargetRef.Name
				}
				var ports []string
				for _, p := range e.Ports {
					ports = append(ports, fmt.Sprintf("%s %d/%s", orUnset(p.Name), p.Port, p.Protocol))
				}
				d.line(1, "- Addresses:\t%s", strings.Join(e.Addresses, ","))
				d.line(2, "Ready:\t%v", e.IsReady())
				d.line(2, "NodeName:\t%s", orNone(e.NodeName))
				d.line(2, "TargetRef:\t%s", orNone(ref))
				d.line(2, "Ports:\t%s", strings.Join(ports, ", "))
			}
		},
	})
}

func orUnset(s string) string {
	if s == "" {
		return "<unset>"
	}
	return s
}

func selectorOf(m map[string]string) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// ServicePorts is kubectl's PORT(S): "80/TCP", "80:30080/TCP" with a node
// port, comma separated.
func ServicePorts(s *api.Service) string {
	var out []string
	for _, p := range s.Spec.Ports {
		if p.NodePort != 0 {
			out = append(out, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol))
		} else {
			out = append(out, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
		}
	}
	return orNone(strings.Join(out, ","))
}

// ServiceExternalIP is kubectl's EXTERNAL-IP: the external name, the
// load balancer ingress ("<pending>" until written) or the external IPs.
func ServiceExternalIP(s *api.Service) string {
	switch s.Spec.Type {
	case api.ServiceTypeExternalName:
		return s.Spec.ExternalName
	case api.ServiceTypeLoadBalancer:
		var ips []string
		for _, i := range s.Status.LoadBalancer.Ingress {
			ips = append(ips, i.IP)
		}
		ips = append(ips, s.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	}
	return orNone(strings.Join(s.Spec.ExternalIPs, ","))
}

// EndpointsString lists the ready endpoints as addr:port, at most max of
// them and "+ N more..." as kubectl does.
func EndpointsString(x *api.EndpointSlice, max int) string {
	var all []string
	for _, e := range x.Endpoints {
		if !e.IsReady() || len(e.Addresses) == 0 {
			continue
		}
		for _, p := range e.Ports {
			all = append(all, e.Addresses[0]+":"+strconv.Itoa(int(p.Port)))
		}
	}
	if len(all) == 0 {
		return "<none>"
	}
	if max > 0 && len(all) > max {
		return strings.Join(all[:max], ",") + fmt.Sprintf(" + %d more...", len(all)-max)
	}
	return strings.Join(all, ",")
}

// DescribeService prints a service with the endpoints of its slice (nil
// when there is none).
func DescribeService(w io.Writer, s *api.Service, slice *api.EndpointSlice, events []*api.Event, now time.Time) error {
	d := &describer{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0), now: now}
	d.service(s, slice)
	d.events(events)
	return d.tw.Flush()
}

func (d *describer) service(s *api.Service, slice *api.EndpointSlice) {
	d.meta(&s.ObjectMeta, true)
	d.line(0, "Selector:\t%s", orNone(selectorOf(s.Spec.Selector)))
	d.line(0, "Type:\t%s", s.Spec.Type)
	if s.Spec.Type == api.ServiceTypeExternalName {
		d.line(0, "External Name:\t%s", s.Spec.ExternalName)
	} else {
		d.line(0, "IP:\t%s", orNone(s.Spec.ClusterIP))
	}
	if len(s.Spec.ExternalIPs) > 0 {
		d.line(0, "External IPs:\t%s", strings.Join(s.Spec.ExternalIPs, ","))
	}
	if s.Spec.Type == api.ServiceTypeLoadBalancer {
		d.line(0, "LoadBalancer Ingress:\t%s", ServiceExternalIP(s))
	}
	for _, p := range s.Spec.Ports {
		name := orUnset(p.Name)
		d.line(0, "Port:\t%s  %d/%s", name, p.Port, p.Protocol)
		tp := p.TargetPort.String()
		if !p.TargetPort.IsString {
			tp += "/" + p.Protocol
		}
		d.line(0, "TargetPort:\t%s", tp)
		if p.NodePort != 0 {
			d.line(0, "NodePort:\t%s  %d/%s", name, p.NodePort, p.Protocol)
		}
		if slice != nil {
			d.line(0, "Endpoints:\t%s", endpointsForPort(slice, p))
		} else if s.Spec.Type != api.ServiceTypeExternalName {
			d.line(0, "Endpoints:\t<none>")
		}
	}
	if s.Spec.Type != api.ServiceTypeExternalName {
		aff := s.Spec.SessionAffinity
		if t := s.AffinityTimeoutSeconds(); t > 0 {
			aff = fmt.Sprintf("%s (timeout %ds)", aff, t)
		}
		d.line(0, "Session Affinity:\t%s", aff)
	}
	if s.UsesNodePorts() {
		d.line(0, "External Traffic Policy:\t%s", s.Spec.ExternalTrafficPolicy)
	}
}

func endpointsForPort(slice *api.EndpointSlice, sp api.ServicePort) string {
	var out []string
	for _, e := range slice.Endpoints {
		if !e.IsReady() || len(e.Addresses) == 0 {
			continue
		}
		for _, p := range e.Ports {
			if p.Name == sp.Name && p.Protocol == sp.Protocol {
				out = append(out, e.Addresses[0]+":"+strconv.Itoa(int(p.Port)))
			}
		}
	}
	sort.Strings(out)
	return orNone(strings.Join(out, ","))
}
