package controllers

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"

	"github.com/flotilla-edge/flotilla/api"
)

// endpointsController keeps one EndpointSlice per Service with a selector:
// the pods of the service's namespace that match it and run on a node,
// each at its node address and the host ports the agent allocated for the
// service's target ports. Services without a selector are left alone:
// their EndpointSlice belongs to the user.
type endpointsController struct {
	m      *Manager
	svcs   *Cache
	slices *Cache
	queue  *Queue
}

func newEndpointsController(m *Manager) *controller {
	c := &endpointsController{m: m, svcs: m.cache("Service"), slices: m.cache("EndpointSlice"), queue: newQueue()}
	c.svcs.OnChange(enqueueSelf(c.queue))
	// A slice edited or deleted by someone else is put back.
	c.slices.OnChange(enqueueSelf(c.queue))
	// A pod change (readiness, ports, deletion) reaches its services at
	// once, which is what makes endpoints follow pods within a second.
	m.pods.OnChange(func(old, cur api.Object) {
		for _, o := range []api.Object{old, cur} {
			if o != nil {
				c.enqueueServicesOf(o.(*api.Pod))
			}
		}
	})
	return &controller{name: "endpoints", workers: 2, queue: c.queue, reconcile: c.reconcile, all: m.keysOf("Service")}
}

func (c *endpointsController) enqueueServicesOf(p *api.Pod) {
	for _, o := range c.svcs.List(func(o api.Object) bool {
		s := o.(*api.Service)
		return s.Namespace == p.Namespace && len(s.Spec.Selector) > 0 &&
			api.SelectorFromSet(s.Spec.Selector).Matches(p.Labels)
	}) {
		c.queue.Add(Key(o))
	}
}

func (c *endpointsController) reconcile(ctx context.Context, key string) error {
	o := c.svcs.Get(key)
	if o == nil {
		// The garbage collector removes the slice through its owner
		// reference; nothing to do here.
		return nil
	}
	svc := o.(*api.Service)
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == api.ServiceTypeExternalName {
		return nil
	}
	want := &api.EndpointSlice{
		TypeMeta:    api.TypeMeta{APIVersion: api.Version, Kind: "EndpointSlice"},
		ObjectMeta:  api.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: map[string]string{ServiceNameLabel: svc.Name}},
		AddressType: api.AddressTypeIPv4,
		Endpoints:   EndpointsFor(svc, c.m.pods.List(nil)),
	}
	want.OwnerReferences = []api.OwnerReference{{APIVersion: api.Version, Kind: "Service", Name: svc.Name, UID: svc.UID, Controller: true}}
	cur := c.slices.Get(key)
	if cur == nil {
		created, err := c.m.st.Create(ctx, want)
		if errors.Is(err, api.ErrAlreadyExists) {
			return fmt.Errorf("endpoints of %s: slice exists but is not cached yet", key)
		}
		if err != nil {
			return fmt.Errorf("create endpoints of %s: %w", key, err)
		}
		c.slices.Assume(created)
		return nil
	}
	have := cur.(*api.EndpointSlice)
	if reflect.DeepEqual(have.Endpoints, want.Endpoints) && reflect.DeepEqual(have.Labels, want.Labels) &&
		reflect.DeepEqual(have.OwnerReferences, want.OwnerReferences) {
		return nil
	}
	want.ResourceVersion, want.UID = have.ResourceVersion, have.UID
	updated, err := c.m.st.Update(ctx, want)
	if err != nil {
		return fmt.Errorf("update endpoints of %s: %w", key, err)
	}
	c.slices.Assume(updated)
	return nil
}

// ServiceNameLabel names the service an EndpointSlice belongs to.
const ServiceNameLabel = "flotilla.dev/service-name"

// EndpointsFor lists the endpoints of svc among pods: one per pod of the
// service's namespace that matches its selector, is bound to a node and
// not finished, sorted by pod name. An endpoint is ready when its pod is;
// each carries, per service port, the host port serving the target port.
func EndpointsFor(svc *api.Service, pods []api.Object) []api.Endpoint {
	sel := api.SelectorFromSet(svc.Spec.Selector)
	var out []api.Endpoint
	for _, o := range pods {
		p := o.(*api.Pod)
		if p.Namespace != svc.Namespace || !sel.Matches(p.Labels) || p.Spec.NodeName == "" || p.IsTerminal() {
			continue
		}
		addr := p.Status.HostIP
		var ports []api.EndpointPort
		for _, sp := range svc.Spec.Ports {
			ps := targetPortStatus(p, sp)
			if ps == nil {
				continue
			}
			if addr == "" {
				addr = ps.HostIP
			}
			ports = append(ports, api.EndpointPort{Name: sp.Name, Port: ps.HostPort, Protocol: sp.Protocol})
		}
		if addr == "" {
			continue // not started anywhere yet: no address to send to
		}
		ready := p.IsReady() && len(ports) > 0
		out = append(out, api.Endpoint{
			Addresses:  []string{addr},
			Conditions: api.EndpointConditions{Ready: &ready},
			NodeName:   p.Spec.NodeName,
			TargetRef:  &api.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
			Ports:      ports,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TargetRef.Name < out[j].TargetRef.Name })
	return out
}

// targetPortStatus finds where the pod serves a service port's target:
// a container port number, or a container port name looked up in the
// status and the spec.
func targetPortStatus(p *api.Pod, sp api.ServicePort) *api.PortStatus {
	tp := sp.TargetPort
	for _, cs := range p.Status.ContainerStatuses {
		var spec []api.ContainerPort
		for _, c := range p.Spec.Containers {
			if c.Name == cs.Name {
				spec = c.Ports
			}
		}
		for i := range cs.Ports {
			ps := &cs.Ports[i]
			proto := ps.Protocol
			if proto == "" {
				proto = "TCP"
			}
			if proto != sp.Protocol || ps.HostPort == 0 {
				continue
			}
			if !tp.IsString && ps.ContainerPort == tp.IntVal {
				return ps
			}
			if tp.IsString && (ps.Name == tp.StrVal || specName(spec, ps.ContainerPort) == tp.StrVal) {
				return ps
			}
		}
	}
	return nil
}

func specName(ports []api.ContainerPort, n int32) string {
	for _, p := range ports {
		if p.ContainerPort == n {
			return p.Name
		}
	}
	return ""
}
