package api

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	dnsLabelRe     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dnsSubdomainRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelNameRe    = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
	envNameRe      = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	moduleRefRe    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$`)
)

// ValidDNSLabel checks an RFC 1123 label (namespaces, container names).
func ValidDNSLabel(s string) error {
	if len(s) == 0 || len(s) > 63 || !dnsLabelRe.MatchString(s) {
		return fmt.Errorf("%q is not a valid RFC 1123 label: lower case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", s)
	}
	return nil
}

// ValidDNSSubdomain checks an RFC 1123 subdomain (most object names).
func ValidDNSSubdomain(s string) error {
	if len(s) == 0 || len(s) > 253 || !dnsSubdomainRe.MatchString(s) {
		return fmt.Errorf("%q is not a valid RFC 1123 subdomain: lower case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters", s)
	}
	return nil
}

func validLabelKeyErr(k string) error {
	name := k
	if i := strings.LastIndex(k, "/"); i >= 0 {
		if err := ValidDNSSubdomain(k[:i]); err != nil {
			return fmt.Errorf("label key %q: prefix %w", k, err)
		}
		name = k[i+1:]
	}
	if name == "" || len(name) > 63 || !labelNameRe.MatchString(name) {
		return fmt.Errorf("label key %q: name must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit", k)
	}
	return nil
}

func validLabelValueErr(v string) error {
	if len(v) > 63 || !labelNameRe.MatchString(v) {
		return fmt.Errorf("label value %q: must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit", v)
	}
	return nil
}

// ValidLabels checks label keys and values.
func ValidLabels(m map[string]string) error {
	for k, v := range m {
		if err := validLabelKeyErr(k); err != nil {
			return err
		}
		if err := validLabelValueErr(v); err != nil {
			return err
		}
	}
	return nil
}

// ValidModuleRef checks a wasm module reference NAME:TAG or NAME@sha256:HEX.
func ValidModuleRef(s string) error {
	if !moduleRefRe.MatchString(s) {
		return fmt.Errorf("%q is not a module reference: want NAME:TAG or NAME@sha256:<64 hex digits>", s)
	}
	return nil
}

// Validate checks obj and returns FieldErrors naming every bad field.
func Validate(obj Object) error {
	var fe FieldErrors
	ki, err := KindOf(obj)
	if err != nil {
		return err
	}
	validateMeta(&fe, obj.GetMeta(), ki)
	switch o := obj.(type) {
	case *Pod:
		validatePodSpec(&fe, "spec", &o.Spec)
	case *Deployment:
		validateReplicated(&fe, o.Spec.Replicas, o.Spec.Selector, &o.Spec.Template)
		if o.Spec.RevisionHistoryLimit != nil && *o.Spec.RevisionHistoryLimit < 0 {
			fe.add("spec.revisionHistoryLimit", "must be >= 0, got %d", *o.Spec.RevisionHistoryLimit)
		}
		validateRollout(&fe, &o.Spec)
	case *ReplicaSet:
		validateReplicated(&fe, o.Spec.Replicas, o.Spec.Selector, &o.Spec.Template)
	case *Job:
		validateJob(&fe, o)
	case *CronJob:
		validateCronJob(&fe, o)
	case *DaemonSet:
		validateDaemonSet(&fe, o)
	case *StatefulSet:
		validateStatefulSet(&fe, o)
	case *PersistentVolumeClaim:
		validatePVC(&fe, o)
	case *Service:
		validateService(&fe, o)
	case *EndpointSlice:
		validateEndpointSlice(&fe, o)
	case *NetworkPolicy:
		validateNetworkPolicy(&fe, o)
	case *ConfigMap:
		for k := range o.Data {
			validateDataKey(&fe, "data", k)
		}
		for k := range o.BinaryData {
			validateDataKey(&fe, "binaryData", k)
		}
	case *Secret:
		for k := range o.Data {
			validateDataKey(&fe, "data", k)
		}
		for k := range o.StringData {
			validateDataKey(&fe, "stringData", k)
		}
	case *Node:
		for i, t := range o.Spec.Taints {
			if err := validLabelKeyErr(t.Key); err != nil {
				fe.add(fmt.Sprintf("spec.taints[%d].key", i), "%v", err)
			}
			switch t.Effect {
			case TaintNoSchedule, TaintPreferNoSchedule, TaintNoExecute:
			default:
				fe.add(fmt.Sprintf("spec.taints[%d].effect", i), "%q is not NoSchedule, PreferNoSchedule or NoExecute", t.Effect)
			}
		}
		for i, a := range o.Status.Addresses {
			if a.Address == "" {
				fe.add(fmt.Sprintf("status.addresses[%d].address", i), "must not be empty")
			}
		}
	}
	return fe.orNil()
}

func validateMeta(fe *FieldErrors, m *ObjectMeta, ki *KindInfo) {
	check := ValidDNSSubdomain
	if ki.Kind == "Namespace" || ki.Kind == "Node" {
		// Node names become NATS subject tokens, so they may not hold dots.
		check = ValidDNSLabel
	}
	if m.Name == "" && m.GenerateName == "" {
		fe.add("metadata.name", "is required")
	} else if m.Name != "" {
		if err := check(m.Name); err != nil {
			fe.add("metadata.name", "%v", err)
		}
	}
	if ki.Namespaced {
		if err := ValidDNSLabel(m.Namespace); err != nil {
			fe.add("metadata.namespace", "%v", err)
		}
	} else if m.Namespace != "" {
		fe.add("metadata.namespace", "%s is not namespaced; leave it empty", ki.Kind)
	}
	if err := ValidLabels(m.Labels); err != nil {
		fe.add("metadata.labels", "%v", err)
	}
	for k := range m.Annotations {
		if err := validLabelKeyErr(k); err != nil {
			fe.add("metadata.annotations", "%v", err)
		}
	}
}

func validateReplicated(fe *FieldErrors, replicas *int32, sel *LabelSelector, tpl *PodTemplateSpec) {
	if replicas != nil && *replicas < 0 {
		fe.add("spec.replicas", "must be >= 0, got %d", *replicas)
	}
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		fe.add("spec.selector", "is required and must not be empty")
	} else if s, err := sel.AsSelector(); err != nil {
		fe.add("spec.selector", "%v", err)
	} else if !s.Matches(tpl.Labels) {
		fe.add("spec.selector", "selector %q does not match template labels %q", s.String(), FormatLabels(tpl.Labels))
	}
	if err := ValidLabels(tpl.Labels); err != nil {
		fe.add("spec.template.metadata.labels", "%v", err)
	}
	if sel != nil {
		if err := ValidLabels(sel.MatchLabels); err != nil {
			fe.add("spec.selector.matchLabels", "%v", err)
		}
	}
	validatePodSpec(fe, "spec.template.spec", &tpl.Spec)
}

func validatePodSpec(fe *FieldErrors, path string, s *PodSpec) {
	if len(s.Containers) == 0 {
		fe.add(path+".containers", "at least one container is required")
	}
	switch s.RestartPolicy {
	case "", RestartAlways, RestartOnFailure, RestartNever:
	default:
		fe.add(path+".restartPolicy", "%q is not Always, OnFailure or Never", s.RestartPolicy)
	}
	if err := ValidLabels(s.NodeSelector); err != nil {
		fe.add(path+".nodeSelector", "%v", err)
	}
	if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds <= 0 {
		fe.add(path+".activeDeadlineSeconds", "must be > 0")
	}
	if s.TerminationGracePeriodSeconds != nil && *s.TerminationGracePeriodSeconds < 0 {
		fe.add(path+".terminationGracePeriodSeconds", "must be >= 0")
	}
	vols := map[string]bool{}
	for i, v := range s.Volumes {
		p := fmt.Sprintf("%s.volumes[%d]", path, i)
		if err := ValidDNSLabel(v.Name); err != nil {
			fe.add(p+".name", "%v", err)
		} else if vols[v.Name] {
			fe.add(p+".name", "duplicate volume name %q", v.Name)
		}
		vols[v.Name] = true
		n := 0
		if v.EmptyDir != nil {
			n++
		}
		if v.HostPath != nil {
			n++
			if !strings.HasPrefix(v.HostPath.Path, "/") {
				fe.add(p+".hostPath.path", "must be an absolute path")
			}
			switch v.HostPath.Type {
			case "", "Directory", "DirectoryOrCreate":
			default:
				fe.add(p+".hostPath.type", "%q is not Directory or DirectoryOrCreate", v.HostPath.Type)
			}
		}
		if v.ConfigMap != nil {
			n++
			if err := ValidDNSSubdomain(v.ConfigMap.Name); err != nil {
				fe.add(p+".configMap.name", "%v", err)
			}
			validateItems(fe, p+".configMap.items", v.ConfigMap.Items)
		}
		if v.Secret != nil {
			n++
			if err := ValidDNSSubdomain(v.Secret.SecretName); err != nil {
				fe.add(p+".secret.secretName", "%v", err)
			}
			validateItems(fe, p+".secret.items", v.Secret.Items)
		}
		if v.PersistentVolumeClaim != nil {
			n++
			if err := ValidDNSSubdomain(v.PersistentVolumeClaim.ClaimName); err != nil {
				fe.add(p+".persistentVolumeClaim.claimName", "%v", err)
			}
		}
		if n != 1 {
			fe.add(p, "exactly one volume source (emptyDir, hostPath, configMap, secret, persistentVolumeClaim) is required, got %d", n)
		}
	}
	for i, t := range s.Tolerations {
		p := fmt.Sprintf("%s.tolerations[%d]", path, i)
		switch t.Operator {
		case "", "Equal":
			if t.Key == "" {
				fe.add(p+".key", "is required with operator Equal")
			}
		case "Exists":
			if t.Value != "" {
				fe.add(p+".value", "must be empty with operator Exists")
			}
		default:
			fe.add(p+".operator", "%q is not Equal or Exists", t.Operator)
		}
		switch t.Effect {
		case "", TaintNoSchedule, TaintPreferNoSchedule, TaintNoExecute:
		default:
			fe.add(p+".effect", "%q is not NoSchedule, PreferNoSchedule or NoExecute", t.Effect)
		}
	}
	if s.Hostname != "" {
		if err := ValidDNSLabel(s.Hostname); err != nil {
			fe.add(path+".hostname", "%v", err)
		}
	}
	names := map[string]bool{}
	for i, c := range s.Containers {
		p := fmt.Sprintf("%s.containers[%d]", path, i)
		if err := ValidDNSLabel(c.Name); err != nil {
			fe.add(p+".name", "%v", err)
		} else if names[c.Name] {
			fe.add(p+".name", "duplicate container name %q", c.Name)
		}
		names[c.Name] = true
		switch c.Runtime {
		case "", RuntimeWasm:
			if err := ValidModuleRef(c.Image); err != nil {
				fe.add(p+".image", "%v", err)
			}
			if len(c.Command) > 0 {
				fe.add(p+".command", "not supported for wasm modules; use args")
			}
			if c.WorkingDir != "" {
				fe.add(p+".workingDir", "not supported for wasm modules")
			}
		case RuntimeOCI:
			if err := ValidImageRef(c.Image); err != nil {
				fe.add(p+".image", "%v", err)
			}
			if c.WorkingDir != "" && !strings.HasPrefix(c.WorkingDir, "/") {
				fe.add(p+".workingDir", "must be an absolute path")
			}
		default:
			fe.add(p+".runtime", "%q is not wasm or oci", c.Runtime)
		}
		for j, e := range c.Env {
			ep := fmt.Sprintf("%s.env[%d]", p, j)
			if !envNameRe.MatchString(e.Name) {
				fe.add(ep+".name", "%q is not a valid environment variable name", e.Name)
			}
			if vf := e.ValueFrom; vf != nil {
				n := 0
				for _, ks := range []struct {
					field string
					sel   *KeySelector
				}{{"configMapKeyRef", vf.ConfigMapKeyRef}, {"secretKeyRef", vf.SecretKeyRef}} {
					if ks.sel == nil {
						continue
					}
					n++
					if ks.sel.Name == "" {
						fe.add(ep+".valueFrom."+ks.field+".name", "is required")
					}
					if ks.sel.Key == "" {
						fe.add(ep+".valueFrom."+ks.field+".key", "is required")
					}
				}
				if vf.FieldRef != nil {
					n++
					switch vf.FieldRef.FieldPath {
					case "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "status.hostIP", "status.podIP":
					default:
						fe.add(ep+".valueFrom.fieldRef.fieldPath", "%q is not supported", vf.FieldRef.FieldPath)
					}
				}
				if n != 1 {
					fe.add(ep+".valueFrom", "exactly one of configMapKeyRef, secretKeyRef, fieldRef is required")
				}
				if e.Value != "" {
					fe.add(ep+".value", "may not be set together with valueFrom")
				}
			}
		}
		for j, ef := range c.EnvFrom {
			if (ef.ConfigMapRef == nil) == (ef.SecretRef == nil) {
				fe.add(fmt.Sprintf("%s.envFrom[%d]", p, j), "exactly one of configMapRef, secretRef is required")
			}
		}
		for j, vm := range c.VolumeMounts {
			mp := fmt.Sprintf("%s.volumeMounts[%d]", p, j)
			if !vols[vm.Name] {
				fe.add(mp+".name", "volume %q is not defined in the pod's volumes", vm.Name)
			}
			if !strings.HasPrefix(vm.MountPath, "/") {
				fe.add(mp+".mountPath", "must be an absolute path")
			}
			if strings.Contains(vm.SubPath, "..") || strings.HasPrefix(vm.SubPath, "/") {
				fe.add(mp+".subPath", "must be a relative path without '..'")
			}
		}
		if pr := c.ReadinessProbe; pr != nil {
			if pr.HTTPGet == nil {
				fe.add(p+".readinessProbe", "an action (httpGet) is required")
			} else if pr.HTTPGet.Path != "" && !strings.HasPrefix(pr.HTTPGet.Path, "/") {
				fe.add(p+".readinessProbe.httpGet.path", "must start with /")
			}
			if pr.PeriodSeconds < 0 || pr.TimeoutSeconds < 0 || pr.FailureThreshold < 0 || pr.SuccessThreshold < 0 || pr.InitialDelaySeconds < 0 {
				fe.add(p+".readinessProbe", "durations and thresholds must be >= 0")
			}
		}
		ports := map[int32]bool{}
		for j, port := range c.Ports {
			pp := fmt.Sprintf("%s.ports[%d]", p, j)
			if port.ContainerPort < 1 || port.ContainerPort > 65535 {
				fe.add(pp+".containerPort", "%d is not in 1-65535", port.ContainerPort)
			} else if ports[port.ContainerPort] {
				fe.add(pp+".containerPort", "duplicate port %d", port.ContainerPort)
			}
			ports[port.ContainerPort] = true
			switch port.Protocol {
			case "", "TCP", "UDP":
			default:
				fe.add(pp+".protocol", "%q is not TCP or UDP", port.Protocol)
			}
			if port.Name != "" && (len(port.Name) > 15 || !dnsLabelRe.MatchString(port.Name)) {
				fe.add(pp+".name", "%q must be an RFC 1123 label of at most 15 characters", port.Name)
			}
		}
		for _, kind := range []string{"requests", "limits"} {
			rl := c.Resources.Requests
			if kind == "limits" {
				rl = c.Resources.Limits
			}
			for name := range rl {
				if name != "cpu" && name != "memory" {
					fe.add(fmt.Sprintf("%s.resources.%s.%s", p, kind, name), "unknown resource; want cpu or memory")
				}
			}
		}
		for _, name := range []string{"cpu", "memory"} {
			req, okR := c.Resources.Requests[name]
			lim, okL := c.Resources.Limits[name]
			if okR && okL && req.MilliValue() > lim.MilliValue() {
				fe.add(fmt.Sprintf("%s.resources.requests.%s", p, name), "%s is more than its limit %s", req, lim)
			}
		}
		if c.Wasm != nil {
			switch c.Wasm.Mode {
			case "", WasmCommand, WasmHTTP, WasmCGI:
			default:
				fe.add(p+".wasm.mode", "%q is not command, http or cgi", c.Wasm.Mode)
			}
			if c.Wasm.Instances < 0 || c.Wasm.Instances > 256 {
				fe.add(p+".wasm.instances", "must be in 0-256, got %d", c.Wasm.Instances)
			}
			if c.Wasm.RequestTimeoutSeconds != nil && *c.Wasm.RequestTimeoutSeconds < 0 {
				fe.add(p+".wasm.requestTimeoutSeconds", "must be >= 0")
			}
			if (c.Wasm.Mode == WasmHTTP || c.Wasm.Mode == WasmCGI) && len(c.Ports) == 0 {
				fe.add(p+".ports", "an %s module needs a port", c.Wasm.Mode)
			}
		}
	}
}

var dataKeyRe = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

func validateDataKey(fe *FieldErrors, field, k string) {
	if len(k) > 253 || !dataKeyRe.MatchString(k) || k == "." || k == ".." {
		fe.add(field+"["+k+"]", "key %q must consist of letters, digits, '-', '_' or '.'", k)
	}
}

func validateItems(fe *FieldErrors, path string, items []KeyToPath) {
	for i, it := range items {
		if it.Key == "" {
			fe.add(fmt.Sprintf("%s[%d].key", path, i), "is required")
		}
		if it.Path == "" || strings.HasPrefix(it.Path, "/") || strings.Contains(it.Path, "..") {
			fe.add(fmt.Sprintf("%s[%d].path", path, i), "must be a relative path without '..'")
		}
	}
}
