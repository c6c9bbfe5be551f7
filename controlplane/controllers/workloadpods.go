package controllers

import (
	"encoding/json"
	"hash/fnv"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

// ControllerRevisionHashLabel marks a DaemonSet or StatefulSet pod with
// the revision (template hash) it was made from, as Kubernetes does.
const ControllerRevisionHashLabel = "controller-revision-hash"

// revisionHash names a pod template revision: equal templates, equal
// hashes. Kept apart from the Deployment's TemplateHash so the two
// controllers can evolve their naming independently.
func revisionHash(t *api.PodTemplateSpec) string {
	b, _ := json.Marshal(t)
	h := fnv.New32a()
	_, _ = h.Write(b)
	v := h.Sum32()
	const alphabet = "bcdfghjklmnpqrstvwxz2456789" // no vowels: no words
	out := make([]byte, 0, 8)
	for v > 0 || len(out) == 0 {
		out = append(out, alphabet[v%uint32(len(alphabet))])
		v /= uint32(len(alphabet))
	}
	return string(out)
}

// podAvailable reports whether p has been ready for minReady seconds, and
// if it is ready but not yet available, how long until it is.
func podAvailable(p *api.Pod, minReady int32, now time.Time) (bool, time.Duration) {
	if !p.IsReady() {
		return false, 0
	}
	if minReady <= 0 {
		return true, 0
	}
	c := api.FindCondition(p.Status.Conditions, api.PodReady)
	at := c.LastTransitionTime.Add(time.Duration(minReady) * time.Second)
	if now.Before(at) {
		return false, at.Sub(now)
	}
	return true, 0
}

// newWorkloadPod stamps a pod out of tpl, controlled by owner.
func newWorkloadPod(tpl *api.PodTemplateSpec, ns, kind, ownerName, ownerUID, revision string) *api.Pod {
	labels := copyMap(tpl.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ControllerRevisionHashLabel] = revision
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{
			Namespace:   ns,
			Labels:      labels,
			Annotations: copyMap(tpl.Annotations),
			OwnerReferences: []api.OwnerReference{{
				APIVersion: api.Version, Kind: kind, Name: ownerName, UID: ownerUID, Controller: true,
			}},
		},
		Spec: tpl.Spec,
	}
	pod.Spec.NodeName = ""
	pod.Spec.Containers = append([]api.Container(nil), tpl.Spec.Containers...)
	pod.Spec.Volumes = append([]api.Volume(nil), tpl.Spec.Volumes...)
	return pod
}
