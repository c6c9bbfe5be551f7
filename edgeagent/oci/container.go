package oci

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	ctroci "github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Exit reasons, as Kubernetes names them.
const (
	ReasonCompleted = "Completed"
	ReasonError     = "Error"
	ReasonOOMKilled = "OOMKilled"
)

// Mount bind-mounts a host path into the container.
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
}

// Spec describes a container to run.
type Spec struct {
	// ID is unique among the runtime's containers (e.g. ns_pod_container_uid8);
	// it names the containerd container, task, snapshot and log directory.
	ID string
	// Image is a reference already made available by EnsureImage.
	Image string
	// Command replaces the image's entrypoint; Args its cmd (Kubernetes
	// semantics).
	Command, Args []string
	// Env entries ("K=V") override the image's.
	Env        []string
	WorkingDir string
	// ResolvConf, when set, is the content of the container's
	// /etc/resolv.conf (written next to its logs and bind-mounted
	// read-only); empty gives the host's.
	ResolvConf string
	// MemoryLimit in bytes (0: none); CPUMilli in millicores (0: none).
	MemoryLimit int64
	CPUMilli    int64
	Mounts      []Mount
	// Stdout and Stderr receive the container's output (nil: not followed;
	// it is still written to the log files).
	Stdout, Stderr io.Writer
	Labels         map[string]string
}

// ExitStatus is how a container's main process ended.
type ExitStatus struct {
	Code       int
	Reason     string // ReasonCompleted, ReasonError or ReasonOOMKilled
	FinishedAt time.Time
}

// Info describes a container known to containerd.
type Info struct {
	ID      string
	Labels  map[string]string
	Running bool
	Pid     uint32
}

// Container is a started (or adopted) container whose exit is watched.
type Container struct {
	ID  string
	Pid uint32

	r      *Runtime
	ctr    containerd.Container
	task   containerd.Task
	exitCh <-chan containerd.ExitStatus
	tails  []*tailer
	cgroup string // cgroupsPath of the spec
	// memLimited: the spec sets a memory limit (an OOM event may follow).
	memLimited bool

	done   chan struct{}
	status ExitStatus
	err    error
}

// LogPaths returns the files the shim writes the container's stdout and
// stderr to.
func (r *Runtime) LogPaths(id string) (stdout, stderr string) {
	d := filepath.Join(r.cfg.LogDir, id)
	return filepath.Join(d, "stdout.log"), filepath.Join(d, "stderr.log")
}

// fileIO makes the shim append the task's stdout and stderr to two regular
// files (a non-FIFO path is opened O_APPEND by the runc shim), so output
// does not depend on the agent being alive.
type fileIO struct{ cfg cio.Config }

func (f *fileIO) Config() cio.Config { return f.cfg }
func (f *fileIO) Cancel()            {}
func (f *fileIO) Wait()              {}
func (f *fileIO) Close() error       { return nil }

func (r *Runtime) fileIOCreator(id string) (cio.Creator, error) {
	out, errp := r.LogPaths(id)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	for _, p := range []string{out, errp} {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	return func(string) (cio.IO, error) {
		return &fileIO{cfg: cio.Config{Stdout: out, Stderr: errp}}, nil
	}, nil
}

// writeResolvConf writes a container's resolv.conf into its log
// directory, which goes away with the container.
func (r *Runtime) writeResolvConf(id, content string) (string, error) {
	d := filepath.Join(r.cfg.LogDir, id)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("container %s resolv.conf: %w", id, err)
	}
	p := filepath.Join(d, "resolv.conf")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		return "", fmt.Errorf("container %s resolv.conf: %w", id, err)
	}
	return p, nil
}

func validID(id string) error {
	if id == "" || len(id) > 76 || strings.ContainsAny(id, "/\\ \t\n:") || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q", id)
	}
	return nil
}

// Start creates and starts a container with host networking. The image must
// be present (see EnsureImage); it is unpacked if needed.
func (r *Runtime) Start(ctx context.Context, s Spec) (_ *Container, retErr error) {
	ctx = r.nsctx(ctx)
	if err := validID(s.ID); err != nil {
		return nil, err
	}
	img, _, err := r.getImage(ctx, s.Image)
	if err != nil {
		return nil, err
	}
	if err := r.unpack(ctx, img); err != nil {
		return nil, err
	}

	opts := []ctroci.SpecOpts{
		ctroci.WithImageConfigArgs(img, s.Args),
		ctroci.WithHostNamespace(specs.NetworkNamespace),
		ctroci.WithHostHostsFile,
	}
	if s.ResolvConf == "" {
		opts = append(opts, ctroci.WithHostResolvconf)
	} else {
		p, err := r.writeResolvConf(s.ID, s.ResolvConf)
		if err != nil {
			return nil, err
		}
		opts = append(opts, ctroci.WithMounts([]specs.Mount{{Type: "bind", Source: p, Destination: "/etc/resolv.conf", Options: []string{"rbind", "ro"}}}))
	}
	if len(s.Command) > 0 {
		opts = append(opts, ctroci.WithProcessArgs(append(append([]string{}, s.Command...), s.Args...)...))
	}
	if len(s.Env) > 0 {
		opts = append(opts, ctroci.WithEnv(s.Env))
	}
	if s.WorkingDir != "" {
		opts = append(opts, ctroci.WithProcessCwd(s.WorkingDir))
	}
	if s.MemoryLimit > 0 {
		opts = append(opts, ctroci.WithMemoryLimit(uint64(s.MemoryLimit)))
		if swapAccounting() {
			// No swap beyond the limit, so the limit is a real one.
			opts = append(opts, ctroci.WithMemorySwap(s.MemoryLimit))
		}
	}
	if s.CPUMilli > 0 {
		const period = 100000
		opts = append(opts, ctroci.WithCPUCFS(s.CPUMilli*period/1000, period))
	}
	if len(s.Mounts) > 0 {
		var ms []specs.Mount
		for _, m := range s.Mounts {
			if !filepath.IsAbs(m.HostPath) || !filepath.IsAbs(m.ContainerPath) {
				return nil, fmt.Errorf("mount %s:%s: paths must be absolute", m.HostPath, m.ContainerPath)
			}
			mode := "rw"
			if m.ReadOnly {
				mode = "ro"
			}
			ms = append(ms, specs.Mount{Type: "bind", Source: m.HostPath, Destination: m.ContainerPath, Options: []string{"rbind", mode}})
		}
		opts = append(opts, ctroci.WithMounts(ms))
	}

	ctr, err := r.client.NewContainer(ctx, s.ID,
		containerd.WithImage(img),
		containerd.WithSnapshotter(r.snapshotter),
		containerd.WithNewSnapshot(s.ID, img),
		containerd.WithNewSpec(opts...),
		containerd.WithContainerLabels(s.Labels),
	)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return nil, fmt.Errorf("container %s already exists: %w", s.ID, err)
		}
		return nil, fmt.Errorf("create container %s: %w", s.ID, err)
	}
	defer func() {
		if retErr != nil {
			dctx, cancel := context.WithTimeout(r.bg, 10*time.Second)
			defer cancel()
			if t, err := ctr.Task(dctx, nil); err == nil {
				t.Delete(dctx, containerd.WithProcessKill)
			}
			ctr.Delete(dctx, containerd.WithSnapshotCleanup)
			r.forget(s.ID)
			os.RemoveAll(filepath.Join(r.cfg.LogDir, s.ID))
		}
	}()

	ioc, err := r.fileIOCreator(s.ID)
	if err != nil {
		return nil, fmt.Errorf("container %s logs: %w", s.ID, err)
	}
	task, err := ctr.NewTask(ctx, ioc)
	if err != nil {
		return nil, fmt.Errorf("create task %s: %w", s.ID, err)
	}
	exitCh, err := task.Wait(r.bg)
	if err != nil {
		return nil, fmt.Errorf("wait task %s: %w", s.ID, err)
	}
	c := r.newContainer(ctx, ctr, task, exitCh, 0, s.Stdout, s.Stderr)
	if err := task.Start(ctx); err != nil {
		c.stopTails()
		return nil, fmt.Errorf("start task %s: %w", s.ID, err)
	}
	c.Pid = task.Pid()
	r.log.Info("container started", "id", s.ID, "image", s.Image, "pid", c.Pid)
	go c.monitor()
	return c, nil
}

// newContainer registers a watched container and starts following its logs
// from offset (0: from the start; -1: from the current end).
func (r *Runtime) newContainer(ctx context.Context, ctr containerd.Container, task containerd.Task, exitCh <-chan containerd.ExitStatus, offset int64, stdout, stderr io.Writer) *Container {
	c := &Container{ID: ctr.ID(), Pid: task.Pid(), r: r, ctr: ctr, task: task, exitCh: exitCh, done: make(chan struct{})}
	if sp, err := ctr.Spec(ctx); err == nil && sp.Linux != nil {
		c.cgroup = sp.Linux.CgroupsPath
		c.memLimited = sp.Linux.Resources != nil && sp.Linux.Resources.Memory != nil && sp.Linux.Resources.Memory.Limit != nil
	}
	out, errp := r.LogPaths(c.ID)
	if stdout != nil {
		c.tails = append(c.tails, startTail(out, offset, stdout))
	}
	if stderr != nil {
		c.tails = append(c.tails, startTail(errp, offset, stderr))
	}
	r.mu.Lock()
	r.live[c.ID] = c
	r.mu.Unlock()
	return c
}

func (c *Container) stopTails() {
	for _, t := range c.tails {
		t.stop()
	}
}

// monitor waits for the task to exit, classifies the exit, and drains logs.
func (c *Container) monitor() {
	defer close(c.done)
	es, ok := <-c.exitCh
	c.stopTails()
	if !ok {
		c.err = fmt.Errorf("container %s: lost the task's exit status", c.ID)
		return
	}
	code, at, err := es.Result()
	if err != nil {
		c.err = fmt.Errorf("container %s: wait: %w", c.ID, err)
		return
	}
	c.status = ExitStatus{Code: int(code), FinishedAt: at}
	switch {
	case c.oomKilled(int(code)):
		c.status.Reason = ReasonOOMKilled
	case code == 0:
		c.status.Reason = ReasonCompleted
	default:
		c.status.Reason = ReasonError
	}
	c.r.log.Info("container exited", "id", c.ID, "code", code, "reason", c.status.Reason)
}

// oomKilled tells whether the kernel's OOM killer ended the container: a
// TaskOOM event from containerd, or the memory cgroup's oom_kill counter
// (cgroup v1 memory.oom_control, v2 memory.events) while it still exists.
func (c *Container) oomKilled(code int) bool {
	if c.r.sawOOM(c.ID) {
		c.r.log.Debug("OOM kill seen", "id", c.ID, "source", "event")
		return true
	}
	if code != 128+int(syscall.SIGKILL) {
		return false
	}
	if cgroupOOMKills(c.cgroup) > 0 {
		c.r.log.Debug("OOM kill seen", "id", c.ID, "source", "cgroup")
		return true
	}
	if !c.memLimited {
		return false
	}
	// The event can trail the exit a little.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if c.r.sawOOM(c.ID) {
			return true
		}
	}
	return false
}

// cgroupOOMKills reads the oom_kill counter of a container's memory cgroup.
func cgroupOOMKills(cgroupsPath string) int {
	if cgroupsPath == "" || strings.Contains(cgroupsPath, ":") {
		return 0 // systemd-style paths are not resolved here
	}
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory", cgroupsPath, "memory.oom_control"), // v1
		filepath.Join("/sys/fs/cgroup", cgroupsPath, "memory.events"),             // v2
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, " "); ok && k == "oom_kill" {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
	}
	return 0
}

func swapAccounting() bool {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		return true
	}
	// cgroup v2 only (unified at /sys/fs/cgroup): memory.swap.max is set.
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// Wait blocks until the container exits (or ctx ends) and returns how it
// ended, after its remaining output has been delivered. It may be called
// any number of times.
func (c *Container) Wait(ctx context.Context) (ExitStatus, error) {
	select {
	case <-c.done:
		return c.status, c.err
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}

// Done is closed when the container has exited and Wait would not block.
func (c *Container) Done() <-chan struct{} { return c.done }

// Stop ends container id: SIGTERM, then SIGKILL after grace if it is still
// running, then deletes its task, container, snapshot and log files. A
// container that does not exist is not an error.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.nsctx(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			r.forget(id)
			os.RemoveAll(filepath.Join(r.cfg.LogDir, id))
			return nil
		}
		return fmt.Errorf("stop %s: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	switch {
	case err == nil:
		if err := r.killTask(ctx, id, task, grace); err != nil {
			return err
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stop %s: delete task: %w", id, err)
		}
	case errdefs.IsNotFound(err):
	default:
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop %s: delete container: %w", id, err)
	}
	// Let a watcher deliver the last output before the files go.
	r.mu.Lock()
	c := r.live[id]
	r.mu.Unlock()
	if c != nil {
		select {
		case <-c.done:
		case <-time.After(3 * time.Second):
		}
	}
	r.forget(id)
	os.RemoveAll(filepath.Join(r.cfg.LogDir, id))
	r.log.Info("container removed", "id", id)
	return nil
}

func (r *Runtime) forget(id string) {
	r.mu.Lock()
	delete(r.live, id)
	delete(r.ooms, id)
	r.mu.Unlock()
}

func (r *Runtime) killTask(ctx context.Context, id string, task containerd.Task, grace time.Duration) error {
	st, err := task.Status(ctx)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("stop %s: status: %w", id, err)
	}
	if st.Status != containerd.Running && st.Status != containerd.Paused && st.Status != containerd.Pausing {
		return nil // created or stopped: Delete with WithProcessKill handles it
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exitCh, err := task.Wait(wctx)
	if err != nil {
		return fmt.Errorf("stop %s: wait: %w", id, err)
	}
	if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop %s: SIGTERM: %w", id, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exitCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
	}
	r.log.Info("grace period over, killing", "id", id, "grace", grace)
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop %s: SIGKILL: %w", id, err)
	}
	select {
	case <-exitCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return fmt.Errorf("stop %s: still running 10s after SIGKILL", id)
	}
}

// List returns the containers in the runtime's namespace, running or not,
// so an agent can adopt what it started before a restart.
func (r *Runtime) List(ctx context.Context) ([]Info, error) {
	ctx = r.nsctx(ctx)
	ctrs, err := r.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []Info
	for _, c := range ctrs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("list containers: %w", err)
		}
		in := Info{ID: c.ID(), Labels: info.Labels}
		if t, err := c.Task(ctx, nil); err == nil {
			if st, err := t.Status(ctx); err == nil && st.Status == containerd.Running {
				in.Running = true
				in.Pid = t.Pid()
			}
		}
		out = append(out, in)
	}
	return out, nil
}

// Adopt re-attaches to container id's task (e.g. after an agent restart):
// its exit is watched again and its output, from now on, is copied to
// stdout/stderr (the log files under LogDir hold the earlier output). An
// exited task can be adopted too: Wait then returns at once.
func (r *Runtime) Adopt(ctx context.Context, id string, stdout, stderr io.Writer) (*Container, error) {
	ctx = r.nsctx(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("adopt %s: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("adopt %s: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("adopt %s: no task: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("adopt %s: %w", id, err)
	}
	exitCh, err := task.Wait(r.bg)
	if err != nil {
		return nil, fmt.Errorf("adopt %s: wait: %w", id, err)
	}
	c := r.newContainer(ctx, ctr, task, exitCh, -1, stdout, stderr)
	go c.monitor()
	r.log.Info("container adopted", "id", id, "pid", c.Pid)
	return c, nil
}

// Exec runs args inside running container id (with the container's
// environment, user and working directory) and returns its exit code.
// stdin may be nil; with tty, stderr is merged into stdout.
func (r *Runtime) Exec(ctx context.Context, id string, args []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error) {
	ctx = r.nsctx(ctx)
	if len(args) == 0 {
		return -1, errors.New("exec: no command")
	}
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return -1, fmt.Errorf("exec in %s: %w", id, ErrNotFound)
		}
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: not running: %w", id, err)
	}
	sp, err := ctr.Spec(ctx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	proc := *sp.Process
	proc.Args = args
	proc.Terminal = tty
	if tty {
		stderr = nil
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	execID := "exec-" + hex.EncodeToString(rnd[:])
	// The process sees EOF on its stdin only when the FIFO is closed through
	// containerd, so the end of the caller's stdin is forwarded with
	// CloseIO once the process exists.
	started := make(chan containerd.Process, 1)
	if stdin != nil {
		stdin = &eofReader{r: stdin, onEOF: func() {
			if proc, ok := <-started; ok {
				started <- proc
				_ = proc.CloseIO(context.WithoutCancel(ctx), containerd.WithStdinCloser)
			}
		}}
	}
	opts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr), cio.WithFIFODir(filepath.Join(r.cfg.LogDir, ".fifo"))}
	if tty {
		opts = append(opts, cio.WithTerminal)
	}
	p, err := task.Exec(ctx, execID, &proc, cio.NewCreator(opts...))
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(r.bg, 10*time.Second)
		defer cancel()
		p.Delete(dctx, containerd.WithProcessKill)
	}()
	exitCh, err := p.Wait(ctx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: wait: %w", id, err)
	}
	if err := p.Start(ctx); err != nil {
		close(started)
		return -1, fmt.Errorf("exec in %s: start: %w", id, err)
	}
	started <- p
	select {
	case es := <-exitCh:
		code, _, err := es.Result()
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", id, err)
		}
		if pio := p.IO(); pio != nil {
			pio.Wait() // all output copied
		}
		return int(code), nil
	case <-ctx.Done():
		p.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		return -1, ctx.Err()
	}
}

// tailer copies what is appended to a log file to a writer.
type tailer struct {
	path string
	w    io.Writer
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// startTail follows path from offset (-1: its current end).
func startTail(path string, offset int64, w io.Writer) *tailer {
	t := &tailer{path: path, w: w, quit: make(chan struct{}), done: make(chan struct{})}
	if offset < 0 {
		offset = 0
		if fi, err := os.Stat(path); err == nil {
			offset = fi.Size()
		}
	}
	go t.run(offset)
	return t
}

func (t *tailer) run(off int64) {
	defer close(t.done)
	f, err := os.Open(t.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	drain := func() bool {
		got := false
		for {
			n, err := f.Read(buf)
			if n > 0 {
				got = true
				t.w.Write(buf[:n])
			}
			if err != nil || n == 0 {
				return got
			}
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		drain()
		select {
		case <-t.quit:
			// The shim may still be flushing: read until output settles.
			for i := 0; i < 20; i++ {
				time.Sleep(50 * time.Millisecond)
				if !drain() && i >= 1 {
					break
				}
			}
			return
		case <-tick.C:
		}
	}
}

// stop makes the tailer deliver what is left and return.
func (t *tailer) stop() {
	t.once.Do(func() { close(t.quit) })
	<-t.done
}

// eofReader calls onEOF once when r is exhausted.
type eofReader struct {
	r     io.Reader
	once  sync.Once
	onEOF func()
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.once.Do(e.onEOF)
	}
	return n, err
}
