package api

import (
	"fmt"
	"reflect"
	"strings"
)

// KindInfo describes a resource kind: its names on the command line and
// whether its objects live in a namespace.
type KindInfo struct {
	Kind       string
	Plural     string
	Short      []string
	Namespaced bool
	New        func() Object
}

// Kinds lists every resource kind the API serves.
var Kinds = []KindInfo{
	{Kind: "Namespace", Plural: "namespaces", Short: []string{"ns"}, New: func() Object { return &Namespace{} }},
	{Kind: "Node", Plural: "nodes", Short: []string{"no"}, New: func() Object { return &Node{} }},
	{Kind: "Pod", Plural: "pods", Short: []string{"po"}, Namespaced: true, New: func() Object { return &Pod{} }},
	{Kind: "Deployment", Plural: "deployments", Short: []string{"deploy"}, Namespaced: true, New: func() Object { return &Deployment{} }},
	{Kind: "ReplicaSet", Plural: "replicasets", Short: []string{"rs"}, Namespaced: true, New: func() Object { return &ReplicaSet{} }},
	{Kind: "Event", Plural: "events", Short: []string{"ev"}, Namespaced: true, New: func() Object { return &Event{} }},
	{Kind: "ConfigMap", Plural: "configmaps", Short: []string{"cm"}, Namespaced: true, New: func() Object { return &ConfigMap{} }},
	{Kind: "Secret", Plural: "secrets", Namespaced: true, New: func() Object { return &Secret{} }},
	{Kind: "Job", Plural: "jobs", Namespaced: true, New: func() Object { return &Job{} }},
	{Kind: "CronJob", Plural: "cronjobs", Short: []string{"cj"}, Namespaced: true, New: func() Object { return &CronJob{} }},
	{Kind: "DaemonSet", Plural: "daemonsets", Short: []string{"ds"}, Namespaced: true, New: func() Object { return &DaemonSet{} }},
	{Kind: "StatefulSet", Plural: "statefulsets", Short: []string{"sts"}, Namespaced: true, New: func() Object { return &StatefulSet{} }},
	{Kind: "ControllerRevision", Plural: "controllerrevisions", Namespaced: true, New: func() Object { return &ControllerRevision{} }},
	{Kind: "Service", Plural: "services", Short: []string{"svc"}, Namespaced: true, New: func() Object { return &Service{} }},
	{Kind: "EndpointSlice", Plural: "endpointslices", Short: []string{"ep", "endpoints"}, Namespaced: true, New: func() Object { return &EndpointSlice{} }},
	{Kind: "NetworkPolicy", Plural: "networkpolicies", Short: []string{"netpol"}, Namespaced: true, New: func() Object { return &NetworkPolicy{} }},
	{Kind: "PersistentVolumeClaim", Plural: "persistentvolumeclaims", Short: []string{"pvc"}, Namespaced: true, New: func() Object { return &PersistentVolumeClaim{} }},
}

// LookupKind finds a kind by its name, plural, singular or short name, in
// any case ("Deployment", "deployments", "deploy").
func LookupKind(name string) (*KindInfo, error) {
	n := strings.ToLower(name)
	for i := range Kinds {
		k := &Kinds[i]
		if n == strings.ToLower(k.Kind) || n == k.Plural {
			return k, nil
		}
		for _, s := range k.Short {
			if n == s {
				return k, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKind, name)
}

// KindOf returns the registered kind info for obj.
func KindOf(obj Object) (*KindInfo, error) {
	if ki, ok := kindByType[reflect.TypeOf(obj)]; ok {
		return ki, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnknownKind, obj)
}

var kindByType = func() map[reflect.Type]*KindInfo {
	m := map[reflect.Type]*KindInfo{}
	for i := range Kinds {
		m[reflect.TypeOf(Kinds[i].New())] = &Kinds[i]
	}
	return m
}()

// DefaultNamespace is where namespaced objects go when none is named.
const DefaultNamespace = "default"
