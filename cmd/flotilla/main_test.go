package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/config"
	"github.com/flotilla-edge/flotilla/controlplane/server"
)

// flotilla runs the CLI in-process and returns stdout, stderr and the error.
func flotilla(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd(&out, &errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := flotilla(t, args...)
	if err != nil {
		t.Fatalf("flotilla %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func TestNoFleetConfigured(t *testing.T) {
	isolate(t)
	_, _, err := flotilla(t, "get", "pods")
	if err == nil || !strings.Contains(err.Error(), "flotilla up") || !strings.Contains(err.Error(), "FLOTILLA_SERVER") {
		t.Fatalf("err = %v, want the no-fleet hint", err)
	}
}

// isolate keeps the test away from the user's ~/.flotilla and FLOTILLA_*.
func isolate(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("FLOTILLA_CONTEXT", filepath.Join(dir, "context.yaml"))
	for _, k := range []string{"FLOTILLA_SERVER", "FLOTILLA_TOKEN", "FLOTILLA_NAMESPACE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	return dir
}

func TestCLIAgainstControlPlane(t *testing.T) {
	dir := isolate(t)
	ctx := context.Background()
	s, err := server.Start(ctx, server.Config{
		DataDir: t.TempDir(), NATSHost: "127.0.0.1", NATSPort: -1,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	// Client commands find the fleet through the context file, as after
	// `flotilla up`.
	if err := config.WriteContext(filepath.Join(dir, "context.yaml"), config.Context{Server: s.URL(), Token: s.Token()}); err != nil {
		t.Fatal(err)
	}

	if out := mustRun(t, "create", "namespace", "edge"); out != "namespace/edge created\n" {
		t.Errorf("create namespace: %q", out)
	}

	manifest := filepath.Join(dir, "web.yaml")
	writeFile(t, manifest, `apiVersion: flotilla.dev/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: hello
        image: hello:v1
        ports:
        - containerPort: 8080
`)
	if out := mustRun(t, "apply", "-f", manifest, "-n", "edge"); out != "deployment/web created\n" {
		t.Errorf("apply: %q", out)
	}
	if out := mustRun(t, "apply", "-f", manifest, "-n", "edge"); out != "deployment/web unchanged\n" {
		t.Errorf("second apply: %q", out)
	}

	out := mustRun(t, "get", "deployments", "-n", "edge")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME   READY   UP-TO-DATE   AVAILABLE   AGE") {
		t.Fatalf("get deployments:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) != 5 || f[0] != "web" || !strings.HasSuffix(f[1], "/2") {
		t.Errorf("get deployments row: %q", lines[1])
	}

	out = mustRun(t, "get", "deploy", "web", "-o", "yaml", "-n", "edge")
	for _, want := range []string{"kind: Deployment", "name: web", "namespace: edge", "replicas: 2", "image: hello:v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("get -o yaml lacks %q:\n%s", want, out)
		}
	}
	if out := mustRun(t, "get", "deploy/web", "-o", "name", "-n", "edge"); out != "deployment/web\n" {
		t.Errorf("get -o name: %q", out)
	}

	if out := mustRun(t, "scale", "deployment/web", "--replicas=5", "-n", "edge"); out != "deployment/web scaled\n" {
		t.Errorf("scale: %q", out)
	}
	if out := mustRun(t, "get", "deploy", "web", "-o", "json", "-n", "edge"); !strings.Contains(out, `"replicas": 5`) {
		t.Errorf("replicas after scale:\n%s", out)
	}
	if out := mustRun(t, "apply", "-f", manifest, "-n", "edge"); out != "deployment/web configured\n" {
		t.Errorf("apply after scale: %q", out)
	}

	if out := mustRun(t, "label", "deployments", "web", "tier=front", "-n", "edge"); out != "deployment/web labeled\n" {
		t.Errorf("label: %q", out)
	}
	if _, _, err := flotilla(t, "label", "deploy", "web", "tier=back", "-n", "edge"); err == nil ||
		err.Error() != "'tier' already has a value (front), and --overwrite is false" {
		t.Errorf("label without --overwrite: %v", err)
	}
	if out := mustRun(t, "get", "deploy", "-l", "tier=front", "-n", "edge", "--show-labels"); !strings.Contains(out, "app=web,tier=front") {
		t.Errorf("get -l --show-labels:\n%s", out)
	}
	if out := mustRun(t, "label", "deploy/web", "tier-", "-n", "edge"); out != "deployment/web unlabeled\n" {
		t.Errorf("unlabel: %q", out)
	}

	// A typo in any document fails the whole apply before anything is sent.
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `apiVersion: flotilla.dev/v1
kind: Deployment
metadata:
  name: api
spec:
  replica: 3
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: api:v1
---
apiVersion: flotilla.dev/v1
kind: Namespace
metadata:
  name: never
`)
	_, _, err = flotilla(t, "apply", "-f", bad)
	if err == nil || !strings.Contains(err.Error(), "spec.replica") {
		t.Fatalf("bad apply: err = %v, want it to name spec.replica", err)
	}
	if _, _, err := flotilla(t, "get", "deploy", "api"); err == nil || !strings.Contains(err.Error(), `deployments "api" not found`) {
		t.Errorf("get after bad apply: %v", err)
	}
	if _, _, err := flotilla(t, "get", "ns", "never"); err == nil {
		t.Error("namespace of the bad manifest was created")
	}

	if out := mustRun(t, "delete", "deployment", "web", "-n", "edge"); out != "deployment \"web\" deleted\n" {
		t.Errorf("delete: %q", out)
	}
	if _, errOut, err := flotilla(t, "get", "deploy", "-n", "edge"); err != nil || errOut != "No resources found in edge namespace.\n" {
		t.Errorf("get after delete: %v %q", err, errOut)
	}
	if out := mustRun(t, "cluster-info"); !strings.Contains(out, "Flotilla control plane is running at "+s.URL()) || !strings.Contains(out, "Nodes: 0/0 ready") {
		t.Errorf("cluster-info: %q", out)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
