// Command testapp is the program the runtime's tests run inside containers
// (see imagetest.TestApp): one static binary, dispatching on its first
// argument, that reports what a process sees from inside — its ids,
// capabilities, processes, network, files — or behaves in a way a test
// needs: exits, sleeps, serves HTTP, waits for SIGTERM, eats memory.
//
// Results go to stdout, one fact per line; it exits 0 unless the command
// says otherwise, and 2 for a usage error. Run it with no argument for the
// list of commands. It uses only the standard library and x/sys/unix.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

type command struct {
	args string // argument synopsis
	help string
	// run gets the arguments after the command name and returns the exit
	// status.
	run func(args []string) int
	// nargs is the exact argument count, or -1 for any.
	nargs int
}

// commands is built by a function, not a package variable, so that the
// usage text can refer to it without an initialization cycle.
func commands() map[string]command {
	return map[string]command{
		"true":        {"", "exit 0", func([]string) int { return 0 }, 0},
		"false":       {"", "exit 1", func([]string) int { return 1 }, 0},
		"exit":        {"N", "exit N", cmdExit, 1},
		"sleep":       {"SECONDS", "sleep (fractions allowed), then exit 0", cmdSleep, 1},
		"echo":        {"ARGS...", "print the arguments, space-separated", cmdEcho, -1},
		"env":         {"", "print the environment, one VAR=value a line", cmdEnv, 0},
		"id":          {"", "print uid=N, gid=N, groups=N,M (real ids)", cmdID, 0},
		"hostname":    {"", "print the host name", cmdHostname, 0},
		"caps":        {"", "print the Cap*, NoNewPrivs and Seccomp lines of /proc/self/status as 'Name: value'", cmdCaps, 0},
		"ps":          {"", "print 'PID COMM' for each process visible in /proc", cmdPs, 0},
		"cat":         {"PATH", "print a file; exit 1 with the error if it cannot be read", cmdCat, 1},
		"write":       {"PATH TEXT", "write TEXT to PATH (created or truncated) and print ok; exit 1 with the error", cmdWrite, 2},
		"ls":          {"[-l] PATH", "print the names in a directory (-l: 'MODE UID GID SIZE NAME')", cmdLs, -1},
		"mount":       {"SOURCE TARGET FSTYPE", "mount(2) with no flags; print ok, or the error and exit 1", cmdMount, 3},
		"syscall":     {"NAME [ARG]", "try a privileged system call; print ok, or the errno name and exit 1 (see below)", cmdSyscall, -1},
		"addrs":       {"", "print 'IFACE ADDR/PREFIX' for each address (just IFACE if none)", cmdAddrs, 0},
		"http":        {"ADDR", "serve 'hello from HOSTNAME' on GET / at ADDR (prints 'listening on ADDR'); on SIGTERM print terminated, exit 0", cmdHTTP, 1},
		"get":         {"URL", "HTTP GET, print the body; exit 1 on failure or a status other than 2xx", cmdGet, 1},
		"alloc":       {"MB", "allocate and touch MB megabytes, 1 MB at a time, printing 'allocated N MB' (for OOM tests); then print done", cmdAlloc, 1},
		"spawn":       {"N", "start N children that sleep, print 'spawned K of N' (K: how many the kernel let start), then end them", cmdSpawn, 1},
		"spin":        {"MS", "keep one CPU busy for MS milliseconds of CPU time, then print done", cmdSpin, 1},
		"ignore-term": {"", "print 'ignoring SIGTERM', then ignore it and wait to be killed", cmdIgnoreTerm, 0},
		"signal-exit": {"", "print 'waiting for SIGTERM', wait for it, print 'got SIGTERM', exit 0", cmdSignalExit, 0},
		"stdin":       {"", "copy stdin to stdout", cmdStdin, 0},
		"tty":         {"", "print whether stdin and stdout are terminals ('stdin is a terminal' / 'stdin is not a terminal')", cmdTTY, 0},
		"pwd":         {"", "print the working directory", cmdPwd, 0},
		"resolv":      {"", "print /etc/resolv.conf", func([]string) int { return cmdCat([]string{"/etc/resolv.conf"}) }, 0},
		"exe-write":   {"", "try to open /proc/1/exe and /proc/self/exe for writing; print 'PATH: ok' or 'PATH: ERRNO' for each", cmdExeWrite, 0},
	}
}

const syscallHelp = `syscall NAMEs (each is harmless when allowed: it either changes nothing or
fails after the kernel's permission check, and that failure is reported as ok):
  unshare-user      clone(CLONE_NEWUSER) a child running "testapp true"
                    (a multithreaded process cannot unshare(CLONE_NEWUSER))
  unshare-mount     unshare(CLONE_NEWNS)
  init-module       finit_module on /dev/null (allowed: fails EINVAL/ENOEXEC after the check)
  reboot            reboot(2) with bad magic (allowed: EINVAL; it never reboots)
  swapon            swapon a file that does not exist (allowed: ENOENT)
  keyctl            keyctl(KEYCTL_GET_KEYRING_ID, session keyring)
  ptrace-attach PID PTRACE_ATTACH to PID, then detach
  mknod PATH        mknod a character device 1:3 (like /dev/null) at PATH
  sethostname       set the host name to its current value
  chroot            chroot("/")`

func main() {
	cmds := commands()
	if len(os.Args) < 2 {
		usage(cmds)
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	c, ok := cmds[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "testapp: unknown command %q\n", name)
		usage(cmds)
		os.Exit(2)
	}
	if c.nargs >= 0 && len(args) != c.nargs {
		fmt.Fprintf(os.Stderr, "usage: testapp %s %s\n", name, c.args)
		os.Exit(2)
	}
	os.Exit(c.run(args))
}

func usage(cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintln(os.Stderr, "usage: testapp COMMAND [ARGS]")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-32s %s\n", strings.TrimSpace(n+" "+cmds[n].args), cmds[n].help)
	}
	fmt.Fprintln(os.Stderr, syscallHelp)
}

func usageError(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "testapp: "+format+"\n", a...)
	return 2
}

// failed prints err, with its errno name when it has one, and returns 1.
func failed(err error) int {
	fmt.Println("error:", errText(err))
	return 1
}

func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return fmt.Sprintf("%v (%s)", err, name)
		}
	}
	return err.Error()
}

func cmdExit(args []string) int {
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 || n > 255 {
		return usageError("exit: %q is not a status 0-255", args[0])
	}
	return n
}

func cmdSleep(args []string) int {
	s, err := strconv.ParseFloat(args[0], 64)
	if err != nil || s < 0 {
		return usageError("sleep: %q is not a number of seconds", args[0])
	}
	time.Sleep(time.Duration(s * float64(time.Second)))
	return 0
}

func cmdEcho(args []string) int {
	fmt.Println(strings.Join(args, " "))
	return 0
}

func cmdEnv([]string) int {
	for _, kv := range os.Environ() {
		fmt.Println(kv)
	}
	return 0
}

func cmdID([]string) int {
	groups, err := unix.Getgroups()
	if err != nil {
		return failed(err)
	}
	gs := make([]string, len(groups))
	for i, g := range groups {
		gs[i] = strconv.Itoa(g)
	}
	fmt.Printf("uid=%d\ngid=%d\ngroups=%s\n", unix.Getuid(), unix.Getgid(), strings.Join(gs, ","))
	return 0
}

func cmdHostname([]string) int {
	h, err := os.Hostname()
	if err != nil {
		return failed(err)
	}
	fmt.Println(h)
	return 0
}

func cmdCaps([]string) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return failed(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "Cap") || name == "NoNewPrivs" || strings.HasPrefix(name, "Seccomp") {
			fmt.Printf("%s: %s\n", name, strings.TrimSpace(value))
		}
	}
	return 0
}

func cmdPs([]string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return failed(err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	for _, pid := range pids {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue // exited meanwhile
		}
		fmt.Printf("%d %s\n", pid, strings.TrimSpace(string(comm)))
	}
	return 0
}

func cmdCat(args []string) int {
	f, err := os.Open(args[0])
	if err != nil {
		return failed(err)
	}
	defer f.Close()
	if _, err := io.Copy(os.Stdout, f); err != nil {
		return failed(err)
	}
	return 0
}

func cmdWrite(args []string) int {
	if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
		return failed(err)
	}
	fmt.Println("ok")
	return 0
}

func cmdLs(args []string) int {
	long := false
	if len(args) == 2 && args[0] == "-l" {
		long, args = true, args[1:]
	}
	if len(args) != 1 {
		return usageError("usage: testapp ls [-l] PATH")
	}
	dir := args[0]
	fi, err := os.Lstat(dir)
	if err != nil {
		return failed(err)
	}
	var names []string
	if fi.IsDir() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return failed(err)
		}
		for _, e := range entries {
			names = append(names, e.Name())
		}
	} else {
		dir, names = "", []string{dir}
	}
	for _, n := range names {
		if !long {
			fmt.Println(n)
			continue
		}
		p := n
		if dir != "" {
			p = dir + "/" + n
		}
		fi, err := os.Lstat(p)
		if err != nil {
			fmt.Printf("? ? ? ? %s (%s)\n", n, errText(err))
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %d %d %d %s", fi.Mode(), st.Uid, st.Gid, fi.Size(), n)
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err := os.Readlink(p); err == nil {
				line += " -> " + target
			}
		}
		fmt.Println(line)
	}
	return 0
}

func cmdMount(args []string) int {
	if err := unix.Mount(args[0], args[1], args[2], 0, ""); err != nil {
		return failed(err)
	}
	fmt.Println("ok")
	return 0
}

// cmdSyscall tries one privileged system call (see syscallHelp). Each probe
// lists the errnos that mean "allowed": the kernel let the caller past its
// permission check and then failed harmlessly.
func cmdSyscall(args []string) int {
	if len(args) == 0 {
		return usageError("usage: testapp syscall NAME [ARG]\n%s", syscallHelp)
	}
	name, args := args[0], args[1:]
	need := func(n int) bool { return len(args) == n }
	var (
		err     error
		allowed []syscall.Errno
	)
	switch name {
	case "unshare-user":
		if !need(0) {
			return usageError("usage: testapp syscall unshare-user")
		}
		cmd := exec.Command("/proc/self/exe", "true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
		err = cmd.Run()
	case "unshare-mount":
		if !need(0) {
			return usageError("usage: testapp syscall unshare-mount")
		}
		runtime.LockOSThread() // the namespace is the thread's; never unlocked
		err = unix.Unshare(unix.CLONE_NEWNS)
	case "init-module":
		if !need(0) {
			return usageError("usage: testapp syscall init-module")
		}
		f, ferr := os.Open("/dev/null")
		if ferr != nil {
			return failed(ferr)
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		allowed = []syscall.Errno{unix.EINVAL, unix.ENOEXEC, unix.EFBIG, unix.EBADF}
	case "reboot":
		if !need(0) {
			return usageError("usage: testapp syscall reboot")
		}
		// Bad magic numbers: after the CAP_SYS_BOOT check the kernel
		// refuses with EINVAL and does nothing.
		_, _, e := unix.Syscall6(unix.SYS_REBOOT, 0, 0, 0, 0, 0, 0)
		err = errnoErr(e)
		allowed = []syscall.Errno{unix.EINVAL}
	case "swapon":
		if !need(0) {
			return usageError("usage: testapp syscall swapon")
		}
		p, perr := unix.BytePtrFromString("/proc/self/no-such-swap-file")
		if perr != nil {
			return failed(perr)
		}
		_, _, e := unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(p)), 0, 0)
		err = errnoErr(e)
		allowed = []syscall.Errno{unix.ENOENT}
	case "keyctl":
		if !need(0) {
			return usageError("usage: testapp syscall keyctl")
		}
		_, err = unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
		allowed = []syscall.Errno{unix.ENOKEY}
	case "ptrace-attach":
		if !need(1) {
			return usageError("usage: testapp syscall ptrace-attach PID")
		}
		pid, perr := strconv.Atoi(args[0])
		if perr != nil {
			return usageError("ptrace-attach: %q is not a PID", args[0])
		}
		err = ptraceAttachDetach(pid)
	case "mknod":
		if !need(1) {
			return usageError("usage: testapp syscall mknod PATH")
		}
		err = unix.Mknod(args[0], unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
	case "sethostname":
		if !need(0) {
			return usageError("usage: testapp syscall sethostname")
		}
		h, herr := os.Hostname()
		if herr != nil {
			return failed(herr)
		}
		err = unix.Sethostname([]byte(h))
	case "chroot":
		if !need(0) {
			return usageError("usage: testapp syscall chroot")
		}
		err = unix.Chroot("/")
	default:
		return usageError("syscall: unknown NAME %q\n%s", name, syscallHelp)
	}
	if err == nil {
		fmt.Println("ok")
		return 0
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return failed(err)
	}
	if slices.Contains(allowed, errno) {
		fmt.Println("ok")
		return 0
	}
	fmt.Println(unix.ErrnoName(errno))
	return 1
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func ptraceAttachDetach(pid int) error {
	// The tracer is the thread: attach, wait and detach from one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceAttach(pid); err != nil {
		return err
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		return err
	}
	return unix.PtraceDetach(pid)
}

func cmdAddrs([]string) int {
	ifaces, err := net.Interfaces()
	if err != nil {
		return failed(err)
	}
	for _, iface := range ifaces {
		addrs, err := iface.Addrs()
		if err != nil {
			return failed(err)
		}
		if len(addrs) == 0 {
			fmt.Println(iface.Name)
		}
		for _, a := range addrs {
			fmt.Printf("%s %s\n", iface.Name, a)
		}
	}
	return 0
}

func cmdHTTP(args []string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		return failed(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h, err := os.Hostname()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello from %s\n", h)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Println("listening on", ln.Addr())
	select {
	case <-term:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		fmt.Println("terminated")
		return 0
	case err := <-served:
		return failed(err)
	}
}

func cmdGet(args []string) int {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(args[0])
	if err != nil {
		return failed(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		return failed(err)
	}
	if resp.StatusCode/100 != 2 {
		fmt.Println("error: HTTP", resp.Status)
		return 1
	}
	return 0
}

func cmdAlloc(args []string) int {
	mb, err := strconv.Atoi(args[0])
	if err != nil || mb < 0 {
		return usageError("alloc: %q is not a number of megabytes", args[0])
	}
	var chunks [][]byte
	for i := 1; i <= mb; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1 // touch every page so that it is really allocated
		}
		chunks = append(chunks, b)
		fmt.Printf("allocated %d MB\n", i)
	}
	runtime.KeepAlive(chunks)
	fmt.Println("done")
	return 0
}

func cmdSpawn(args []string) int {
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 {
		return usageError("spawn: %q is not a number", args[0])
	}
	var started []*exec.Cmd
	for range n {
		cmd := exec.Command("/proc/self/exe", "sleep", "60")
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "spawn: %v\n", err)
			break
		}
		started = append(started, cmd)
	}
	fmt.Printf("spawned %d of %d\n", len(started), n)
	for _, cmd := range started {
		cmd.Process.Kill()
		cmd.Wait()
	}
	return 0
}

// cmdSpin burns CPU time, not wall time: under a CPU quota it takes longer
// but does the same work.
func cmdSpin(args []string) int {
	ms, err := strconv.Atoi(args[0])
	if err != nil || ms < 0 {
		return usageError("spin: %q is not a number of milliseconds", args[0])
	}
	want := time.Duration(ms) * time.Millisecond
	x := uint64(1)
	for cpuTime() < want {
		for range 100000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	fmt.Println("done", x%2)
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func cmdIgnoreTerm([]string) int {
	signal.Ignore(syscall.SIGTERM)
	fmt.Println("ignoring SIGTERM")
	for {
		time.Sleep(time.Hour)
	}
}

func cmdSignalExit([]string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Println("waiting for SIGTERM")
	<-term
	fmt.Println("got SIGTERM")
	return 0
}

func cmdStdin([]string) int {
	if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
		return failed(err)
	}
	return 0
}

func cmdTTY([]string) int {
	for _, f := range []struct {
		name string
		fd   int
	}{{"stdin", 0}, {"stdout", 1}} {
		if _, err := unix.IoctlGetTermios(f.fd, unix.TCGETS); err == nil {
			fmt.Printf("%s is a terminal\n", f.name)
		} else {
			fmt.Printf("%s is not a terminal\n", f.name)
		}
	}
	return 0
}

func cmdPwd([]string) int {
	wd, err := os.Getwd()
	if err != nil {
		return failed(err)
	}
	fmt.Println(wd)
	return 0
}

func cmdExeWrite([]string) int {
	for _, p := range []string{"/proc/1/exe", "/proc/self/exe"} {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err == nil {
			f.Close() // opened, never written
			fmt.Printf("%s: ok\n", p)
			continue
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			fmt.Printf("%s: %s\n", p, unix.ErrnoName(errno))
		} else {
			fmt.Printf("%s: %v\n", p, err)
		}
	}
	return 0
}
