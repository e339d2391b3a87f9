package stage1

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/pod"
)

// Paths hidden from apps and paths they may only read: runc's defaults
// (libcontainer/specconv/example.go), which Docker and podman share.
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/proc/interrupts",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// device is a node created in the app's /dev.
type device struct {
	name         string
	major, minor uint32
}

// devices are the nodes every app gets, the same set runc creates; the
// device cgroup allows exactly these (see the runtime's cgroup rules).
var devices = []device{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
	{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// rootfs holds what setting up one app's file system needs.
type rootfs struct {
	podDir   string
	manifest *pod.Manifest
	app      *pod.App
	// console is the host path of the terminal given to the app, bound to
	// /dev/console; empty without a terminal.
	console string
}

// etcFiles are the pod directory's files bound over the app's /etc.
var etcFiles = []string{"resolv.conf", "hosts", "hostname"}

// MountPoints are the paths, relative to an app's root, over which stage1
// mounts something (the special filesystems, the /etc files, the volumes):
// what an app's upper directory holds there, stage1 put there, not the app.
func MountPoints(app *pod.App) []string {
	points := []string{"proc", "dev", "sys"}
	for _, f := range etcFiles {
		points = append(points, "etc/"+f)
	}
	for _, m := range app.Mounts {
		points = append(points, strings.TrimPrefix(m.Target, "/"))
	}
	return points
}

// mountAll builds the app's root in the calling thread's private mount
// namespace and makes it the thread's root. The caller has done
// unshare(CLONE_FS|CLONE_NEWNS) on a locked thread.
func (r *rootfs) mountAll() error {
	target := filepath.Join(pod.AppDir(r.podDir, r.app.Name), "rootfs")
	if err := r.mountOverlay(target); err != nil {
		return err
	}
	if err := mountSpecial(target); err != nil {
		return err
	}
	if r.console != "" {
		if err := bindInto(target, r.console, "/dev/console", false, false); err != nil {
			return err
		}
	}
	for _, f := range etcFiles {
		src := filepath.Join(r.podDir, f)
		if _, err := os.Stat(src); err != nil {
			continue
		}
		if err := bindInto(target, src, "/etc/"+f, false, false); err != nil {
			return err
		}
	}
	for _, m := range r.app.Mounts {
		v, ok := r.manifest.Volume(m.Volume)
		if !ok {
			return fmt.Errorf("mount %s: no volume named %q", m.Target, m.Volume)
		}
		src := v.Source
		if v.Kind == "empty" {
			src = filepath.Join(r.podDir, "volumes", v.Name)
		}
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("volume %q: %w", v.Name, err)
		}
		if err := bindInto(target, src, m.Target, !st.IsDir(), v.ReadOnly); err != nil {
			return fmt.Errorf("volume %q: %w", v.Name, err)
		}
	}
	if !r.manifest.Insecure.Paths {
		if err := maskPaths(target); err != nil {
			return err
		}
	}
	if err := pivotRoot(target); err != nil {
		return err
	}
	if r.app.ReadOnlyRootfs {
		if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("read-only root: %w", err)
		}
	}
	return nil
}

// mountOverlay mounts the image layers (read-only) under the app's own
// upper directory at target.
func (r *rootfs) mountOverlay(target string) error {
	appDir := pod.AppDir(r.podDir, r.app.Name)
	lower := make([]string, len(r.app.Layers))
	for i, l := range r.app.Layers {
		lower[len(lower)-1-i] = l // overlayfs lists the top layer first
	}
	if len(lower) == 0 {
		return fmt.Errorf("app %s: image has no layers", r.app.Name)
	}
	upper, work := filepath.Join(appDir, "upper"), filepath.Join(appDir, "work")
	opts := "lowerdir=" + strings.Join(lower, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(opts) < unix.Getpagesize()-1 {
		if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
			return fmt.Errorf("mount app %s root (overlay): %w", r.app.Name, err)
		}
		return nil
	}
	// Too many layers for one page of options: hand them over one by one
	// with the new mount API (lowerdir+, Linux 6.8).
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("mount app %s root: %d layers: %w", r.app.Name, len(lower), err)
	}
	defer unix.Close(fd)
	for _, l := range lower {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			return fmt.Errorf("mount app %s root: layer %s: %w", r.app.Name, l, err)
		}
	}
	if err := unix.FsconfigSetString(fd, "upperdir", upper); err != nil {
		return fmt.Errorf("mount app %s root: %w", r.app.Name, err)
	}
	if err := unix.FsconfigSetString(fd, "workdir", work); err != nil {
		return fmt.Errorf("mount app %s root: %w", r.app.Name, err)
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("mount app %s root: %w", r.app.Name, err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("mount app %s root: %w", r.app.Name, err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount app %s root: %w", r.app.Name, err)
	}
	return nil
}

// mountSpecial mounts /proc, /dev (a tmpfs with the allowed nodes), its
// pts, shm and mqueue, and a read-only /sys.
func mountSpecial(root string) error {
	const nosuidNodev = unix.MS_NOSUID | unix.MS_NODEV
	mounts := []struct {
		source, target, fstype string
		flags                  uintptr
		data                   string
	}{
		{"proc", "/proc", "proc", nosuidNodev | unix.MS_NOEXEC, ""},
		{"tmpfs", "/dev", "tmpfs", unix.MS_NOSUID | unix.MS_STRICTATIME, "mode=755,size=65536k"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{"shm", "/dev/shm", "tmpfs", nosuidNodev | unix.MS_NOEXEC, "mode=1777,size=65536k"},
		{"mqueue", "/dev/mqueue", "mqueue", nosuidNodev | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", "sysfs", nosuidNodev | unix.MS_NOEXEC | unix.MS_RDONLY, ""},
	}
	for _, m := range mounts {
		dst, err := mkdirIn(root, m.target)
		if err != nil {
			return err
		}
		if err := unix.Mount(m.source, dst, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
	}
	dev := filepath.Join(root, "dev")
	for _, d := range devices {
		path := filepath.Join(dev, d.name)
		if err := unix.Mknod(path, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("create /dev/%s: %w", d.name, err)
		}
		// mknod obeys the umask; the nodes must be usable by every user.
		if err := unix.Chmod(path, 0o666); err != nil {
			return fmt.Errorf("create /dev/%s: %w", d.name, err)
		}
	}
	links := [][2]string{
		{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"},
	}
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil {
			return fmt.Errorf("create /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// mkdirIn resolves path inside root (symlinks in the image cannot lead
// out of it) and makes it a directory.
func mkdirIn(root, path string) (string, error) {
	dst, err := securejoin.SecureJoin(root, path)
	if err != nil {
		return "", fmt.Errorf("resolve %s in the app's root: %w", path, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	return dst, nil
}

// bindInto bind-mounts src (a host path) at path inside root, creating the
// mount point as a file or a directory like src.
func bindInto(root, src, path string, file, readOnly bool) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("bind %s: %w", path, err)
	}
	dst, err := securejoin.SecureJoin(root, path)
	if err != nil {
		return fmt.Errorf("resolve %s in the app's root: %w", path, err)
	}
	if st.IsDir() {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("bind %s: %w", path, err)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("bind %s: %w", path, err)
		}
		f, err := os.OpenFile(dst, os.O_CREATE|unix.O_NOFOLLOW, 0o644)
		if err != nil {
			return fmt.Errorf("bind %s: %w", path, err)
		}
		f.Close()
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s at %s: %w", src, path, err)
	}
	if readOnly {
		if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s read-only: %w", path, err)
		}
	}
	return nil
}

// maskPaths hides the masked paths (an empty read-only tmpfs over a
// directory, /dev/null over a file) and makes the read-only ones so.
func maskPaths(root string) error {
	for _, p := range maskedPaths {
		dst := filepath.Join(root, p) // under /proc and /sys, which we mounted: no symlinks of the image's
		st, err := os.Stat(dst)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
		if st.IsDir() {
			err = unix.Mount("tmpfs", dst, "tmpfs", unix.MS_RDONLY, "size=0")
		} else {
			err = unix.Mount(filepath.Join(root, "dev/null"), dst, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	for _, p := range readonlyPaths {
		dst := filepath.Join(root, p)
		if _, err := os.Stat(dst); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := unix.Mount(dst, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("read-only %s: %w", p, err)
		}
		if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_REC|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("read-only %s: %w", p, err)
		}
	}
	return nil
}

// pivotRoot makes root the root of the calling thread's mount namespace and
// detaches the old root, so nothing of the host stays reachable.
func pivotRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on the new one; detaching
	// "." then removes it without needing a directory for it in the image.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	return nil
}
