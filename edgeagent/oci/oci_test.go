package oci_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/internal/privtest"

	"github.com/flotilla-edge/flotilla/edgeagent/oci"
	"github.com/flotilla-edge/flotilla/edgeagent/oci/ocitest"
)

const testNamespace = "flotilla-test"

// requireContainerd: see privtest.RequireContainerd.
func requireContainerd(t *testing.T) string {
	t.Helper()
	return privtest.RequireContainerd(t)
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newRuntime connects to the test containerd with logs in logDir
// (t.TempDir() when empty).
func newRuntime(t *testing.T, logDir string) *oci.Runtime {
	t.Helper()
	sock := requireContainerd(t)
	if logDir == "" {
		logDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := oci.New(ctx, oci.Config{Socket: sock, Namespace: testNamespace, Log: testLogger(t), LogDir: logDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var tagRE = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// importServer imports the two-platform test image under a tag unique to
// the test and returns its reference; the image is removed at cleanup.
func importServer(t *testing.T, r *oci.Runtime, platforms ...string) string {
	t.Helper()
	if len(platforms) == 0 {
		platforms = []string{"linux/amd64", "linux/arm64"}
	}
	tag := strings.ToLower(tagRE.ReplaceAllString(t.Name(), "-"))
	path := ocitest.BuildTestImage(t, "flotilla.test/server", tag, platforms)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, err := r.ImportArchive(ctxT(t, 60*time.Second), f)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := ocitest.FullRef("flotilla.test/server", tag)
	if !slices.Contains(names, ref) {
		t.Fatalf("imported %v, want %s among them", names, ref)
	}
	t.Cleanup(func() { r.RemoveImage(context.Background(), ref) })
	return ref
}

// containerID is unique per test run.
func containerID(t *testing.T, name string) string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("test_%s_%x", name, b)
}

// start starts a container and arranges for its removal.
func start(t *testing.T, r *oci.Runtime, s oci.Spec) *oci.Container {
	t.Helper()
	c, err := r.Start(ctxT(t, 60*time.Second), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(context.Background(), s.ID, 0); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return c
}

// syncBuf is a goroutine-safe buffer.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func get(url string) (string, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func listIDs(t *testing.T, r *oci.Runtime) map[string]oci.Info {
	t.Helper()
	infos, err := r.List(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]oci.Info{}
	for _, in := range infos {
		m[in.ID] = in
	}
	return m
}

// --- tests without containerd ---

func TestNewMissingSocket(t *testing.T) {
	_, err := oci.New(context.Background(), oci.Config{Socket: "/nonexistent/containerd.sock", LogDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "containerd socket /nonexistent/containerd.sock not reachable") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateRef(t *testing.T) {
	for _, ok := range []string{"nginx", "nginx:1.27", "flotilla.test/server:v1", "localhost:5000/a/b:c", "ghcr.io/x/y@sha256:" + strings.Repeat("a", 64)} {
		if err := oci.ValidateRef(ok); err != nil {
			t.Errorf("ValidateRef(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "repo/UPPER", "bad ref", "a:b:c", "x@sha256:short", "-leading"} {
		err := oci.ValidateRef(bad)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("ValidateRef(%q) = %v, want an error naming it", bad, err)
		}
	}
}

// --- tests against containerd ---

func TestImportTwoPlatforms(t *testing.T) {
	r := newRuntime(t, "")
	ref := importServer(t, r)
	ps, err := r.ImagePlatforms(ctxT(t, 10*time.Second), ref)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(ps)
	if len(ps) != 2 || ps[0].String() != "linux/amd64" || ps[1].String() != "linux/arm64" {
		t.Fatalf("platforms = %s, want linux/amd64 and linux/arm64", got)
	}
	dg, err := r.EnsureImage(ctxT(t, 60*time.Second), ref, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dg, "sha256:") {
		t.Fatalf("digest %q", dg)
	}
	// Idempotent, and the short form of the name resolves too.
	if dg2, err := r.EnsureImage(ctxT(t, 60*time.Second), strings.TrimPrefix(ref, "docker.io/"), false); err != nil || dg2 != dg {
		t.Fatalf("second EnsureImage = %q, %v; want %q", dg2, err, dg)
	}
}

func TestForeignPlatformOnlyImage(t *testing.T) {
	r := newRuntime(t, "")
	foreign := "linux/arm64"
	if runtime.GOARCH == "arm64" {
		foreign = "linux/amd64"
	}
	ref := importServer(t, r, foreign)
	ps, err := r.ImagePlatforms(ctxT(t, 10*time.Second), ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].String() != foreign {
		t.Fatalf("platforms = %v, want [%s]", ps, foreign)
	}
	_, err = r.EnsureImage(ctxT(t, 30*time.Second), ref, false)
	if !errors.Is(err, oci.ErrPlatformMismatch) {
		t.Fatalf("EnsureImage = %v, want ErrPlatformMismatch", err)
	}
	t.Log(err)
	_, err = r.Start(ctxT(t, 30*time.Second), oci.Spec{ID: containerID(t, "foreign"), Image: ref})
	if !errors.Is(err, oci.ErrPlatformMismatch) {
		t.Fatalf("Start = %v, want ErrPlatformMismatch", err)
	}
}

func TestCorruptArchive(t *testing.T) {
	r := newRuntime(t, "")
	garbage := make([]byte, 4096)
	rand.Read(garbage)
	if _, err := r.ImportArchive(ctxT(t, 30*time.Second), bytes.NewReader(garbage)); err == nil {
		t.Fatal("importing garbage succeeded")
	} else {
		t.Log(err)
	}
	path := ocitest.BuildTestImage(t, "flotilla.test/truncated", "v1", []string{"linux/" + runtime.GOARCH})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ImportArchive(ctxT(t, 30*time.Second), bytes.NewReader(b[:len(b)/2])); err == nil {
		t.Fatal("importing a truncated archive succeeded")
	} else {
		t.Log(err)
	}
}

func TestMissingImage(t *testing.T) {
	r := newRuntime(t, "")
	if _, err := r.EnsureImage(ctxT(t, 10*time.Second), "flotilla.test/missing:v0", false); !errors.Is(err, oci.ErrImageNotFound) {
		t.Fatalf("EnsureImage = %v, want ErrImageNotFound", err)
	}
	// A pull from an unreachable (loopback, closed port) registry fails too.
	if _, err := r.EnsureImage(ctxT(t, 30*time.Second), "127.0.0.1:1/missing:v0", true); !errors.Is(err, oci.ErrImageNotFound) {
		t.Fatalf("EnsureImage(pull) = %v, want ErrImageNotFound", err)
	} else {
		t.Log(err)
	}
	if _, err := r.Start(ctxT(t, 10*time.Second), oci.Spec{ID: containerID(t, "missing"), Image: "flotilla.test/missing:v0"}); !errors.Is(err, oci.ErrImageNotFound) {
		t.Fatalf("Start = %v, want ErrImageNotFound", err)
	}
	if _, err := r.EnsureImage(ctxT(t, 10*time.Second), "Bad Ref", false); err == nil || !strings.Contains(err.Error(), `"Bad Ref"`) {
		t.Fatalf("EnsureImage(malformed) = %v", err)
	}
}

func TestServeAndStop(t *testing.T) {
	r := newRuntime(t, "")
	ref := importServer(t, r)
	port := freePort(t)
	var out, errb syncBuf
	id := containerID(t, "web")
	c := start(t, r, oci.Spec{
		ID: id, Image: ref,
		Env:         []string{"PORT=" + port, "POD_NAME=web-1", "VERSION=3"},
		MemoryLimit: 64 << 20, CPUMilli: 500,
		Labels: map[string]string{"flotilla.io/pod": "web"},
		Stdout: &out, Stderr: &errb,
	})
	url := "http://127.0.0.1:" + port + "/hello"
	var body string
	eventually(t, 15*time.Second, "the server to answer", func() bool {
		var err error
		body, err = get(url)
		return err == nil
	})
	if body != "web-1 v=3\n" {
		t.Fatalf("body = %q", body)
	}
	eventually(t, 5*time.Second, "stdout and stderr to be followed", func() bool {
		return strings.Contains(out.String(), "request /hello") && strings.Contains(errb.String(), "listening on 127.0.0.1:"+port)
	})
	if strings.Contains(out.String(), "listening") || strings.Contains(errb.String(), "request") {
		t.Fatalf("streams mixed: stdout %q stderr %q", out.String(), errb.String())
	}
	if in, ok := listIDs(t, r)[id]; !ok || !in.Running || in.Pid == 0 || in.Labels["flotilla.io/pod"] != "web" {
		t.Fatalf("List: %+v (present %v)", in, ok)
	}

	t0 := time.Now()
	if err := r.Stop(ctxT(t, 30*time.Second), id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > 8*time.Second {
		t.Fatalf("Stop of a SIGTERM-handling server took %v", el)
	}
	st, err := c.Wait(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 0 || st.Reason != oci.ReasonCompleted || st.FinishedAt.IsZero() {
		t.Fatalf("exit = %+v", st)
	}
	if !strings.Contains(out.String(), "got terminated") {
		t.Fatalf("stdout lacks the shutdown line: %q", out.String())
	}
	if _, ok := listIDs(t, r)[id]; ok {
		t.Fatal("container still listed after Stop")
	}
	if _, err := get(url); err == nil {
		t.Fatal("server still answers after Stop")
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	r := newRuntime(t, "")
	ref := importServer(t, r)
	port := freePort(t)
	var errb syncBuf
	id := containerID(t, "stubborn")
	c := start(t, r, oci.Spec{ID: id, Image: ref, Args: []string{"-ignore-term"}, Env: []string{"PORT=" + port}, Stderr: &errb})
	eventually(t, 15*time.Second, "the server to listen", func() bool { return strings.Contains(errb.String(), "listening") })

	const grace = 1500 * time.Millisecond
	t0 := time.Now()
	if err := r.Stop(ctxT(t, 30*time.Second), id, grace); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < grace {
		t.Fatalf("Stop returned after %v, before the %v grace period", el, grace)
	}
	st, err := c.Wait(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 137 || st.Reason != oci.ReasonError {
		t.Fatalf("exit = %+v, want 137/Error", st)
	}
	if _, ok := listIDs(t, r)[id]; ok {
		t.Fatal("container still listed after Stop")
	}
}

func TestOOMKilled(t *testing.T) {
	r := newRuntime(t, "")
	ref := importServer(t, r)
	id := containerID(t, "hog")
	var out syncBuf
	c := start(t, r, oci.Spec{ID: id, Image: ref, Args: []string{"-hog"}, MemoryLimit: 32 << 20, Stdout: &out})
	st, err := c.Wait(ctxT(t, 60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.Reason != oci.ReasonOOMKilled || st.Code != 137 {
		t.Fatalf("exit = %+v, want OOMKilled/137 (output %q)", st, out.String())
	}
}

func TestExitCodes(t *testing.T) {
	r := newRuntime(t, "")
	ref := importServer(t, r)
	for _, tc := range []struct {
		code   int
		reason string
	}{{3, oci.ReasonError}, {0, oci.ReasonCompleted}} {
		var out syncBuf
		c := start(t, r, oci.Spec{ID: containerID(t, fmt.Sprint("exit", tc.code)), Image: ref, Args: []string{"-exit", fmt.Sprint(tc.code)}, Stdout: &out})
		st, err := c.Wait(ctxT(t, 30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if st.Code != tc.code || st.Reason != tc.reason {
			t.Fatalf("exit = %+v, want %d/%s", st, tc.code, tc.reason)
		}
		if want := fmt.Sprintf("exiting with %d\n", tc.code); out.String() != want {
			t.Fatalf("stdout = %q, want %q (all output delivered before Wait returns)", out.String(), want)
		}
		// Wait is repeatable.
		if st2, _ := c.Wait(context.Background()); st2 != st {
			t.Fatalf("second Wait = %+v", st2)
		}
	}
}

func TestCommandWorkingDirAndResolvConf(t *testing.T) {
	r := newRuntime(t, "")
	ref := importServer(t, r)
	const resolv = "nameserver 127.0.0.153\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		spec    oci.Spec
		code    int
		wantOut string
	}{
		{"command replaces the entrypoint", oci.Spec{Command: []string{"/server"}, Args: []string{"-exec-echo", "from-command"}}, 0, "from-command\n"},
		{"command with exit code", oci.Spec{Command: []string{"/server", "-exit", "3"}}, 3, "exiting with 3\n"},
		{"image working dir", oci.Spec{Args: []string{"-pwd", "-exit", "0"}}, 0, "pwd /\nexiting with 0\n"},
		{"working dir", oci.Spec{Args: []string{"-pwd", "-exit", "0"}, WorkingDir: "/tmp"}, 0, "pwd /tmp\nexiting with 0\n"},
		{"resolv.conf given", oci.Spec{Args: []string{"-cat", "/etc/resolv.conf", "-exit", "0"}, ResolvConf: resolv}, 0, resolv + "exiting with 0\n"},
		{"host resolv.conf", oci.Spec{Args: []string{"-cat", "/etc/resolv.conf", "-exit", "0"}}, 0, string(host) + "exiting with 0\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out syncBuf
			s := tt.spec
			s.ID, s.Image, s.Stdout = containerID(t, "spec"), ref, &out
			c := start(t, r, s)
			st, err := c.Wait(ctxT(t, 30*time.Second))
			if err != nil || st.Code != tt.code || out.String() != tt.wantOut {
				t.Fatalf("exit %+v, %v, stdout %q, want code %d and %q", st, err, out.String(), tt.code, tt.wantOut)
			}
		})
	}
}

func TestExec(t *testing.T) {
	r := newRuntime(t, "")
	ref := importServer(t, r)
	port := freePort(t)
	id := containerID(t, "exec")
	var errb syncBuf
	start(t, r, oci.Spec{ID: id, Image: ref, Env: []string{"PORT=" + port}, Stderr: &errb})
	eventually(t, 15*time.Second, "the server to listen", func() bool { return strings.Contains(errb.String(), "listening") })

	var out, eout bytes.Buffer
	code, err := r.Exec(ctxT(t, 30*time.Second), id, []string{"/server", "-exec-echo", "hi"}, nil, &out, &eout, false)
	if err != nil || code != 0 || out.String() != "hi\n" {
		t.Fatalf("exec = %d, %v, stdout %q", code, err, out.String())
	}
	out.Reset()
	code, err = r.Exec(ctxT(t, 30*time.Second), id, []string{"/server", "-exec-exit", "4"}, nil, &out, &eout, false)
	if err != nil || code != 4 || eout.String() != "exec\n" {
		t.Fatalf("exec = %d, %v, stderr %q", code, err, eout.String())
	}
	if _, err := r.Exec(ctxT(t, 10*time.Second), "test_no_such_container", []string{"/server"}, nil, nil, nil, false); !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("exec in a missing container = %v", err)
	}
}

func TestAdoptAfterRestart(t *testing.T) {
	logDir := t.TempDir()
	r1 := newRuntime(t, logDir)
	ref := importServer(t, r1)
	port := freePort(t)
	id := containerID(t, "adopt")
	var out1, err1 syncBuf
	if _, err := r1.Start(ctxT(t, 60*time.Second), oci.Spec{ID: id, Image: ref, Env: []string{"PORT=" + port, "POD_NAME=adoptee"}, Labels: map[string]string{"flotilla.io/uid": "u1"}, Stdout: &out1, Stderr: &err1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the server to listen", func() bool { return strings.Contains(err1.String(), "listening") })
	// Retried: the first connection can race the server's accept loop.
	eventually(t, 10*time.Second, "GET /before", func() bool {
		_, err := get("http://127.0.0.1:" + port + "/before")
		return err == nil
	})
	eventually(t, 5*time.Second, "output before the restart", func() bool { return strings.Contains(out1.String(), "request /before") })
	r1.Close() // the agent goes away; the container stays

	// Output produced while no agent runs is kept in the log file.
	// Retried: the first connection can race the server's accept loop.
	eventually(t, 10*time.Second, "GET /between", func() bool {
		_, err := get("http://127.0.0.1:" + port + "/between")
		return err == nil
	})

	r2 := newRuntime(t, logDir)
	t.Cleanup(func() {
		if err := r2.Stop(context.Background(), id, 0); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		r2.RemoveImage(context.Background(), ref) // r1, which imported it, is closed
	})
	in, ok := listIDs(t, r2)[id]
	if !ok || !in.Running || in.Labels["flotilla.io/uid"] != "u1" {
		t.Fatalf("List after restart: %+v (present %v)", in, ok)
	}
	stdoutPath, _ := r2.LogPaths(id)
	eventually(t, 5*time.Second, "the log file to hold output written without an agent", func() bool {
		b, _ := os.ReadFile(stdoutPath)
		return strings.Contains(string(b), "request /between")
	})
	var out2 syncBuf
	c, err := r2.Adopt(ctxT(t, 10*time.Second), id, &out2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, err := get("http://127.0.0.1:" + port + "/after"); err != nil || body != "adoptee v=\n" {
		t.Fatalf("GET after adopt = %q, %v", body, err)
	}
	eventually(t, 5*time.Second, "output to keep flowing after Adopt", func() bool { return strings.Contains(out2.String(), "request /after") })
	if strings.Contains(out2.String(), "request /before") {
		t.Fatalf("adopted output repeats old lines: %q", out2.String())
	}
	if err := r2.Stop(ctxT(t, 30*time.Second), id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait(ctxT(t, 10*time.Second))
	if err != nil || st.Reason != oci.ReasonCompleted {
		t.Fatalf("adopted exit = %+v, %v", st, err)
	}
	if _, err := r2.Adopt(ctxT(t, 10*time.Second), id, nil, nil); !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("adopting a removed container = %v", err)
	}
}
