package testfleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/internal/privtest"

	"github.com/flotilla-edge/flotilla/edgeagent"
	"github.com/flotilla-edge/flotilla/edgeagent/oci"
)

// RequireContainerd returns the test containerd's socket; see
// privtest.RequireContainerd.
func RequireContainerd(t testing.TB) string {
	t.Helper()
	return privtest.RequireContainerd(t)
}

// ContainerdForTest returns an agent's containerd settings for a test: the
// test containerd, a namespace of its own ("flotilla-e2e-<rand>") and no
// registry pulls. At cleanup every container and image of the namespace
// is removed, and the namespace itself.
func ContainerdForTest(t testing.TB) *edgeagent.ContainerdConfig {
	t.Helper()
	sock := RequireContainerd(t)
	var b [4]byte
	rand.Read(b[:])
	ns := "flotilla-e2e-" + hex.EncodeToString(b[:])
	cc := &edgeagent.ContainerdConfig{Socket: sock, Namespace: ns, Snapshotter: testSnapshotter(), NoRegistryPull: true, LogDir: t.TempDir(), RetryInterval: time.Second}
	t.Cleanup(func() { CleanNamespace(t, sock, ns) })
	return cc
}

// testSnapshotter is what .ci/containerd.sh found working on this machine.
func testSnapshotter() string {
	if s := os.Getenv("FLOTILLA_CONTAINERD_SNAPSHOTTER"); s != "" {
		return s
	}
	root := os.Getenv("FLOTILLA_CONTAINERD_ROOT")
	if root == "" {
		root = "/var/lib/flotilla-containerd"
	}
	b, err := os.ReadFile(root + "/etc/snapshotter")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// CleanNamespace removes every container and image of a test namespace,
// then the namespace.
func CleanNamespace(t testing.TB, sock, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	defer removeNamespaceCgroups(ns)
	rt, err := oci.New(ctx, oci.Config{Socket: sock, Namespace: ns, Snapshotter: testSnapshotter(), LogDir: t.TempDir(), Log: Logger()})
	if err != nil {
		t.Logf("clean containerd namespace %s: %v", ns, err)
		return
	}
	defer rt.Close()
	infos, _ := rt.List(ctx)
	for _, in := range infos {
		if err := rt.Stop(ctx, in.ID, 0); err != nil {
			t.Logf("clean container %s: %v", in.ID, err)
		}
	}
	out, _ := exec.CommandContext(ctx, "ctr", "--address", sock, "-n", ns, "images", "ls", "-q").Output()
	for _, ref := range strings.Fields(string(out)) {
		_ = rt.RemoveImage(ctx, ref)
	}
	// An import cut short by the agent's stop leaves a lease holding its
	// blobs; drop leases and content so the namespace can go.
	ctrCmd := func(args ...string) []string {
		out, _ := exec.CommandContext(ctx, "ctr", append([]string{"--address", sock, "-n", ns}, args...)...).Output()
		return strings.Fields(string(out))
	}
	for _, l := range ctrCmd("leases", "ls", "-q") {
		ctrCmd("leases", "rm", l)
	}
	if blobs := ctrCmd("content", "ls", "-q"); len(blobs) > 0 {
		ctrCmd(append([]string{"content", "rm"}, blobs...)...)
	}
	// Content is collected asynchronously; the namespace goes once empty.
	for i := 0; i < 20; i++ {
		if exec.CommandContext(ctx, "ctr", "--address", sock, "namespaces", "rm", ns).Run() == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("containerd namespace %s could not be removed (content still being collected)", ns)
}

// removeNamespaceCgroups removes the (by then empty) cgroup directories
// runc made for the namespace's containers (/<ns>/<id>, in every
// hierarchy): runc removes each container's, not the namespace's.
func removeNamespaceCgroups(ns string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", ns))
	for _, d := range append(dirs, filepath.Join("/sys/fs/cgroup", ns)) {
		_ = os.Remove(d) // rmdir: only an empty cgroup goes
	}
}
