package stage1

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/caps"
	"atoll.dev/atoll/internal/runtime/pod"
	"atoll.dev/atoll/internal/runtime/seccomp"
)

// confinement is what limits an app's processes: the same for the app and
// for every `atoll pod enter` into it (rkt's CVE-2019-10144 was enter
// running with full privileges).
type confinement struct {
	caps    caps.Set
	filter  []unix.SockFilter // nil: no seccomp filter (--insecure-options=seccomp)
	id      identity
	env     []string
	workDir string
}

// newConfinement computes an app's confinement. It reads the app's
// /etc/passwd and /etc/group, so the caller has already entered the app's
// root.
func newConfinement(m *pod.Manifest, app *pod.App) (*confinement, error) {
	c := &confinement{workDir: app.WorkingDir}
	if c.workDir == "" {
		c.workDir = "/"
	}
	var err error
	if m.Insecure.Capabilities {
		c.caps = caps.All()
	} else if c.caps, err = caps.Parse(app.Caps); err != nil {
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	if !m.Insecure.Seccomp {
		var prof *seccomp.Profile
		if app.Seccomp == "" {
			prof, err = seccomp.Default(c.caps)
		} else {
			prof, err = seccomp.ParseRkt(app.Seccomp, c.caps)
		}
		if err != nil {
			return nil, fmt.Errorf("app %s: seccomp: %w", app.Name, err)
		}
		if c.filter, err = prof.Assemble(); err != nil {
			return nil, fmt.Errorf("app %s: seccomp: %w", app.Name, err)
		}
	}
	if c.id, err = lookupIdentity(app.User, app.Group); err != nil {
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	c.env = withDefaults(app.Env, c.id.home)
	return c, nil
}

// withDefaults adds PATH, HOME and TERM when the app's environment lacks them.
func withDefaults(env []string, home string) []string {
	out := append([]string(nil), env...)
	has := func(key string) bool {
		for _, kv := range out {
			if strings.HasPrefix(kv, key+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		out = append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if !has("HOME") {
		out = append(out, "HOME="+home)
	}
	return out
}

// command builds the app's process from its argv, resolving the program
// with the app's PATH in the current root.
func (c *confinement) command(argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("nothing to run: the image has no entrypoint or command, and none was given")
	}
	path, err := lookPath(argv[0], envValue(c.env, "PATH"))
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Env: c.env, Dir: c.workDir}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: c.id.uid, Gid: c.id.gid, Groups: c.id.groups},
	}
	return cmd, nil
}

// confineThread limits the calling thread (locked, and never unlocked) so
// that what it executes next gets the app's confinement: no_new_privs,
// the capability bounding and inheritable sets, the seccomp filter. These
// are per-thread in Linux; the rest of the process keeps its privileges.
func (c *confinement) confineThread() error {
	if err := os.MkdirAll(c.workDir, 0o755); err != nil {
		return fmt.Errorf("working directory %s: %w", c.workDir, err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if err := caps.ConfineThread(c.caps); err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	if c.filter != nil {
		if err := seccomp.LoadThread(c.filter); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	return nil
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// lookPath finds an executable the way a shell would, in the current root.
// exec.LookPath would read the PATH of this process rather than the app's.
func lookPath(file, path string) (string, error) {
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		return file, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in the app's PATH (%s)", file, path)
}

func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("not an executable file")
	}
	return nil
}
