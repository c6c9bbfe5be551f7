package scheduler

import (
	"fmt"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
)

// benchNodes builds ready wasm nodes with a mix of zones, architectures
// and sizes, a few cordoned or oci-only so every filter does some work.
func benchNodes(n int) []*NodeInfo {
	zones := []string{"a", "b", "c", "d"}
	archs := []string{"arm64", "amd64"}
	sizes := []struct{ cpu, mem string }{{"1", "512Mi"}, {"2", "1Gi"}, {"4", "4Gi"}, {"8", "8Gi"}}
	out := make([]*NodeInfo, n)
	for i := range out {
		sz := sizes[i%len(sizes)]
		mods := []func(*api.Node){
			labels("zone", zones[i%len(zones)], "arch", archs[i%len(archs)], "rack", fmt.Sprint(i%10)),
			capacity(sz.cpu, sz.mem),
		}
		switch {
		case i%50 == 7:
			mods = append(mods, cordoned)
		case i%50 == 13:
			mods = append(mods, runtimes(api.RuntimeOCI))
		case i%3 == 0:
			mods = append(mods, allocatableRes(sz.cpu, "256Mi"))
		}
		out[i] = NewNodeInfo(node(fmt.Sprintf("node-%04d", i), mods...))
	}
	return out
}

// benchPod is replica i of one of a few deployments; some pin a zone.
func benchPod(i int) *api.Pod {
	mods := []func(*api.Pod){
		ownedBy(fmt.Sprint("rs-", i%8)),
		requests("50m", "16Mi"),
	}
	if i%4 == 0 {
		mods = append(mods, nodeSelector("zone", "b"))
	}
	return pod(fmt.Sprint("p-", i), mods...)
}

func BenchmarkSchedule1000Nodes(b *testing.B) {
	const resetEvery = 2000 // well before any node fills up
	nodes := benchNodes(1000)
	pods := make([]*api.Pod, 64)
	for i := range pods {
		pods[i] = benchPod(i)
	}
	s := New()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%resetEvery == resetEvery-1 {
			b.StopTimer()
			for j, n := range nodes {
				nodes[j] = NewNodeInfo(n.Node)
			}
			b.StartTimer()
		}
		p := pods[i%len(pods)]
		ni, err := s.Schedule(p, nodes)
		if err != nil {
			b.Fatal(err)
		}
		ni.AddPod(p)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bindings/s")
}
