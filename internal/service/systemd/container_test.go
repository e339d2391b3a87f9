package systemd

// TestUnderSystemdPID1 boots systemd as PID 1 of a container made from
// this machine's own filesystem and runs the package's systemd tests in
// it, for machines (CI boxes, containers) where systemd is installed but
// is not PID 1. No image is downloaded: the container's root is an
// overlay whose lower layer is a non-recursive bind of / (so none of the
// host's /proc, /sys, /dev or other mounts), whose upper layer is a tmpfs,
// with fresh /proc, read-only /sys, a cgroup2 hierarchy, a small /dev,
// and tmpfs /run and /tmp. It runs in new mount, PID, UTS, IPC, network
// and cgroup namespaces: its network is a loopback device and nothing
// else, and its cgroup namespace is rooted at a cgroup of its own in the
// host's v2 hierarchy, which systemd runs in unified mode.
//
// The test binary plays two parts besides its tests. As the container's
// first process (ATOLL_SYSTEMD_CT=init) it builds the root, pivots into
// it and executes systemd with a target of its own: basic.target, then a
// service that runs the test binary again (ATOLL_SYSTEMD_CT=inside) with
// -test.run for the systemd tests, writing their output and exit status
// to a directory bound in from the host, and has systemd exit when it
// ends (SuccessAction=exit-force). The output is logged here; a failure
// inside fails this test, with the container's journal.
//
// Clean-up holds however the test ends: the container's init dies with
// this process (its parent-death signal), killing every process of the
// PID namespace; the mounts and the network namespace go with their last
// process; the cgroup is emptied and removed after, and one left by a
// killed run is removed by the next.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/service/servicetest"
)

// The environment variables of the test binary's parts.
const (
	// ctRole is "init" for the container's first process, "inside" for
	// the tests run by the container's systemd.
	ctRole = "ATOLL_SYSTEMD_CT"
	// ctDir is the test's directory on the host; its out/ is shared
	// with the container.
	ctDir = "ATOLL_SYSTEMD_CT_DIR"
	// ctExe is the test binary, bound at the same path in the
	// container.
	ctExe = "ATOLL_SYSTEMD_CT_EXE"
	// ctSystemd is systemd's path.
	ctSystemd = "ATOLL_SYSTEMD_CT_SYSTEMD"
	// ctArgs are the arguments of the tests in the container, one a
	// line.
	ctArgs = "ATOLL_SYSTEMD_CT_ARGS"
	// ctRun, set by whoever runs TestUnderSystemdPID1, narrows the tests
	// run in the container (-test.run), as in
	// ATOLL_SYSTEMD_CT_RUN=TestConformance/Notify.
	ctRun = "ATOLL_SYSTEMD_CT_RUN"
)

// ctCgroupPrefix names the containers' cgroups in the host's v2
// hierarchy: atoll-ct-PID-RANDOM.
const ctCgroupPrefix = "atoll-ct-"

func TestMain(m *testing.M) {
	servicetest.RunHelper()
	if os.Getenv(ctRole) == "init" {
		err := containerInit()
		// containerInit returns only when it could not start systemd.
		fmt.Fprintln(os.Stderr, "container init:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestUnderSystemdPID1(t *testing.T) {
	switch {
	case os.Getenv(ctRole) != "":
		t.Skip("in the container already")
	case os.Geteuid() != 0:
		t.Skip("needs root: boots systemd as PID 1 of a container")
	case systemdIsPID1():
		t.Skip("systemd is PID 1 here: the systemd tests ran without a container")
	}
	systemd := ""
	for _, p := range []string{"/lib/systemd/systemd", "/usr/lib/systemd/systemd"} {
		if _, err := os.Stat(p); err == nil {
			systemd = p
			break
		}
	}
	if systemd == "" {
		t.Skip("needs systemd installed (/lib/systemd/systemd)")
	}
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("needs journalctl")
	}
	if fs, _ := os.ReadFile("/proc/filesystems"); !bytes.Contains(fs, []byte("\toverlay\n")) {
		t.Skip("needs overlayfs")
	}
	v2 := cgroup2Root()
	if v2 == "" {
		t.Skip("needs a cgroup v2 hierarchy (unified or hybrid)")
	}
	removeStaleCgroups(t, v2)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{exe, dir} {
		if strings.ContainsAny(p, " \t\n'\"\\$%") {
			t.Skipf("needs paths a unit file can hold without quoting, not %q", p)
		}
	}

	var id [4]byte
	rand.Read(id[:])
	cgroup := filepath.Join(v2, fmt.Sprintf("%s%d-%s", ctCgroupPrefix, os.Getpid(), hex.EncodeToString(id[:])))
	if err := os.Mkdir(cgroup, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeCgroupTree(cgroup); err != nil {
			t.Errorf("remove the container's cgroup: %v", err)
		}
	})
	cgroupFD, err := unix.Open(cgroup, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cgroupFD)

	timeout := 15 * time.Minute
	if d, ok := t.Deadline(); ok && time.Until(d)-time.Minute < timeout {
		timeout = time.Until(d) - time.Minute
	}
	run := "^(TestConformance|TestSystemd)"
	if r := os.Getenv(ctRun); r != "" {
		run = r
	}
	args := []string{
		"-test.run=" + run,
		"-test.v",
		"-test.count=1",
		"-test.timeout=" + (timeout - 30*time.Second).String(),
	}
	initLog, err := os.Create(filepath.Join(out, "init.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer initLog.Close()
	cmd := exec.Command(exe)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		ctRole + "=init",
		ctDir + "=" + dir,
		ctExe + "=" + exe,
		ctSystemd + "=" + systemd,
		ctArgs + "=" + strings.Join(args, "\n"),
	}
	cmd.Stdout, cmd.Stderr = initLog, initLog
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET | syscall.CLONE_NEWCGROUP,
		// Cloned into the cgroup, which becomes its cgroup namespace's
		// root.
		UseCgroupFD: true,
		CgroupFD:    cgroupFD,
		// If this process dies, so does the container.
		Pdeathsig: syscall.SIGKILL,
		Setsid:    true,
	}

	began := time.Now()
	done := make(chan error, 1)
	started := make(chan error, 1)
	go func() {
		// The parent-death signal is sent when the thread that forked
		// ends, not the process: keep the thread until the end.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		t.Fatalf("start the container: %v", err)
	}
	var waitErr error
	select {
	case waitErr = <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Errorf("the container ran for %v and was killed", timeout)
	}
	total := time.Since(began)

	testLog, _ := os.ReadFile(filepath.Join(out, "test.log"))
	t.Logf("tests in the container:\n%s", testLog)
	if fi, err := os.Stat(filepath.Join(out, "booted")); err == nil {
		t.Logf("systemd booted to the tests in %v; all took %v", fi.ModTime().Sub(began).Round(time.Millisecond), total.Round(time.Millisecond))
	}
	status, err := os.ReadFile(filepath.Join(out, "status"))
	if err != nil {
		initOut, _ := os.ReadFile(filepath.Join(out, "init.log"))
		journal, _ := os.ReadFile(filepath.Join(out, "journal.log"))
		t.Fatalf("the container ended (%v) without the tests' exit status; its init said:\n%s\nits journal:\n%s", waitErr, initOut, journal)
	}
	if s := strings.TrimSpace(string(status)); s != "0" {
		journal, _ := os.ReadFile(filepath.Join(out, "journal.log"))
		t.Errorf("the tests in the container exited with status %s; the container's journal:\n%s", s, journal)
	}
}

// systemdIsPID1 reports whether systemd runs this machine, as
// sd_booted(3) tells.
func systemdIsPID1() bool {
	fi, err := os.Stat("/run/systemd/system")
	if err != nil || !fi.IsDir() {
		return false
	}
	comm, _ := os.ReadFile("/proc/1/comm")
	return strings.TrimSpace(string(comm)) == "systemd"
}

// cgroup2Root is where the host's v2 hierarchy is mounted: /sys/fs/cgroup
// when unified, /sys/fs/cgroup/unified when hybrid; "" if neither.
func cgroup2Root() string {
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p
		}
	}
	return ""
}

// removeStaleCgroups removes the cgroups of containers whose test process
// is gone (it was killed before its clean-up ran).
func removeStaleCgroups(t *testing.T, v2 string) {
	dirs, _ := filepath.Glob(filepath.Join(v2, ctCgroupPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), ctCgroupPrefix)
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || unix.Kill(pid, 0) == nil {
			continue
		}
		if err := removeCgroupTree(d); err != nil {
			t.Logf("a stale container cgroup: %v", err)
		}
	}
}

// removeCgroupTree kills what is left in a cgroup tree and removes it,
// deepest first.
func removeCgroupTree(root string) error {
	if _, err := os.Stat(root); os.IsNotExist(err) {
		return nil
	}
	if populated(root) {
		os.WriteFile(filepath.Join(root, "cgroup.kill"), []byte("1"), 0o644)
		deadline := time.Now().Add(30 * time.Second)
		for populated(root) {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: processes left after cgroup.kill", root)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var dirs []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}

// populated reads a v2 cgroup's "populated" key: whether a process is in
// it or below.
func populated(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	return err == nil && bytes.Contains(data, []byte("populated 1"))
}

// containerInit is the container's first process: it builds the root and
// executes systemd, returning only if it could not.
func containerInit() error {
	dir, exe, systemd := os.Getenv(ctDir), os.Getenv(ctExe), os.Getenv(ctSystemd)
	out := filepath.Join(dir, "out")
	args := strings.Split(os.Getenv(ctArgs), "\n")

	// Nothing done below reaches the host's mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	stage := filepath.Join(dir, "stage")
	lower, upper, work, root := filepath.Join(stage, "lower"), filepath.Join(stage, "upper"), filepath.Join(stage, "work"), filepath.Join(stage, "root")
	steps := []struct {
		what string
		do   func() error
	}{
		{"stage", func() error { return mountAt("tmpfs", stage, "tmpfs", 0, "mode=755") }},
		{"layers", func() error { return mkdirs(lower, upper, work, root) }},
		// Not recursive: the host's other mounts stay out.
		{"lower layer", func() error { return unix.Mount("/", lower, "", unix.MS_BIND, "") }},
		{"overlay", func() error {
			return unix.Mount("overlay", root, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work)
		}},
		{"/proc", func() error {
			return mountAt("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		}},
		{"/sys", func() error {
			return mountAt("sysfs", filepath.Join(root, "sys"), "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		}},
		{"/sys/fs/cgroup", func() error {
			return mountAt("cgroup2", filepath.Join(root, "sys/fs/cgroup"), "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		}},
		{"/dev", func() error { return makeDev(filepath.Join(root, "dev"), filepath.Join(out, "console.log")) }},
		{"/run", func() error {
			return mountAt("tmpfs", filepath.Join(root, "run"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755")
		}},
		{"/tmp", func() error {
			return mountAt("tmpfs", filepath.Join(root, "tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777")
		}},
		{"shared directory", func() error { return bindAt(out, filepath.Join(root, out), false) }},
		{"test binary", func() error { return bindAt(exe, filepath.Join(root, exe), true) }},
		{"units", func() error { return writeContainerUnits(root, out, exe, args) }},
		{"hostname", func() error { return unix.Sethostname([]byte("atoll-ct")) }},
		{"pivot", func() error { return pivot(root) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return unix.Exec(systemd, []string{systemd, "--unit=atoll-ct.target"}, []string{"container=atoll-test"})
}

func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func mountAt(source, target, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
	}
	return nil
}

// bindAt binds a file or directory at target, read-only if asked.
func bindAt(source, target string, readOnly bool) error {
	fi, err := os.Stat(source)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
		err = os.WriteFile(target, nil, 0o644)
	}
	if err != nil {
		return err
	}
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", source, target, err)
	}
	if readOnly {
		return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
	return nil
}

// makeDev makes a small /dev as container managers give one: the basic
// character devices bound from the host's, a devpts of its own, shm,
// and a console that is a file of the shared directory.
func makeDev(dev, console string) error {
	if err := mountAt("tmpfs", dev, "tmpfs", unix.MS_NOSUID, "mode=755"); err != nil {
		return err
	}
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		if err := bindAt("/dev/"+name, filepath.Join(dev, name), false); err != nil {
			return err
		}
	}
	if err := mountAt("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"); err != nil {
		return err
	}
	if err := os.Symlink("pts/ptmx", filepath.Join(dev, "ptmx")); err != nil {
		return err
	}
	if err := mountAt("tmpfs", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return err
	}
	if err := os.WriteFile(console, nil, 0o644); err != nil {
		return err
	}
	return bindAt(console, filepath.Join(dev, "console"), false)
}

// writeContainerUnits writes, into the overlay, the container's machine
// ID and the units that run the tests.
func writeContainerUnits(root, out, exe string, args []string) error {
	var id [16]byte
	rand.Read(id[:])
	etc := filepath.Join(root, "etc/systemd/system")
	// The shell reads the arguments: each in double quotes (they hold
	// a regular expression, and no quote or $ of their own).
	run := exe + ` "` + strings.Join(args, `" "`) + `"`
	files := map[string]string{
		filepath.Join(root, "etc/machine-id"): hex.EncodeToString(id[:]) + "\n",
		filepath.Join(etc, "atoll-ct.target"): `[Unit]
Description=atoll container test run
Requires=basic.target
After=basic.target
Wants=atoll-ct-run.service
`,
		filepath.Join(etc, "atoll-ct-run.service"): `[Unit]
Description=atoll systemd backend tests
Wants=systemd-journald.service
After=systemd-journald.service
SuccessAction=exit-force
FailureAction=exit-force
[Service]
Environment=` + ctRole + `=inside
ExecStartPre=/bin/touch ` + out + `/booted
ExecStart=/bin/sh -c '` + run + ` > ` + out + `/test.log 2>&1; echo $$? > ` + out + `/status'
ExecStopPost=/bin/sh -c 'journalctl --boot --no-pager > ` + out + `/journal.log 2>&1'
`,
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	// Timers (apt's, fstrim's) would fire at boot; the tests want a
	// quiet machine.
	return os.Symlink("/dev/null", filepath.Join(etc, "timers.target"))
}

// pivot makes root the root of the mount namespace and lets go of the
// old one.
func pivot(root string) error {
	old := filepath.Join(root, ".atoll-old-root")
	if err := os.MkdirAll(old, 0o700); err != nil {
		return err
	}
	if err := unix.PivotRoot(root, old); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Unmount("/.atoll-old-root", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount the old root: %w", err)
	}
	return os.Remove("/.atoll-old-root")
}
