package builtin

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// process is a unit's process the manager watches through a pidfd, which
// names the process and not its PID: a PID reused after the process ends
// cannot be mistaken for it.
type process struct {
	pid int
	// pidfd reads ready when the process has ended.
	pidfd *os.File
	// watch is the manager's poller waiting on pidfd, nil when none
	// does.
	watch *watch
	// startTime is the process's start in clock ticks after boot
	// (/proc/PID/stat), recorded so that a later daemon can tell the
	// process from another that got its PID.
	startTime uint64
}

// procAttr is how to start one process.
type procAttr struct {
	path   string
	argv   []string
	env    []string
	dir    string
	cred   *syscall.Credential // nil: as the daemon (root)
	stdout *os.File
	stderr *os.File
}

// startInCgroup starts a process that is in cg from its first instruction,
// so that it cannot fork a child the cgroup misses:
//
//   - in the v1 hierarchies a thread of the daemon joins the cgroup by
//     writing its ID to the tasks files, forks (the child inherits the
//     thread's cgroups), and goes back (onCgroupThread);
//   - in the v2 hierarchy, which moves whole processes only, the child is
//     cloned straight into the cgroup (clone3 with CLONE_INTO_CGROUP,
//     SysProcAttr.UseCgroupFD).
//
// The process gets its own session and no parent-death signal: it must
// outlive the daemon.
func startInCgroup(cg *unitCgroup, a procAttr) (*process, error) {
	v2 := -1
	if dir := cg.v2Dir(); dir != "" {
		var err error
		if v2, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", cg.path, err)
		}
		defer unix.Close(v2)
	}
	nullFD, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: os.DevNull, Err: err}
	}
	devNull := os.NewFile(uintptr(nullFD), os.DevNull)
	defer devNull.Close()
	return onCgroupThread(cg, func() (*process, error) {
		pidfd := -1
		sys := &syscall.SysProcAttr{Setsid: true, Credential: a.cred, PidFD: &pidfd}
		if v2 >= 0 {
			sys.UseCgroupFD = true
			sys.CgroupFD = v2
		}
		p, err := os.StartProcess(a.path, a.argv, &os.ProcAttr{
			Dir:   a.dir,
			Env:   a.env,
			Files: []*os.File{devNull, a.stdout, a.stderr},
			Sys:   sys,
		})
		if err != nil {
			return nil, err
		}
		pid := p.Pid
		p.Release()
		proc, err := newProcess(pid, pidfd)
		if err != nil {
			// Without a pidfd the process cannot be watched: it must not
			// run unwatched.
			unix.Kill(pid, unix.SIGKILL)
			unix.Wait4(pid, nil, 0, nil)
			return nil, err
		}
		return proc, nil
	})
}

// onCgroupThread runs f on an OS thread locked to it that is in cg's v1
// cgroups meanwhile, then moves the thread back to the daemon's own
// cgroups and releases it. Nothing of the daemon may stay in a unit's
// cgroup: a thread there would be frozen with the unit's processes when
// they are stopped, signalled with them, and would keep the cgroup from
// being removed.
//
// A thread that cannot go back ends with f's goroutine (which then exits
// without unlocking it, and the runtime ends such a thread), and
// onCgroupThread waits until it is gone. The main thread is never used:
// the runtime parks it forever instead of ending it. When f's goroutine
// lands there, it keeps the main thread taken and runs on another
// goroutine, which cannot land there now.
func onCgroupThread(cg *unitCgroup, f func() (*process, error)) (*process, error) {
	join := cg.tasksFiles()
	if len(join) == 0 { // no v1 hierarchy: nothing to join
		return f()
	}
	type result struct {
		p     *process
		err   error
		stuck int // a thread that could not go back, and ends
	}
	var run func(out chan<- result)
	run = func(out chan<- result) {
		runtime.LockOSThread()
		tid := unix.Gettid()
		if tid == unix.Getpid() {
			inner := make(chan result, 1)
			go run(inner)
			r := <-inner
			runtime.UnlockOSThread()
			out <- r
			return
		}
		var r result
		home, homeErr := cg.homeTasksFiles()
		id := []byte(strconv.Itoa(tid))
		joined := 0
		for _, file := range join {
			if err := writeKernelFile(file, id); err != nil {
				r.err = fmt.Errorf("join cgroup %s: %w", cg.path, err)
				break
			}
			joined++
		}
		if r.err == nil {
			r.p, r.err = f()
		}
		for i := joined - 1; i >= 0; i-- {
			if homeErr != nil || writeKernelFile(home[i], id) != nil {
				r.stuck = tid
				out <- r
				return // locked: the thread ends
			}
		}
		runtime.UnlockOSThread()
		out <- r
	}
	done := make(chan result, 1)
	go run(done)
	r := <-done
	if r.stuck != 0 {
		waitThreadGone(r.stuck)
	}
	return r.p, r.err
}

// waitThreadGone waits, a while at most, until thread tid of this
// process has ended.
func waitThreadGone(tid int) {
	path := fmt.Sprintf("/proc/self/task/%d", tid)
	for range 1000 {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// newProcess wraps the pidfd of process pid (-1: open one). The pidfd
// is left blocking, so that the runtime does not wait on it as well as
// the manager's poller: it is never read, only polled and signalled.
func newProcess(pid, pidfd int) (*process, error) {
	if pidfd < 0 {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return nil, fmt.Errorf("pidfd of process %d: %w", pid, err)
		}
		pidfd = fd
	}
	p := &process{pid: pid, pidfd: os.NewFile(uintptr(pidfd), "pidfd:"+strconv.Itoa(pid))}
	p.startTime, _ = procStartTime(pid)
	return p, nil
}

// adoptProcess opens process pid if it is still the process that started
// at startTime, as recorded by an earlier daemon; nil when it is gone. A
// process that has ended but is not reaped yet (the caller's own zombie
// child) is returned: waiting for it reaps it and gives its status.
func adoptProcess(pid int, startTime uint64) *process {
	if pid <= 0 {
		return nil
	}
	p, err := newProcess(pid, -1)
	if err != nil {
		return nil
	}
	// The pidfd holds the process now; checking its start time after
	// opening it proves the pidfd names the recorded one.
	if st, err := procStartTime(pid); err != nil || st != startTime {
		p.close()
		return nil
	}
	return p
}

// reap returns how the process ended, once its pidfd reads ready: from
// its wait status when it is the daemon's child (which this reaps; only
// this can, so its PID is still its own), else an Exit with no Code, the
// status being lost. Without block it does not wait: ok is false when the
// child cannot be waited for yet.
func (p *process) reap(block bool) (exit Exit, ok bool) {
	options := unix.WNOHANG
	if block {
		options = 0
	}
	var ws unix.WaitStatus
	for {
		wpid, err := unix.Wait4(p.pid, &ws, options, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil: // ECHILD: not the daemon's child
			return Exit{}, true
		case wpid == 0:
			return Exit{}, false
		}
		return exitFromWaitStatus(ws), true
	}
}

// signal sends sig to the process, if it has not ended.
func (p *process) signal(sig syscall.Signal) error {
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	})
	if err != nil {
		return err
	}
	if errors.Is(serr, unix.ESRCH) {
		return nil
	}
	return serr
}

// close lets go of the process: it is no longer watched.
func (p *process) close() {
	if p.watch != nil {
		p.watch.stop()
		p.watch = nil
	}
	p.pidfd.Close()
}

// procStartTime is field 22 of /proc/PID/stat: when the process started,
// in clock ticks after boot.
func procStartTime(pid int) (uint64, error) {
	data, err := readKernelFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold anything,
	// spaces and parentheses included: fields are counted after the last
	// ')'.
	s := string(data)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(s[end+1:])
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// identity is who a unit's processes run as.
type identity struct {
	cred  *syscall.Credential
	user  string
	home  string
	shell string
}

// lookupIdentity resolves User= and Group= (names or numbers) against
// the machine's /etc/passwd and /etc/group, with the user's
// supplementary groups, as systemd does. An empty user is root, the
// daemon's own credentials.
func lookupIdentity(user, group string) (identity, error) {
	if user == "" && group == "" {
		return identity{}, nil
	}
	passwd, err := readColonFile("/etc/passwd")
	if err != nil && user != "" && !isNumeric(user) {
		return identity{}, fmt.Errorf("user %q: %w", user, err)
	}
	groups, _ := readColonFile("/etc/group")
	id := identity{cred: &syscall.Credential{}, home: "/", shell: "/bin/sh"}
	if user != "" {
		found := false
		for _, e := range passwd {
			if len(e) < 7 || (e[0] != user && !(isNumeric(user) && e[2] == user)) {
				continue
			}
			uid, err1 := strconv.ParseUint(e[2], 10, 32)
			gid, err2 := strconv.ParseUint(e[3], 10, 32)
			if err1 != nil || err2 != nil {
				return identity{}, fmt.Errorf("user %q: bad /etc/passwd entry", user)
			}
			id.cred.Uid, id.cred.Gid = uint32(uid), uint32(gid)
			id.user, id.home, id.shell = e[0], e[5], e[6]
			found = true
			break
		}
		if !found {
			if !isNumeric(user) {
				return identity{}, fmt.Errorf("user %q: not in /etc/passwd", user)
			}
			n, err := strconv.ParseUint(user, 10, 32)
			if err != nil {
				return identity{}, fmt.Errorf("user %q: %w", user, err)
			}
			id.cred.Uid, id.cred.Gid, id.user = uint32(n), uint32(n), user
		}
	}
	if group != "" {
		gid, ok := uint64(0), false
		for _, e := range groups {
			if len(e) >= 3 && (e[0] == group || (isNumeric(group) && e[2] == group)) {
				if n, err := strconv.ParseUint(e[2], 10, 32); err == nil {
					gid, ok = n, true
				}
				break
			}
		}
		if !ok && isNumeric(group) {
			gid, err = strconv.ParseUint(group, 10, 32)
			ok = err == nil
		}
		if !ok {
			return identity{}, fmt.Errorf("group %q: not in /etc/group", group)
		}
		id.cred.Gid = uint32(gid)
	}
	id.cred.Groups = []uint32{}
	if id.user != "" {
		for _, e := range groups {
			if len(e) < 4 {
				continue
			}
			for _, member := range strings.Split(e[3], ",") {
				if member == id.user {
					if n, err := strconv.ParseUint(e[2], 10, 32); err == nil && uint32(n) != id.cred.Gid {
						id.cred.Groups = append(id.cred.Groups, uint32(n))
					}
				}
			}
		}
	}
	return id, nil
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// readColonFile reads /etc/passwd or /etc/group into fields.
func readColonFile(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, sc.Err()
}
