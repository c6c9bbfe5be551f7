package scheduler

import (
	"strings"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
)

func platformNode(os, arch, variant string) func(*api.Node) {
	return func(n *api.Node) {
		n.Status.Runtimes = []string{api.RuntimeWasm, api.RuntimeOCI}
		n.Status.NodeInfo = api.NodeSystemInfo{OperatingSystem: os, Architecture: arch, Variant: variant}
	}
}

func ociPod(image string) *api.Pod {
	return &api.Pod{ObjectMeta: api.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Runtime: api.RuntimeOCI, Image: image}}}}
}

func TestImagePlatformKeepsContainersOnNodesTheirImageWasBuiltFor(t *testing.T) {
	known := map[string][]string{
		"multi:v1":  {"linux/amd64", "linux/arm64"},
		"arm64:v1":  {"linux/arm64"},
		"armv7:v1":  {"linux/arm/v7"},
		"armv6:v1":  {"linux/arm/v6"},
		"amd64:v1":  {"linux/amd64"},
		"windows:1": {"windows/amd64"},
	}
	f := ImagePlatform{Platforms: func(image string) []string { return known[image] }}
	tests := []struct {
		name  string
		image string
		node  func(*api.Node)
		fits  bool
	}{
		{"a multi-platform image fits an amd64 node", "multi:v1", platformNode("linux", "amd64", ""), true},
		{"a multi-platform image fits an arm64 node", "multi:v1", platformNode("linux", "arm64", ""), true},
		{"an arm64-only image does not fit an amd64 node", "arm64:v1", platformNode("linux", "amd64", ""), false},
		{"an armv7 image fits an armv7 node", "armv7:v1", platformNode("linux", "arm", "v7"), true},
		{"an armv6 image fits an armv7 node", "armv6:v1", platformNode("linux", "arm", "v7"), true},
		{"an armv7 image does not fit an armv6 node", "armv7:v1", platformNode("linux", "arm", "v6"), false},
		{"a windows image does not fit a linux node", "windows:1", platformNode("linux", "amd64", ""), false},
		{"an unknown image passes so the agent reports the pull error", "unknown:v1", platformNode("linux", "amd64", ""), true},
		{"a node that reports no platform passes", "arm64:v1", func(*api.Node) {}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := NewNodeInfo(node("n1", tt.node))
			ok, reason := f.Filter(ociPod(tt.image), ni)
			if ok != tt.fits {
				t.Fatalf("Filter = %v (%q), want %v", ok, reason, tt.fits)
			}
		})
	}
}

func TestImagePlatformIgnoresWasmContainers(t *testing.T) {
	f := ImagePlatform{Platforms: func(string) []string { return []string{"linux/arm64"} }}
	p := ociPod("hello:v1")
	p.Spec.Containers[0].Runtime = api.RuntimeWasm
	if ok, _ := f.Filter(p, NewNodeInfo(node("n1", platformNode("linux", "amd64", "")))); !ok {
		t.Fatal("a wasm container was filtered by image platform")
	}
}

func TestUnschedulableOCIPodNamesTheMissingPlatform(t *testing.T) {
	s := New(WithImagePlatforms(func(string) []string { return []string{"linux/arm64"} }))
	_, err := s.Schedule(ociPod("arm64:v1"), []*NodeInfo{NewNodeInfo(node("n1", platformNode("linux", "amd64", "")))})
	want := "0/1 nodes are available: 1 node(s) didn't match the image's platforms (image offers linux/arm64; node is linux/amd64)."
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if !strings.Contains(err.Error(), "linux/arm64") {
		t.Fatal("reason does not name the platform")
	}
}
