package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"atoll.dev/atoll/internal/runtime/imagetest"
)

// work is the benchmark's temporary directory and the undo steps of what
// it made elsewhere (a podman image, runc containers), run by close in
// reverse order.
type work struct {
	dir   string
	undos []func() error
	seq   int // numbers the files that keep commands' output
}

func newWork(parent string) (*work, error) {
	dir, err := os.MkdirTemp(parent, "atoll-bench-runtime-")
	if err != nil {
		return nil, err
	}
	// Mount points in /proc/self/mountinfo are resolved paths.
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	return &work{dir: dir}, nil
}

// undo registers a clean-up step for close.
func (w *work) undo(step func() error) { w.undos = append(w.undos, step) }

// close runs the undo steps, last first, then removes the directory. Its
// failures are joined to *errp, so that a run that measured everything
// still reports what it could not clean.
func (w *work) close(errp *error) {
	var errs []error
	for _, step := range slices.Backward(w.undos) {
		if err := step(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeTree(w.dir); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		*errp = errors.Join(*errp, fmt.Errorf("clean-up: %w", errors.Join(errs...)))
	}
}

// timed runs argv to completion and returns its wall time. The command
// gets no standard input and its own process group (so that ^C reaches
// only the benchmark, which stops between commands); its output goes to a
// file, not a pipe, so that the time ends when the command exits even if
// something it started keeps the output open.
func (w *work) timed(argv ...string) (time.Duration, error) {
	w.seq++
	outPath := filepath.Join(w.dir, "out", strconv.Itoa(w.seq))
	if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
		return 0, err
	}
	out, err := os.Create(outPath)
	if err != nil {
		return 0, err
	}
	defer os.Remove(outPath)
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	began := time.Now()
	err = cmd.Run()
	took := time.Since(began)
	if err != nil {
		output, _ := os.ReadFile(outPath)
		return 0, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, strings.TrimSpace(string(output)))
	}
	return took, nil
}

// command runs a setup or clean-up command and returns its output.
func command(argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// buildTestApp builds the test program all images hold.
func buildTestApp(out string) error {
	return imagetest.Build(imagetest.TestAppPkg, out)
}

// removeTree removes dir, after detaching whatever is still mounted below
// it (a pod or container stopped half-way): removing through a bind mount
// of /dev or /sys would remove the host's files. A mount that will not go
// keeps the tree, and the error names it.
func removeTree(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	// Deepest first, so that a mount is detached before the one it is in.
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
	if mounts, err = mountsUnder(dir); err != nil {
		return err
	}
	if len(mounts) > 0 {
		return fmt.Errorf("%s not removed: still mounted: %s", dir, strings.Join(mounts, ", "))
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// mountsUnder lists the mount points at or below dir in this process's
// mount namespace.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	return mounts, nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
