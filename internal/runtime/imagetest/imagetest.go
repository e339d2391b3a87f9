// Package imagetest builds container images for the runtime's tests from
// static Go programs of this repository, with no network and no docker:
// Program builds a main package (CGO_ENABLED=0), Image and TestApp make OCI
// images of files and programs, and WriteLayout and WriteDockerArchive
// write them the two ways users import images.
//
// It is for tests only: import it from _test.go files (and the mkimage
// tool of the demo script), never from code that ships. The functions that
// take a testing.TB fail the test on error; each wraps a plain function of
// the same job that returns an error (Build, NewImage, ProgramImage,
// SaveLayout, SaveDockerArchive), which mkimage uses.
//
// The testapp subpackage is the one program most tests run in containers:
// a multi-call tool (`testapp id`, `testapp caps`, `testapp http :80`...);
// TestApp returns its image.
package imagetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestAppPkg is the import path of the test program TestApp packages.
const TestAppPkg = "atoll.dev/atoll/internal/runtime/imagetest/testapp"

// Build builds the main package pkg (an import path, or a directory
// relative to the working directory) statically: CGO_ENABLED=0, -trimpath,
// without symbol tables, for this machine's platform. It writes the binary
// to out. The error holds the compiler's output.
func Build(pkg, out string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", pkg, err, output)
	}
	return nil
}

// builds is the process's cache of Program's binaries. It is the package's
// only mutable state: building a program takes seconds and tests of a
// package ask for the same few programs many times, often in parallel, so
// each program is built once per test process, the first caller building
// and the others waiting for it.
var builds struct {
	mu   sync.Mutex
	dir  string // made by the first build; removed by a later process
	bins map[string]*buildResult
}

type buildResult struct {
	done chan struct{} // closed when path and err are set
	path string
	err  error
}

// Program builds the main package pkg with Build, once per test process
// (safe for parallel tests), and returns the binary's path. The binary is
// named after the package's last element, in a directory of its own. It
// fails the test with the build output on error.
func Program(t testing.TB, pkg string) string {
	t.Helper()
	path, err := program(pkg)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func program(pkg string) (string, error) {
	builds.mu.Lock()
	if builds.bins == nil {
		builds.bins = make(map[string]*buildResult)
	}
	if r, ok := builds.bins[pkg]; ok {
		builds.mu.Unlock()
		<-r.done
		return r.path, r.err
	}
	r := &buildResult{done: make(chan struct{})}
	builds.bins[pkg] = r
	if builds.dir == "" {
		removeStaleBuildDirs()
		dir, err := os.MkdirTemp("", fmt.Sprintf("atoll-imagetest-%d-", os.Getpid()))
		if err != nil {
			builds.mu.Unlock()
			r.err = fmt.Errorf("build %s: %w", pkg, err)
			close(r.done)
			return "", r.err
		}
		builds.dir = dir
	}
	binDir := filepath.Join(builds.dir, strconv.Itoa(len(builds.bins)))
	builds.mu.Unlock()

	r.path = filepath.Join(binDir, ProgramName(pkg))
	if err := os.Mkdir(binDir, 0o755); err != nil {
		r.err = fmt.Errorf("build %s: %w", pkg, err)
	} else {
		r.err = Build(pkg, r.path)
	}
	if r.err != nil {
		r.path = ""
	}
	close(r.done)
	return r.path, r.err
}

// removeStaleBuildDirs removes the build directories of test processes
// that have exited (a process cannot remove its own: the binaries must
// outlive every test, and there is no hook at process exit).
func removeStaleBuildDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "atoll-imagetest-*-*"))
	for _, dir := range dirs {
		f := strings.SplitN(filepath.Base(dir), "-", 4)
		if len(f) != 4 {
			continue
		}
		pid, err := strconv.Atoi(f[2])
		if err != nil || pid == os.Getpid() {
			continue
		}
		fi, err := os.Stat(dir)
		if err != nil || time.Since(fi.ModTime()) < 10*time.Minute {
			continue // young: its process may run in another PID namespace
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// ProgramName is the name of pkg's binary: its last path element (for
// "." or "..", the working directory's).
func ProgramName(pkg string) string {
	base := filepath.Base(pkg)
	if base == "." || base == ".." || base == "/" {
		if abs, err := filepath.Abs(pkg); err == nil {
			base = filepath.Base(abs)
		}
	}
	return base
}

// Image makes an image whose layers are the given file sets, bottom first,
// with config cfg (Entrypoint, Cmd, Env, WorkingDir, User... as given). It
// fails the test on error.
func Image(t testing.TB, cfg v1.Config, layers ...map[string]File) v1.Image {
	t.Helper()
	img, err := NewImage(cfg, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestApp returns a one-layer image of the testapp program: the binary at
// /bin/testapp, BaseFiles (/etc/passwd and /etc/group with root and "app",
// uid and gid 1000, /tmp of mode 1777) and Entrypoint ["/bin/testapp"],
// with PATH set. The Cmd is empty: give the subcommand as the app's
// arguments.
func TestApp(t testing.TB) v1.Image {
	t.Helper()
	img, err := ProgramImage(Program(t, TestAppPkg), v1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// WriteLayout writes img into a new OCI image layout at dir, annotated
// with org.opencontainers.image.ref.name = ref (the name it is imported
// by), and returns dir. It fails the test on error.
func WriteLayout(t testing.TB, dir string, img v1.Image, ref string) string {
	t.Helper()
	if err := SaveLayout(dir, img, ref); err != nil {
		t.Fatal(err)
	}
	return dir
}

// WriteDockerArchive writes img to path as a docker-archive tar (what
// `docker save` writes) tagged ref, and returns path. It fails the test on
// error.
func WriteDockerArchive(t testing.TB, path string, img v1.Image, ref string) string {
	t.Helper()
	if err := SaveDockerArchive(path, img, ref); err != nil {
		t.Fatal(err)
	}
	return path
}
