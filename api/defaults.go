package api

// Defaults fills the fields a user may leave out, the way Kubernetes does.
func Defaults(obj Object) {
	ki, err := KindOf(obj)
	if err != nil {
		return
	}
	t := obj.GetType()
	t.APIVersion, t.Kind = Version, ki.Kind
	m := obj.GetMeta()
	if ki.Namespaced && m.Namespace == "" {
		m.Namespace = DefaultNamespace
	}
	switch o := obj.(type) {
	case *Pod:
		defaultPodSpec(&o.Spec)
		defaultUnreachableToleration(o)
		if o.Status.Phase == "" {
			o.Status.Phase = PodPending
		}
	case *Deployment:
		if o.Spec.Replicas == nil {
			o.Spec.Replicas = Int32(1)
		}
		if o.Spec.RevisionHistoryLimit == nil {
			o.Spec.RevisionHistoryLimit = Int32(10)
		}
		defaultSelector(&o.Spec.Selector, o.Spec.Template.Labels)
		defaultPodSpec(&o.Spec.Template.Spec)
		defaultRollout(&o.Spec)
	case *ReplicaSet:
		if o.Spec.Replicas == nil {
			o.Spec.Replicas = Int32(1)
		}
		defaultSelector(&o.Spec.Selector, o.Spec.Template.Labels)
		defaultPodSpec(&o.Spec.Template.Spec)
	case *DaemonSet:
		defaultDaemonSet(o)
	case *StatefulSet:
		defaultStatefulSet(o)
	case *PersistentVolumeClaim:
		defaultPVC(o)
	case *Service:
		defaultService(o)
	case *EndpointSlice:
		defaultEndpointSlice(o)
	case *NetworkPolicy:
		defaultNetworkPolicy(o)
	case *Job:
		defaultJob(o)
	case *CronJob:
		defaultCronJob(o)
	case *Secret:
		if o.Type == "" {
			o.Type = "Opaque"
		}
		// stringData is write-only: fold it into data.
		for k, v := range o.StringData {
			if o.Data == nil {
				o.Data = map[string][]byte{}
			}
			o.Data[k] = []byte(v)
		}
		o.StringData = nil
	case *Namespace:
		if o.Status.Phase == "" {
			o.Status.Phase = "Active"
		}
	}
}

// defaultSelector selects the template's labels when no selector is given.
func defaultSelector(sel **LabelSelector, labels map[string]string) {
	if *sel == nil && len(labels) > 0 {
		m := make(map[string]string, len(labels))
		for k, v := range labels {
			m[k] = v
		}
		*sel = &LabelSelector{MatchLabels: m}
	}
}

func defaultPodSpec(s *PodSpec) {
	if s.RestartPolicy == "" {
		s.RestartPolicy = RestartAlways
	}
	if s.TerminationGracePeriodSeconds == nil {
		s.TerminationGracePeriodSeconds = Int64(30)
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.Runtime == "" {
			c.Runtime = DefaultRuntime(c.Image)
		}
		for j := range c.Ports {
			if c.Ports[j].Protocol == "" {
				c.Ports[j].Protocol = "TCP"
			}
		}
		if c.Runtime != RuntimeWasm {
			continue
		}
		if c.Wasm == nil {
			c.Wasm = &WasmOptions{}
		}
		if c.Wasm.Mode == "" {
			c.Wasm.Mode = WasmCommand
			if len(c.Ports) > 0 {
				c.Wasm.Mode = WasmHTTP
			}
		}
		if c.Wasm.Mode == WasmHTTP && c.Wasm.Instances == 0 {
			c.Wasm.Instances = 2
		}
		if c.Wasm.Mode != WasmCommand && c.Wasm.RequestTimeoutSeconds == nil {
			c.Wasm.RequestTimeoutSeconds = Int32(30)
		}
	}
}

// defaultUnreachableToleration gives a pod Kubernetes' default: it stays
// on an unreachable node for 300s before eviction; a DaemonSet's pod
// belongs to its node and stays as long as the node exists.
func defaultUnreachableToleration(p *Pod) {
	for _, t := range p.Spec.Tolerations {
		if (t.Key == TaintNodeUnreachable || (t.Key == "" && t.Operator == "Exists")) && (t.Effect == "" || t.Effect == TaintNoExecute) {
			return
		}
	}
	tol := Toleration{Key: TaintNodeUnreachable, Operator: "Exists", Effect: TaintNoExecute, TolerationSeconds: Int64(DefaultUnreachableToleration)}
	if ref := ControllerOf(&p.ObjectMeta); ref != nil && ref.Kind == "DaemonSet" {
		tol.TolerationSeconds = nil
	}
	p.Spec.Tolerations = append(p.Spec.Tolerations, tol)
}
