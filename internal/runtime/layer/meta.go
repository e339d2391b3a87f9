package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const paxXattrPrefix = "SCHILY.xattr."

// maxID is the largest uid or gid chown takes: (uid_t)-1 means "leave it".
const maxID = 1<<32 - 2

func (a *applier) owner(hdr *tar.Header) (uid, gid int, err error) {
	if !a.opts.Chown {
		return -1, -1, nil
	}
	if hdr.Uid < 0 || hdr.Uid > maxID || hdr.Gid < 0 || hdr.Gid > maxID {
		return 0, 0, fmt.Errorf("%w: owner %d:%d out of range", ErrInvalidEntry, hdr.Uid, hdr.Gid)
	}
	return hdr.Uid, hdr.Gid, nil
}

// mode keeps the permission bits and setuid, setgid and sticky.
func mode(hdr *tar.Header) uint32 { return uint32(hdr.Mode) & 0o7777 }

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func times(hdr *tar.Header) [2]unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		// Only PAX and GNU headers carry an atime.
		atime = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
}

func setTimes(dfd int, name string, hdr *tar.Header) error {
	ts := times(hdr)
	if err := unix.UtimesNanoAt(dfd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// xattrAllowed says which xattrs a layer may set. user.* exists only on
// regular files and directories. trusted.overlay.* would steer overlayfs
// (opaque directories, redirects, metacopy), so a layer never sets it; other
// security.* (SELinux labels and the like) belong to the host's policy.
func xattrAllowed(name string, fileOrDir bool) bool {
	switch {
	case strings.HasPrefix(name, "user."):
		return fileOrDir
	case name == "security.capability":
		return true
	case strings.HasPrefix(name, "trusted.overlay."):
		return false
	case strings.HasPrefix(name, "trusted."):
		return true
	}
	return false
}

func hasXattrs(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattrPrefix) {
			return true
		}
	}
	return false
}

// setXattrs sets the entry's allowed xattrs with set. When we are not root,
// one the kernel refuses with EPERM (trusted.*, security.capability) or
// ENOTSUP (a filesystem without user xattrs) is skipped: a rootless unpack
// loses file capabilities rather than failing.
func (a *applier) setXattrs(hdr *tar.Header, fileOrDir bool, set func(name string, value []byte) error) error {
	var names []string
	for k := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattrPrefix); ok && xattrAllowed(name, fileOrDir) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		err := set(name, []byte(hdr.PAXRecords[paxXattrPrefix+name]))
		if err != nil && !a.isRoot && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP)) {
			continue
		}
		if err != nil {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// dirMeta is what is left to do to a directory entry once the stream is
// written: its mode (so that a read-only directory still gets its children
// when we are not root) and its times (which writing children changes).
type dirMeta struct {
	entry string // the tar name, for errors
	path  string // cleaned, "" for the root
	depth int
	key   devIno // the directory the entry made or kept
	mode  uint32
	times [2]unix.Timespec
}

func (a *applier) deferDir(path string, hdr *tar.Header, key devIno) {
	m := dirMeta{entry: hdr.Name, path: path, key: key, mode: mode(hdr), times: times(hdr)}
	if path != "" {
		m.depth = strings.Count(path, "/") + 1
	}
	if i, ok := a.dirIndex[path]; ok {
		a.dirs[i] = m
		return
	}
	a.dirIndex[path] = len(a.dirs)
	a.dirs = append(a.dirs, m)
}

// finishDirs sets the deferred directory metadata, deepest first so that a
// parent's mode never stands in the way of its children. A directory that a
// later entry removed or replaced (it is no longer at its path, or another
// inode is) is left alone.
func (a *applier) finishDirs() error {
	sort.Slice(a.dirs, func(i, j int) bool {
		if a.dirs[i].depth != a.dirs[j].depth {
			return a.dirs[i].depth > a.dirs[j].depth
		}
		return a.dirs[i].path < a.dirs[j].path
	})
	for _, m := range a.dirs {
		if err := a.finishDir(m); err != nil {
			return fmt.Errorf("layer entry %q: %w", m.entry, err)
		}
	}
	return nil
}

func (a *applier) finishDir(m dirMeta) error {
	dfd, name := a.root, "."
	if m.path != "" {
		parent, base := "", m.path
		if i := strings.LastIndexByte(m.path, '/'); i >= 0 {
			parent, base = m.path[:i], m.path[i+1:]
		}
		d, err := a.lookupDir(parent, false)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("parent directory %q: %w", parent, err)
		}
		dfd, name = d.fd, base
	}
	var st unix.Stat_t
	err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat directory: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || (devIno{uint64(st.Dev), uint64(st.Ino)}) != m.key {
		return nil
	}
	if err := unix.Fchmodat(dfd, name, m.mode, 0); err != nil {
		return fmt.Errorf("chmod %o: %w", m.mode, err)
	}
	if err := unix.UtimesNanoAt(dfd, name, m.times[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// whiteout handles ".wh.NAME" and the opaque marker in parent.
func (a *applier) whiteout(parent, name string) error {
	if name == opaqueMarker {
		a.stats.Whiteouts++
		return a.opaque(parent)
	}
	if strings.HasPrefix(name, whiteoutMetaPrefix) {
		// Reserved (aufs hardlink metadata and the like): nothing to do.
		return nil
	}
	target := name[len(whiteoutPrefix):]
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("%w: whiteout %q names nothing", ErrInvalidEntry, name)
	}
	a.stats.Whiteouts++
	if a.opts.Mode == Overlay {
		d, err := a.parent(parent, true)
		if err != nil {
			return err
		}
		err = unix.Mknodat(d.fd, target, unix.S_IFCHR, 0)
		if errors.Is(err, unix.EEXIST) {
			// This layer wrote NAME itself, and a whiteout hides
			// only lower layers' files.
			return nil
		}
		if err != nil {
			return fmt.Errorf("create whiteout device %q: %w", target, err)
		}
		return nil
	}
	d, err := a.lookupDir(parent, false)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing below to hide
	}
	if err != nil {
		return fmt.Errorf("parent directory %q: %w", parent, err)
	}
	a.invalidate()
	if _, err := a.pruneLower(d.fd, d.key, target); err != nil {
		return fmt.Errorf("remove %q: %w", target, err)
	}
	return nil
}

func (a *applier) opaque(dir string) error {
	if a.opts.Mode == Overlay {
		d, err := a.parent(dir, true)
		if err != nil {
			return err
		}
		fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open opaque directory: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("mark directory opaque: %w", err)
		}
		return nil
	}
	d, err := a.lookupDir(dir, false)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opaque directory %q: %w", dir, err)
	}
	a.invalidate()
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open opaque directory: %w", err)
	}
	defer unix.Close(fd)
	names, err := readNames(fd)
	if err != nil {
		return fmt.Errorf("read opaque directory: %w", err)
	}
	for _, n := range names {
		if _, err := a.pruneLower(fd, d.key, n); err != nil {
			return fmt.Errorf("empty opaque directory: remove %q: %w", n, err)
		}
	}
	return nil
}

// pruneLower removes name from the directory dfd (whose inode is dkey), with
// the exception of whatever this layer wrote: an entry this layer wrote is
// kept, and a directory is kept if anything in its tree was (its other
// children going). kept says whether anything was kept.
func (a *applier) pruneLower(dfd int, dkey devIno, name string) (kept bool, err error) {
	if len(a.written) == 0 {
		return false, removeAllAt(dfd, name)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	_, written := a.written[nameKey{dkey, name}]
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if written {
			return true, nil
		}
		return false, unix.Unlinkat(dfd, name, 0)
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	names, err := readNames(fd)
	key := devIno{uint64(st.Dev), uint64(st.Ino)}
	anyKept := false
	for _, n := range names {
		if err != nil {
			break
		}
		var k bool
		k, err = a.pruneLower(fd, key, n)
		anyKept = anyKept || k
	}
	unix.Close(fd)
	if err != nil {
		return false, err
	}
	if written || anyKept {
		return true, nil
	}
	return false, unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
}
