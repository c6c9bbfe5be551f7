package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flotilla-edge/flotilla/api"
)

// admit runs the checks that need the store before an object is written:
// its namespace exists, and the ConfigMap keys its pods read exist.
func (s *Server) admit(ctx context.Context, obj api.Object) error {
	if err := s.checkNamespace(ctx, obj); err != nil {
		return err
	}
	return s.checkConfigMapKeys(ctx, obj)
}

// podSpecAt is a pod spec found inside an object and its field path.
type podSpecAt struct {
	path string
	spec *api.PodSpec
}

// podSpecs finds the pod specs of obj: a Pod's spec, or the pod template
// of any workload (spec.template.spec; spec.jobTemplate.spec.template.spec
// for CronJobs). Kinds without a typed case are read through their JSON,
// so workload kinds added later are covered without a case here.
func podSpecs(obj api.Object) []podSpecAt {
	switch o := obj.(type) {
	case *api.Pod:
		return []podSpecAt{{"spec", &o.Spec}}
	case *api.Deployment:
		return []podSpecAt{{"spec.template.spec", &o.Spec.Template.Spec}}
	case *api.ReplicaSet:
		return []podSpecAt{{"spec.template.spec", &o.Spec.Template.Spec}}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil
	}
	var generic struct {
		Spec struct {
			Template *struct {
				Spec *api.PodSpec `json:"spec"`
			} `json:"template"`
			JobTemplate *struct {
				Spec struct {
					Template *struct {
						Spec *api.PodSpec `json:"spec"`
					} `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		} `json:"spec"`
	}
	if json.Unmarshal(b, &generic) != nil {
		return nil
	}
	var out []podSpecAt
	if t := generic.Spec.Template; t != nil && t.Spec != nil {
		out = append(out, podSpecAt{"spec.template.spec", t.Spec})
	}
	if jt := generic.Spec.JobTemplate; jt != nil && jt.Spec.Template != nil && jt.Spec.Template.Spec != nil {
		out = append(out, podSpecAt{"spec.jobTemplate.spec.template.spec", jt.Spec.Template.Spec})
	}
	return out
}

// checkConfigMapKeys rejects a pod (template) whose env reads a key that
// an existing ConfigMap lacks, unless the reference is optional. A
// ConfigMap that does not exist yet is allowed: it may be created later,
// and the agent waits for it (CreateContainerConfigError).
func (s *Server) checkConfigMapKeys(ctx context.Context, obj api.Object) error {
	specs := podSpecs(obj)
	if len(specs) == 0 {
		return nil
	}
	ns := obj.GetMeta().Namespace
	if ns == "" {
		ns = api.DefaultNamespace
	}
	cms := map[string]*api.ConfigMap{} // nil value: does not exist
	lookup := func(name string) (*api.ConfigMap, error) {
		if cm, ok := cms[name]; ok {
			return cm, nil
		}
		got, err := s.store.Get(ctx, "ConfigMap", ns, name)
		if errors.Is(err, api.ErrNotFound) {
			cms[name] = nil
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("admission: read configmap %s/%s: %w", ns, name, err)
		}
		cm, _ := got.(*api.ConfigMap)
		cms[name] = cm
		return cm, nil
	}
	var fe api.FieldErrors
	for _, ps := range specs {
		for i, c := range ps.spec.Containers {
			for j, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.ConfigMapKeyRef
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				cm, err := lookup(ref.Name)
				if err != nil {
					return err
				}
				if cm == nil || hasKey(cm, ref.Key) {
					continue
				}
				fe = append(fe, api.FieldError{
					Field:  fmt.Sprintf("%s.containers[%d].env[%d].valueFrom.configMapKeyRef.key", ps.path, i, j),
					Detail: fmt.Sprintf("key %q not found in ConfigMap %q", ref.Key, ref.Name),
				})
			}
		}
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

func hasKey(cm *api.ConfigMap, key string) bool {
	if _, ok := cm.Data[key]; ok {
		return true
	}
	_, ok := cm.BinaryData[key]
	return ok
}
