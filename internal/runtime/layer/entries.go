package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"
)

// Every function here works on a directory handle from lookupDir and a
// single final name, with *at calls that do not follow a symlink in that
// name. Where a call does follow (fchmodat), the name was created or checked
// a moment before by this process.

func (a *applier) parent(path string, create bool) (dirHandle, error) {
	d, err := a.lookupDir(path, create)
	if err != nil {
		return dirHandle{}, fmt.Errorf("parent directory %q: %w", path, err)
	}
	return d, nil
}

func (a *applier) regular(parent, name string, hdr *tar.Header, r io.Reader) error {
	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	d, err := a.parent(parent, true)
	if err != nil {
		return err
	}
	fd := -1
	err = a.replace(d, name, func() (err error) {
		// O_EXCL: an existing name, symlink or not, is removed first
		// rather than written through or truncated (it may be a hardlink
		// to a lower layer's file).
		fd, err = unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	a.markWritten(d, name)
	a.stats.Files++
	err = a.fillFile(fd, d, name, uid, gid, hdr, r)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close file: %w", cerr)
	}
	return err
}

func (a *applier) fillFile(fd int, d dirHandle, name string, uid, gid int, hdr *tar.Header, r io.Reader) error {
	if hdr.Size > 0 {
		if a.buf == nil {
			a.buf = make([]byte, copyBufSize)
		}
		n, err := io.CopyBuffer(fdWriter(fd), r, a.buf)
		a.stats.Bytes += n
		if err != nil {
			return fmt.Errorf("write content: %w", err)
		}
	}
	// chown before chmod, since chown clears setuid and setgid; xattrs
	// after chown, since chown clears security.capability.
	if a.opts.Chown {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
		}
	}
	if err := unix.Fchmod(fd, mode(hdr)); err != nil {
		return fmt.Errorf("chmod %o: %w", mode(hdr), err)
	}
	if err := a.setXattrs(hdr, true, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) }); err != nil {
		return err
	}
	return setTimes(d.fd, name, hdr)
}

func (a *applier) dir(parent, name, path string, hdr *tar.Header) error {
	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	d, err := a.parent(parent, true)
	if err != nil {
		return err
	}
	err = unix.Mkdirat(d.fd, name, 0o755)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err = unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			// Not a directory (a symlink to one counts as not): replace.
			if err = a.removeAt(d.fd, name); err == nil {
				err = unix.Mkdirat(d.fd, name, 0o755)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat directory: %w", err)
	}
	a.markWritten(d, name)
	a.stats.Dirs++
	if a.opts.Chown {
		if err := unix.Fchownat(d.fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
		}
	}
	if hasXattrs(hdr) {
		fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open directory for xattrs: %w", err)
		}
		err = a.setXattrs(hdr, true, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) })
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	a.deferDir(path, hdr, devIno{uint64(st.Dev), uint64(st.Ino)})
	return nil
}

// rootDir applies a "./" entry to dir itself.
func (a *applier) rootDir(hdr *tar.Header) error {
	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	a.stats.Dirs++
	if a.opts.Chown {
		if err := unix.Fchown(a.root, uid, gid); err != nil {
			return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
		}
	}
	if err := a.setXattrs(hdr, true, func(k string, v []byte) error { return unix.Fsetxattr(a.root, k, v, 0) }); err != nil {
		return err
	}
	a.deferDir("", hdr, a.rootKey)
	return nil
}

func (a *applier) symlink(parent, name string, hdr *tar.Header) error {
	if hdr.Linkname == "" {
		return fmt.Errorf("%w: symlink with an empty target", ErrInvalidEntry)
	}
	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	d, err := a.parent(parent, true)
	if err != nil {
		return err
	}
	// The target is stored as the tar says, absolute or not: it is only
	// ever followed inside the root, here by lookupDir and later by the
	// container's own root.
	if err := a.replace(d, name, func() error { return unix.Symlinkat(hdr.Linkname, d.fd, name) }); err != nil {
		return fmt.Errorf("create symlink: %w", err)
	}
	a.markWritten(d, name)
	a.stats.Symlinks++
	return a.specialMeta(d, name, uid, gid, hdr, false)
}

func (a *applier) fifo(parent, name string, hdr *tar.Header) error {
	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	d, err := a.parent(parent, true)
	if err != nil {
		return err
	}
	if err := a.replace(d, name, func() error { return unix.Mknodat(d.fd, name, unix.S_IFIFO|0o600, 0) }); err != nil {
		return fmt.Errorf("create fifo: %w", err)
	}
	a.markWritten(d, name)
	a.stats.Files++
	return a.specialMeta(d, name, uid, gid, hdr, true)
}

// specialMeta sets the metadata of a symlink or fifo, which cannot be opened
// for fchown and friends without following (symlink) or blocking (fifo).
func (a *applier) specialMeta(d dirHandle, name string, uid, gid int, hdr *tar.Header, chmod bool) error {
	if a.opts.Chown {
		if err := unix.Fchownat(d.fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
		}
	}
	if chmod {
		if err := unix.Fchmodat(d.fd, name, mode(hdr), 0); err != nil {
			return fmt.Errorf("chmod %o: %w", mode(hdr), err)
		}
	}
	if hasXattrs(hdr) {
		// No setxattrat before Linux 6.13: name the entry through the
		// parent's fd in /proc and let lsetxattr not follow it.
		p := fmt.Sprintf("/proc/self/fd/%d/%s", d.fd, name)
		if err := a.setXattrs(hdr, false, func(k string, v []byte) error { return unix.Lsetxattr(p, k, v, 0) }); err != nil {
			return err
		}
	}
	return setTimes(d.fd, name, hdr)
}

func (a *applier) hardlink(parent, name string, hdr *tar.Header) error {
	tcomps, err := splitName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrHardlinkTarget, hdr.Linkname, err)
	}
	if len(tcomps) == 0 {
		return fmt.Errorf("%w %q: names the layer root", ErrHardlinkTarget, hdr.Linkname)
	}
	tparent := strings.Join(tcomps[:len(tcomps)-1], "/")
	tname := tcomps[len(tcomps)-1]
	td, err := a.lookupDir(tparent, false)
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrHardlinkTarget, hdr.Linkname, err)
	}
	var tst unix.Stat_t
	if err := unix.Fstatat(td.fd, tname, &tst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%w %q: %w", ErrHardlinkTarget, hdr.Linkname, err)
	}
	if tst.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("%w %q: is a directory", ErrHardlinkTarget, hdr.Linkname)
	}
	// lookupDir keeps the last few handles open, so td survives this.
	d, err := a.parent(parent, true)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Dev == tst.Dev && st.Ino == tst.Ino {
		// Already that file (a duplicate entry, or a link to itself):
		// removing it first would lose the target.
		a.markWritten(d, name)
		a.stats.Hardlinks++
		return nil
	}
	// Flags 0: a target that is a symlink is linked itself, not followed.
	err = a.replace(d, name, func() error { return unix.Linkat(td.fd, tname, d.fd, name, 0) })
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EPERM), errors.Is(err, unix.EXDEV), errors.Is(err, unix.EMLINK):
		// ENOENT here: replacing name removed the target with it.
		return fmt.Errorf("%w %q: %w", ErrHardlinkTarget, hdr.Linkname, err)
	case err != nil:
		return fmt.Errorf("create hardlink: %w", err)
	}
	a.markWritten(d, name)
	a.stats.Hardlinks++
	return nil
}

// replace calls mk to create a non-directory entry; when the name is taken, it
// removes what is there (a directory with its whole tree) and calls mk again.
func (a *applier) replace(d dirHandle, name string, mk func() error) error {
	err := mk()
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := a.removeAt(d.fd, name); err != nil {
		return fmt.Errorf("remove existing: %w", err)
	}
	return mk()
}

// removeAt removes name from dfd, with its tree if it is a directory.
func (a *applier) removeAt(dfd int, name string) error {
	a.invalidate()
	return removeAllAt(dfd, name)
}

func removeAllAt(dfd int, name string) error {
	err := unix.Unlinkat(dfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return err
	}
	err = unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
		return err
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	for _, n := range names {
		if err != nil {
			break
		}
		err = removeAllAt(fd, n)
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
}

// readNames lists a directory opened for reading, without "." and "..".
func readNames(fd int) ([]string, error) {
	buf := make([]byte, 16<<10)
	var names []string
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return names, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// fdWriter writes to a file descriptor with no os.File around it: os.File
// has a ReadFrom that would make io.CopyBuffer ignore our buffer and
// allocate its own for every file.
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := unix.Write(int(w), p[written:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return written, err
		}
		if n == 0 {
			return written, io.ErrShortWrite
		}
		written += n
	}
	return written, nil
}
