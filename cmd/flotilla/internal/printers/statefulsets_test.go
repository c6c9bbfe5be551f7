package printers

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
)

func TestStatefulSetDaemonSetClaimRows(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	created := api.Time{Time: now.Add(-90 * time.Second)}
	sts := &api.StatefulSet{TypeMeta: api.TypeMeta{Kind: "StatefulSet"}, ObjectMeta: api.ObjectMeta{Name: "web", CreationTimestamp: created},
		Spec:   api.StatefulSetSpec{Replicas: api.Int32(2), Template: api.PodTemplateSpec{Spec: api.PodSpec{Containers: []api.Container{{Name: "web", Image: "hello:v1"}}}}},
		Status: api.StatefulSetStatus{ReadyReplicas: 1}}
	ds := &api.DaemonSet{TypeMeta: api.TypeMeta{Kind: "DaemonSet"}, ObjectMeta: api.ObjectMeta{Name: "logship", CreationTimestamp: created},
		Spec:   api.DaemonSetSpec{Template: api.PodTemplateSpec{Spec: api.PodSpec{NodeSelector: map[string]string{"role": "edge"}}}},
		Status: api.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 3, NumberAvailable: 2}}
	pvc := &api.PersistentVolumeClaim{TypeMeta: api.TypeMeta{Kind: "PersistentVolumeClaim"}, ObjectMeta: api.ObjectMeta{Name: "data-web-0", CreationTimestamp: created},
		Spec:   api.PersistentVolumeClaimSpec{AccessModes: []string{api.ReadWriteOnce}, Resources: api.ResourceRequirements{Requests: api.ResourceList{"storage": api.MustParseQuantity("1Gi")}}},
		Status: api.PersistentVolumeClaimStatus{Phase: api.ClaimBound, NodeName: "pi-1"}}
	tests := []struct {
		obj  api.Object
		wide bool
		want string
	}{
		{sts, false, "NAME   READY   AGE\nweb    1/2     90s\n"},
		{sts, true, "NAME   READY   AGE   CONTAINERS   IMAGES\nweb    1/2     90s   web          hello:v1\n"},
		{ds, false, "NAME      DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR   AGE\nlogship   3         3         2       3            2           role=edge       90s\n"},
		{pvc, false, "NAME         STATUS   NODE   CAPACITY   ACCESS MODES   AGE\ndata-web-0   Bound    pi-1   1Gi        RWO            90s\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		o := Options{Wide: tt.wide, Now: now}
		if err := BuildTable(tt.obj.GetType().Kind, []api.Object{tt.obj}, o).Write(&buf); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("%s wide=%v:\n%s\nwant:\n%s", tt.obj.GetType().Kind, tt.wide, buf.String(), tt.want)
		}
	}
	for _, obj := range []api.Object{sts, ds, pvc} {
		var buf bytes.Buffer
		if err := Describe(&buf, obj, nil, nil, now); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "Name:") || !strings.Contains(buf.String(), obj.GetMeta().Name) {
			t.Errorf("describe %s:\n%s", obj.GetType().Kind, buf.String())
		}
	}
}
