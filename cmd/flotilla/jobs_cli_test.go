package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/config"
	"github.com/flotilla-edge/flotilla/controlplane/server"
)

func TestCreateJobAndCronJobFromTheCommandLine(t *testing.T) {
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
	if err := config.WriteContext(filepath.Join(dir, "context.yaml"), config.Context{Server: s.URL(), Token: s.Token()}); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, "create", "job", "primes", "--image=batch:v1", "--", "5000"); out != "job/primes created\n" {
		t.Fatalf("create job: %q", out)
	}
	o, err := s.Store.Get(ctx, "Job", "default", "primes")
	if err != nil {
		t.Fatal(err)
	}
	c := o.(*api.Job).Spec.Template.Spec
	if c.RestartPolicy != api.RestartNever || len(c.Containers) != 1 || strings.Join(c.Containers[0].Args, " ") != "5000" {
		t.Fatalf("job template %+v, want Never and args [5000]", c)
	}
	if out := mustRun(t, "create", "cronjob", "tick", "--image=batch:v1", "--schedule=*/1 * * * *", "--", "100"); out != "cronjob/tick created\n" {
		t.Fatalf("create cronjob: %q", out)
	}
	if out := mustRun(t, "create", "job", "tick-now", "--from=cronjob/tick"); out != "job/tick-now created\n" {
		t.Fatalf("create job --from: %q", out)
	}
	o, err = s.Store.Get(ctx, "Job", "default", "tick-now")
	if err != nil {
		t.Fatal(err)
	}
	j := o.(*api.Job)
	if j.Annotations["cronjob.kubernetes.io/instantiate"] != "manual" || api.ControllerOf(&j.ObjectMeta) == nil || api.ControllerOf(&j.ObjectMeta).Name != "tick" {
		t.Fatalf("job from cronjob: annotations %v owners %v", j.Annotations, j.OwnerReferences)
	}
	if out := mustRun(t, "get", "cj"); !strings.Contains(out, "SCHEDULE") || !strings.Contains(out, "*/1 * * * *") {
		t.Fatalf("get cj:\n%s", out)
	}
	if out := mustRun(t, "get", "jobs"); !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "COMPLETIONS") || !strings.Contains(out, "0/1") {
		t.Fatalf("get jobs:\n%s", out)
	}

	bad := []struct {
		args []string
		want string
	}{
		{[]string{"create", "cronjob", "late", "--image=batch:v1", "--schedule=61 * * * *"}, `spec.schedule: "61 * * * *": minute 61 out of range 0-59`},
		{[]string{"create", "job", "x", "--from=deployment/web"}, "--from=deployment/web: want cronjob/NAME"},
		{[]string{"create", "job", "x"}, "either --image or --from must be specified"},
		{[]string{"create", "job", "x", "--from=cronjob/nope"}, `cronjobs "nope" not found`},
	}
	for _, b := range bad {
		_, _, err := flotilla(t, b.args...)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("flotilla %s: %v, want %q", strings.Join(b.args, " "), err, b.want)
		}
	}
	if _, err := s.Store.Get(ctx, "CronJob", "default", "late"); err == nil {
		t.Error("a cron job with a bad schedule was stored")
	}
}
