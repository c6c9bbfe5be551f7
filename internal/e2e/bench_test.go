package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/internal/testfleet"
)

// BenchmarkCreateToRunning measures, on one node, the time from the create
// request of a pod whose module is already cached to the watch event that
// shows it Running and Ready. It reports p50 and p99.
func BenchmarkCreateToRunning(b *testing.B) {
	f := testfleet.Start(b, testfleet.AgentSpec{Name: "pi-1"})
	ctx := context.Background()
	f.Push(b, "examples/hello", "hello:v1")
	events, err := f.Client.Watch(ctx, "pods", "default", "bench=true")
	if err != nil {
		b.Fatal(err)
	}
	for ev := range events {
		if ev.Type == "SYNCED" {
			break
		}
	}
	run := func(i int) time.Duration {
		name := fmt.Sprintf("p%d", i)
		pod := &api.Pod{
			ObjectMeta: api.ObjectMeta{Name: name, Labels: map[string]string{"bench": "true"}},
			Spec: api.PodSpec{Containers: []api.Container{{
				Name: "hello", Image: "hello:v1",
				Ports: []api.ContainerPort{{ContainerPort: 8080}},
				Wasm:  &api.WasmOptions{Instances: 1},
			}}},
		}
		start := time.Now()
		if _, err := f.Client.Create(ctx, pod); err != nil {
			b.Fatal(err)
		}
		timeout := time.After(30 * time.Second)
		for {
			select {
			case ev := <-events:
				p, ok := ev.Object.(*api.Pod)
				if ok && p.Name == name && p.Status.Phase == api.PodRunning && p.IsReady() {
					d := time.Since(start)
					if _, err := f.Client.Delete(ctx, "pod", "default", name); err != nil {
						b.Fatal(err)
					}
					return d
				}
			case <-timeout:
				b.Fatalf("pod %s not Running after 30s", name)
			}
		}
	}
	run(-1) // compile and cache the module outside the measurement
	b.ResetTimer()
	lat := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		lat = append(lat, run(i))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
