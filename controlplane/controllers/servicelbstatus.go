package controllers

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"

	"github.com/flotilla-edge/flotilla/api"
)

// serviceLBStatusController writes status.loadBalancer.ingress of
// LoadBalancer services. Flotilla has no cloud load balancer: like K3s'
// ServiceLB, every node's agent answers the service's node ports on its
// own address, so the ingress addresses are spec.loadBalancerIP and
// spec.externalIPs when given, else the InternalIPs of the ready nodes.
type serviceLBStatusController struct {
	m     *Manager
	svcs  *Cache
	queue *Queue
}

func newServiceLBStatusController(m *Manager) *controller {
	c := &serviceLBStatusController{m: m, svcs: m.cache("Service"), queue: newQueue()}
	c.svcs.OnChange(enqueueSelf(c.queue))
	m.nodes.OnChange(func(old, cur api.Object) {
		// Only readiness and addresses matter; heartbeats alone do not.
		if old != nil && cur != nil {
			o, n := old.(*api.Node), cur.(*api.Node)
			if o.Ready() == n.Ready() && o.InternalIP() == n.InternalIP() {
				return
			}
		}
		for _, k := range c.lbKeys() {
			c.queue.Add(k)
		}
	})
	return &controller{name: "service-lb-status", workers: 1, queue: c.queue, reconcile: c.reconcile, all: c.lbKeys}
}

func (c *serviceLBStatusController) lbKeys() []string {
	var out []string
	for _, o := range c.svcs.List(func(o api.Object) bool { return o.(*api.Service).Spec.Type == api.ServiceTypeLoadBalancer }) {
		out = append(out, Key(o))
	}
	return out
}

// LoadBalancerIngress computes the ingress list of a LoadBalancer service.
func LoadBalancerIngress(svc *api.Service, nodes []api.Object) []api.LoadBalancerIngress {
	var ips []string
	if svc.Spec.LoadBalancerIP != "" {
		ips = append(ips, svc.Spec.LoadBalancerIP)
	}
	ips = append(ips, svc.Spec.ExternalIPs...)
	if len(ips) == 0 {
		for _, o := range nodes {
			n := o.(*api.Node)
			if ip := n.InternalIP(); ip != "" && n.Ready() {
				ips = append(ips, ip)
			}
		}
	}
	sort.Strings(ips)
	var out []api.LoadBalancerIngress
	for i, ip := range ips {
		if i > 0 && ips[i-1] == ip {
			continue
		}
		out = append(out, api.LoadBalancerIngress{IP: ip})
	}
	return out
}

func (c *serviceLBStatusController) reconcile(ctx context.Context, key string) error {
	o := c.svcs.Get(key)
	if o == nil {
		return nil
	}
	svc := o.(*api.Service)
	var want []api.LoadBalancerIngress
	if svc.Spec.Type == api.ServiceTypeLoadBalancer {
		want = LoadBalancerIngress(svc, c.m.nodes.List(nil))
	}
	if reflect.DeepEqual(want, svc.Status.LoadBalancer.Ingress) {
		return nil
	}
	cp := *svc
	cp.Status.LoadBalancer.Ingress = want
	updated, err := c.m.st.Update(ctx, &cp)
	if errors.Is(err, api.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("service %s load balancer status: %w", key, err)
	}
	c.svcs.Assume(updated)
	return nil
}
