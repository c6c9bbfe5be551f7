package controllers

import (
	"context"
	"errors"
	"fmt"

	"github.com/flotilla-edge/flotilla/api"
)

// pvcBindingController binds a PersistentVolumeClaim to the node of the
// first pod that uses it once that pod is scheduled (WaitForFirstConsumer,
// in Kubernetes' terms). From then on the scheduler's VolumeNode filter
// keeps every pod using the claim on that node, where the agent keeps the
// claim's directory. Binding here rather than inside the scheduling
// controller keeps it working for pods bound by other controllers
// (DaemonSet pods are created bound).
type pvcBindingController struct {
	m     *Manager
	pvcs  *Cache
	queue *Queue
}

func newPVCBindingController(m *Manager) *controller {
	c := &pvcBindingController{m: m, pvcs: m.cache("PersistentVolumeClaim"), queue: newQueue()}
	m.pods.OnChange(func(old, cur api.Object) {
		if cur != nil && cur.(*api.Pod).Spec.NodeName != "" && usesClaims(cur.(*api.Pod)) {
			c.queue.Add(Key(cur))
		}
	})
	// A claim created after its pod was bound is bound on the next resync.
	return &controller{name: "pvc-binding", workers: 1, queue: c.queue, reconcile: c.reconcile, all: c.boundPodKeys}
}

func usesClaims(p *api.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			return true
		}
	}
	return false
}

func (c *pvcBindingController) boundPodKeys() []string {
	var out []string
	for _, o := range c.m.pods.List(func(o api.Object) bool {
		p := o.(*api.Pod)
		return p.Spec.NodeName != "" && usesClaims(p)
	}) {
		out = append(out, Key(o))
	}
	return out
}

func (c *pvcBindingController) reconcile(ctx context.Context, key string) error {
	o := c.m.pods.Get(key)
	if o == nil {
		return nil
	}
	p := o.(*api.Pod)
	if p.Spec.NodeName == "" {
		return nil
	}
	var errs []error
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		co := c.pvcs.Get(p.Namespace + "/" + v.PersistentVolumeClaim.ClaimName)
		if co == nil {
			continue
		}
		claim := co.(*api.PersistentVolumeClaim)
		if claim.Status.NodeName != "" {
			continue
		}
		cp := *claim
		cp.Status.Phase, cp.Status.NodeName = api.ClaimBound, p.Spec.NodeName
		updated, err := c.m.st.Update(ctx, &cp)
		if errors.Is(err, api.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bind claim %s/%s to node %s: %w", claim.Namespace, claim.Name, p.Spec.NodeName, err))
			continue
		}
		c.pvcs.Assume(updated)
		c.m.events.Eventf(claim, api.EventNormal, "Bound", "Bound to node %s by pod %s", p.Spec.NodeName, p.Name)
	}
	return errors.Join(errs...)
}
