// Package stage1 is the code that runs inside a pod: the pod's PID 1, which
// starts each app in its own mount namespace and root, reaps every process
// of the pod, records each app's exit, stops the apps on SIGTERM, and exits
// with the apps' result; and Enter, which runs a command in a running app
// with that app's confinement.
//
// It is the same atoll binary, started by the pod process (stage0, `atoll
// pod run`) with argv[1] == Command in new PID, mount, UTS, IPC and (unless
// the pod uses the host's) network namespaces. It does not re-execute
// itself per app: each app is set up on a goroutine locked to its own OS
// thread, which unshares its file system context and mount namespace
// (unshare(CLONE_FS|CLONE_NEWNS)), mounts the app's root and pivots into
// it, confines itself (no_new_privs, capability bounding set, seccomp, all
// per-thread in Linux), and forks the app from that thread; the thread is
// never given back to the Go scheduler. One Go process start per pod rather
// than one per app keeps `atoll pod run` within a small factor of `runc run`
// on a ready bundle (see bench/README.md). The same technique lets Enter
// join a running app with setns(2) from Go.
//
// This package must not import the CLI or the node daemon.
package stage1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/pod"
)

// Command is argv[1] of the pod's PID 1: cmd/atoll dispatches on it before
// anything else.
const Command = "__pod-stage1"

// File descriptors the pod process hands to stage1.
const (
	syncFD = 3 // stage0 writes one byte when the cgroup and networks are ready
	lockFD = 4 // the pod directory, carrying the pod's lock
)

// Args builds the argument list of stage1 for the pod in podDir.
func Args(podDir string, stopTimeout time.Duration) []string {
	return []string{"atoll", Command, podDir, stopTimeout.String()}
}

// Main runs as the pod's PID 1 and returns the pod's exit code.
func Main(args []string) int {
	// Keep the main thread for this goroutine: an app's setup goroutine
	// that ended on the main thread would leave it confined and parked
	// rather than ended.
	runtime.LockOSThread()
	// The lock and sync descriptors must not reach the apps: an open
	// directory of the host is a way out of any root.
	unix.CloseOnExec(syncFD)
	unix.CloseOnExec(lockFD)
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "atoll stage1: want POD-DIR STOP-TIMEOUT, got %q\n", args)
		return 125
	}
	stopTimeout, err := time.ParseDuration(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "atoll stage1: stop timeout %q: %v\n", args[1], err)
		return 125
	}
	p, err := newPID1(args[0], stopTimeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "atoll pod: %v\n", err)
		return 125
	}
	return p.run()
}

// pid1 is the state of the pod's PID 1.
type pid1 struct {
	podDir      string
	manifest    *pod.Manifest
	stopTimeout time.Duration
	cgroups     map[string]pod.AppCgroup // by app name

	apps    map[int]*appProc // by PID in the pod
	logs    sync.WaitGroup
	failed  *int // the exit code of the first app that failed
	stopped bool
}

type appProc struct {
	app    *pod.App
	status pod.AppStatus
	// oomFile counts the OOM kills in the app's cgroup, oomBase of them
	// before it started.
	oomFile string
	oomBase uint64
}

func newPID1(podDir string, stopTimeout time.Duration) (*pid1, error) {
	m, err := pod.ReadManifest(podDir)
	if err != nil {
		return nil, err
	}
	p := &pid1{podDir: podDir, manifest: m, stopTimeout: stopTimeout, apps: map[int]*appProc{}}
	// Wait for the pod process to finish the cgroup and the networks.
	sync := os.NewFile(syncFD, "sync")
	var b [1]byte
	if n, _ := sync.Read(b[:]); n != 1 {
		return nil, fmt.Errorf("pod %s: the pod process went away before the pod started", m.UUID)
	}
	sync.Close()
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("make the pod's mounts private: %w", err)
	}
	if err := unix.Sethostname([]byte(m.Hostname)); err != nil {
		return nil, fmt.Errorf("hostname %q: %w", m.Hostname, err)
	}
	// Not dumpable: an app cannot open /proc/1/exe or ptrace PID 1.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("set not dumpable: %w", err)
	}
	st, err := pod.ReadRunState(podDir)
	if err != nil {
		return nil, err
	}
	p.cgroups = st.AppCgroups
	return p, nil
}

func (p *pid1) run() int {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, unix.SIGCHLD)
	exits := make(chan exitEvent, 16)
	go reap(sigchld, exits)

	for i := range p.manifest.Apps {
		app := &p.manifest.Apps[i]
		pid, err := p.startApp(app)
		now := time.Now()
		st := pod.AppStatus{Name: app.Name}
		if err != nil {
			fmt.Fprintf(os.Stderr, "atoll pod: app %s: %v\n", app.Name, err)
			code := 127
			st.Error, st.ExitCode, st.Finished = err.Error(), &code, &now
			p.record(st)
			p.fail(code)
			break
		}
		st.PID, st.Started = pid, &now
		a := &appProc{app: app, status: st}
		if cg, ok := p.cgroups[app.Name]; ok {
			a.oomFile = oomEventsFile(cg.Path)
			a.oomBase = readOOMKills(a.oomFile)
		}
		p.apps[pid] = a
		p.record(st)
	}
	if p.failed != nil {
		p.stop(unix.SIGTERM)
	}

	var kill <-chan time.Time
	for p.running() > 0 {
		select {
		case sig := <-signals:
			p.stop(sig.(syscall.Signal))
			if sig == unix.SIGTERM || sig == unix.SIGINT {
				kill = time.After(p.stopTimeout)
			}
		case <-kill:
			p.killAll()
		case e := <-exits:
			p.exited(e)
			if p.failed != nil && !p.stopped {
				p.stop(unix.SIGTERM)
				kill = time.After(p.stopTimeout)
			}
		}
	}
	// Whatever the apps left behind (daemons, children) goes with the pod.
	p.killAll()
	p.logs.Wait()
	if p.failed != nil {
		return *p.failed
	}
	return 0
}

func (p *pid1) running() int {
	n := 0
	for _, a := range p.apps {
		if a.status.Finished == nil {
			n++
		}
	}
	return n
}

func (p *pid1) fail(code int) {
	if p.failed == nil {
		p.failed = &code
	}
}

// stop forwards sig to every app still running.
func (p *pid1) stop(sig syscall.Signal) {
	if sig == unix.SIGTERM || sig == unix.SIGINT {
		p.stopped = true
	}
	for pid, a := range p.apps {
		if a.status.Finished == nil {
			unix.Kill(pid, sig)
		}
	}
}

// killAll kills every process of the pod but this one.
func (p *pid1) killAll() { unix.Kill(-1, unix.SIGKILL) }

func (p *pid1) record(st pod.AppStatus) {
	if err := pod.WriteAppStatus(p.podDir, &st); err != nil {
		fmt.Fprintf(os.Stderr, "atoll pod: app %s: %v\n", st.Name, err)
	}
}

func (p *pid1) exited(e exitEvent) {
	a, ok := p.apps[e.pid]
	if !ok {
		return // an orphan the pod's PID 1 inherited
	}
	now := time.Now()
	a.status.Finished = &now
	code := 0
	switch {
	case e.status.Exited():
		code = e.status.ExitStatus()
	case e.status.Signaled():
		sig := e.status.Signal()
		a.status.Signal = unix.SignalName(sig)
		code = 128 + int(sig)
		if sig == unix.SIGKILL && a.oomFile != "" && readOOMKills(a.oomFile) > a.oomBase {
			a.status.OOMKilled = true
		}
	}
	a.status.ExitCode = &code
	p.record(a.status)
	// An app stopped by our own SIGTERM has not failed.
	if code != 0 && !(p.stopped && e.status.Signaled() && e.status.Signal() == unix.SIGTERM) {
		p.fail(code)
	}
}

type exitEvent struct {
	pid    int
	status unix.WaitStatus
}

// reap waits for every child of PID 1, apps and orphans alike, each time
// SIGCHLD says one has changed state (the signal is registered before the
// first app starts, so no exit goes unnoticed).
func reap(sigchld <-chan os.Signal, exits chan<- exitEvent) {
	for range sigchld {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil || pid <= 0 {
				break // ECHILD, or none has exited yet
			}
			exits <- exitEvent{pid: pid, status: ws}
		}
	}
}

// startApp sets up app on a thread of its own and starts it, returning
// its PID in the pod.
func (p *pid1) startApp(app *pod.App) (int, error) {
	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	stdout, stderr, err := p.outputs(app)
	if err != nil {
		return 0, err
	}
	go func() {
		// This thread's mount namespace, root and credentials become the
		// app's: it must never run anything else.
		runtime.LockOSThread()
		pid, err := p.setupAndFork(app, stdout, stderr)
		done <- result{pid, err}
	}()
	r := <-done
	// The app holds its ends now; ours would keep the log copiers waiting.
	closeWriteEnds(stdout, stderr)
	return r.pid, r.err
}

func (p *pid1) setupAndFork(app *pod.App, stdout, stderr *os.File) (int, error) {
	// The app's cgroup, joined while the host's cgroup mounts are in
	// sight. In v1 hierarchies this thread joins it, and the fork inherits
	// that. The v2 hierarchy moves whole processes only, and cloning
	// straight into a cgroup takes clone3, which the app's seccomp filter
	// (Docker's) refuses as it refuses it to the app: there the app is
	// moved as soon as it has started, and whatever it forked meanwhile
	// after it.
	var v2 *v2Move
	if cg, ok := p.cgroups[app.Name]; ok {
		tid := []byte(strconv.Itoa(unix.Gettid()))
		for _, tasks := range cg.Tasks {
			if err := os.WriteFile(tasks, tid, 0); err != nil {
				return 0, fmt.Errorf("join the app's cgroup: %w", err)
			}
		}
		if cg.Dir != "" && cg.PID1Dir != "" {
			var err error
			if v2, err = openV2Move(cg.Dir, cg.PID1Dir); err != nil {
				return 0, fmt.Errorf("the app's cgroup: %w", err)
			}
			defer v2.close()
		}
	}
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return 0, fmt.Errorf("new mount namespace: %w", err)
	}
	r := &rootfs{podDir: p.podDir, manifest: p.manifest, app: app}
	if app.Terminal {
		if tty, err := os.Readlink("/proc/self/fd/0"); err == nil && strings.HasPrefix(tty, "/dev/pts/") {
			r.console = tty
		}
	}
	if err := r.mountAll(); err != nil {
		return 0, err
	}
	c, err := newConfinement(p.manifest, app)
	if err != nil {
		return 0, err
	}
	cmd, err := c.command(app.Exec)
	if err != nil {
		return 0, err
	}
	switch {
	case app.Terminal:
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr.Setsid = true
		cmd.SysProcAttr.Setctty = true
	default:
		if app.Stdin == "stream" {
			cmd.Stdin = os.Stdin
		}
		cmd.Stdout, cmd.Stderr = stdout, stderr
	}
	if err := c.confineThread(); err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	if v2 != nil {
		if err := v2.move(pid); err != nil {
			unix.Kill(pid, unix.SIGKILL) // it must not run outside its limits
			return 0, fmt.Errorf("move the app into its cgroup: %w", err)
		}
	}
	return pid, nil
}

// v2Move moves an app from PID 1's cgroup v2 into its own, through files
// opened before the app's root hid the host's cgroup mount.
type v2Move struct {
	appProcs, pid1Procs *os.File
}

func openV2Move(appDir, pid1Dir string) (*v2Move, error) {
	appProcs, err := os.OpenFile(filepath.Join(appDir, "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	pid1Procs, err := os.Open(filepath.Join(pid1Dir, "cgroup.procs"))
	if err != nil {
		appProcs.Close()
		return nil, err
	}
	return &v2Move{appProcs: appProcs, pid1Procs: pid1Procs}, nil
}

func (m *v2Move) close() {
	m.appProcs.Close()
	m.pid1Procs.Close()
}

// move moves pid, then every other process left in PID 1's cgroup (what
// the app forked before it was moved) until only PID 1 is there.
func (m *v2Move) move(pid int) error {
	if _, err := m.appProcs.WriteString(strconv.Itoa(pid)); err != nil {
		return err
	}
	for range 100 {
		if _, err := m.pid1Procs.Seek(0, io.SeekStart); err != nil {
			return err
		}
		data, err := io.ReadAll(m.pid1Procs)
		if err != nil {
			return err
		}
		strays := 0
		for _, f := range strings.Fields(string(data)) {
			if f == strconv.Itoa(os.Getpid()) {
				continue
			}
			strays++
			// ESRCH: it exited meanwhile.
			if _, err := m.appProcs.WriteString(f); err != nil && !errors.Is(err, unix.ESRCH) {
				return err
			}
		}
		if strays == 0 {
			return nil
		}
	}
	return fmt.Errorf("the app's processes keep appearing in PID 1's cgroup")
}

// outputs makes the pipes an app writes its stdout and stderr to: PID 1
// copies them to its own (the pod process's, so a unit's journal gets them)
// and to the app's log, which `atoll pod logs` reads.
func (p *pid1) outputs(app *pod.App) (stdout, stderr *os.File, err error) {
	if app.Terminal {
		return nil, nil, nil
	}
	log, err := openLog(filepath.Join(pod.AppDir(p.podDir, app.Name), "log"))
	if err != nil {
		return nil, nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	var mu sync.Mutex
	var pipes []*os.File
	for _, s := range []struct {
		mode, name string
		dest       *os.File
	}{{app.Stdout, "stdout", os.Stdout}, {app.Stderr, "stderr", os.Stderr}} {
		if s.mode == "null" {
			pipes = append(pipes, nil)
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			closeWriteEnds(pipes...)
			return nil, nil, fmt.Errorf("app %s: %w", app.Name, err)
		}
		pipes = append(pipes, w)
		var dest io.Writer
		if s.mode != "log" {
			dest = s.dest
		}
		p.logs.Add(1)
		go func(stream string) {
			defer p.logs.Done()
			copyLines(r, dest, log, stream, &mu)
			r.Close()
		}(s.name)
	}
	return pipes[0], pipes[1], nil
}

func closeWriteEnds(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// copyLines copies an app's stream to dest unchanged and to the log as
// "TIME STREAM LINE" lines.
func copyLines(r io.Reader, dest io.Writer, log *appLog, stream string, mu *sync.Mutex) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if dest != nil {
				dest.Write(line)
			}
			mu.Lock()
			log.write(stream, line, err == nil)
			mu.Unlock()
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return
		}
	}
}

// oomEventsFile is the cgroup file whose oom_kill counter tells an
// OOM-killed app from one killed by a signal. cgroup is a path such as
// /atoll/<uuid>/app-<name>; v2 is tried first, then v1's memory controller.
func oomEventsFile(cgroup string) string {
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup", cgroup, "memory.events"),
		filepath.Join("/sys/fs/cgroup/memory", cgroup, "memory.oom_control"),
	} {
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return ""
}

func readOOMKills(file string) uint64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
