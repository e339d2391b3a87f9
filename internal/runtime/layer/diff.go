package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnsupportedUpper: the upper directory uses an overlayfs feature whose
// changes cannot be read from the upper directory alone (a redirected
// directory, a metadata-only copy-up), so no layer can be made of it.
var ErrUnsupportedUpper = errors.New("overlayfs feature not supported in a change layer")

const (
	overlayXattrPrefix = "trusted.overlay."
	overlayOpaque      = "trusted.overlay.opaque"
	overlayRedirect    = "trusted.overlay.redirect"
	overlayMetacopy    = "trusted.overlay.metacopy"
)

// DiffOptions say what Diff leaves out.
type DiffOptions struct {
	// MountPoints are paths relative to the upper directory, slash
	// separated ("proc", "etc/hosts"), where a runtime mounted something
	// over the merged root. A runtime creates a missing mount point through
	// the overlay, so it lands in the upper directory; one found there as an
	// empty directory or an empty regular file is that placeholder, not a
	// change of the app's, and is left out. Anything else at such a path
	// is kept: Diff never drops what may be data.
	MountPoints []string
}

// DiffStats counts what Diff wrote. Whiteouts counts whiteouts and opaque
// markers; sockets are not recorded (a socket is only a name without its
// listener) and are counted in SkippedSockets.
type DiffStats struct {
	Files, Dirs, Symlinks, Hardlinks, Devices, Fifos, Whiteouts int
	SkippedSockets                                              int
	Bytes                                                       int64 // regular file content written
}

// Diff writes the changes recorded in an overlayfs upper directory as one
// OCI layer, an uncompressed tar stream, to w: what the layer must hold to
// turn the lower layers into the merged view.
//
// overlayfs conventions become OCI ones: a whiteout (a 0/0 character
// device) becomes an empty regular file ".wh.NAME", and a directory marked
// opaque (trusted.overlay.opaque="y") gets a ".wh..wh..opq" entry first
// among its children. Regular files, directories, symlinks, fifos and
// device nodes are recorded with their mode (setuid, setgid and sticky
// included), numeric owner, modification time and xattrs, except the
// trusted.overlay.* ones, which belong to overlayfs; a file met again
// through another hardlink becomes a tar hardlink to its first name. The
// upper directory itself is not an entry: its metadata is the runtime's,
// not the image's.
//
// The output is deterministic: entries come depth first with the names of
// each directory in byte order, in PAX format, with no user or group names
// and no access or change times, so the same tree always gives the same
// bytes and thus the same DiffID.
//
// upper must not change while Diff runs (its overlay unmounted, the
// processes that wrote it gone): Diff does not follow symlinks, but it does
// walk by path.
func Diff(upper string, w io.Writer, opts DiffOptions) (DiffStats, error) {
	var st unix.Stat_t
	if err := unix.Lstat(upper, &st); err != nil {
		return DiffStats{}, fmt.Errorf("diff %s: %w", upper, &os.PathError{Op: "lstat", Path: upper, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return DiffStats{}, fmt.Errorf("diff %s: not a directory", upper)
	}
	d := &differ{
		upper:       upper,
		tw:          tar.NewWriter(w),
		mountPoints: map[string]bool{},
		links:       map[devIno]string{},
	}
	for _, p := range opts.MountPoints {
		if p = strings.Trim(path.Clean("/"+p), "/"); p != "" {
			d.mountPoints[p] = true
		}
	}
	if err := d.walk(""); err != nil {
		return d.stats, fmt.Errorf("diff %s: %w", upper, err)
	}
	if err := d.tw.Close(); err != nil {
		return d.stats, fmt.Errorf("diff %s: %w", upper, err)
	}
	return d.stats, nil
}

// differ is the state of one Diff call.
type differ struct {
	upper       string
	tw          *tar.Writer
	mountPoints map[string]bool
	// links maps a multiply-linked inode to the name it was first
	// written under.
	links map[devIno]string
	stats DiffStats
	buf   []byte
}

// entryError names the entry an error is about, once.
type entryError struct {
	path string
	err  error
}

func (e *entryError) Error() string { return fmt.Sprintf("entry %q: %v", e.path, e.err) }
func (e *entryError) Unwrap() error { return e.err }

// walk writes the entries below the directory rel ("" for the upper
// directory), depth first, in byte order of their names.
func (d *differ) walk(rel string) error {
	names, err := dirNames(filepath.Join(d.upper, rel))
	if err != nil {
		return &entryError{rel, err}
	}
	for _, n := range names {
		p := n
		if rel != "" {
			p = rel + "/" + n
		}
		if err := d.entry(p); err != nil {
			var ee *entryError
			if !errors.As(err, &ee) {
				err = &entryError{p, err}
			}
			return err
		}
	}
	return nil
}

func dirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func (d *differ) entry(p string) error {
	full := filepath.Join(d.upper, p)
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: full, Err: err}
	}
	typ := st.Mode & unix.S_IFMT
	switch {
	case typ == unix.S_IFCHR && st.Rdev == 0:
		// overlayfs may link all its whiteouts to one inode: they are
		// never hardlinks of each other in the layer.
		return d.whiteout(p, &st)
	case typ == unix.S_IFSOCK:
		d.stats.SkippedSockets++
		return nil
	}
	if d.mountPoints[p] {
		empty, err := isPlaceholder(full, &st)
		if err != nil {
			return err
		}
		if empty {
			return nil
		}
	}
	hdr, opaque, err := d.header(p, full, &st)
	if err != nil {
		return err
	}
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		key := devIno{uint64(st.Dev), uint64(st.Ino)}
		if first, ok := d.links[key]; ok {
			link := &tar.Header{
				Typeflag: tar.TypeLink, Name: hdr.Name, Linkname: first,
				Mode: hdr.Mode, Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime, Format: tar.FormatPAX,
			}
			d.stats.Hardlinks++
			return d.tw.WriteHeader(link)
		}
		d.links[key] = p
	}
	switch typ {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, p+"/"
		if err := d.tw.WriteHeader(hdr); err != nil {
			return err
		}
		d.stats.Dirs++
		if opaque {
			marker := &tar.Header{
				Typeflag: tar.TypeReg, Name: p + "/" + opaqueMarker,
				Mode: hdr.Mode & 0o777, Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime, Format: tar.FormatPAX,
			}
			if err := d.tw.WriteHeader(marker); err != nil {
				return err
			}
			d.stats.Whiteouts++
		}
		return d.walk(p)
	case unix.S_IFREG:
		return d.regular(full, hdr, &st)
	case unix.S_IFLNK:
		target, err := os.Readlink(full)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		d.stats.Symlinks++
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		d.stats.Fifos++
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if typ == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		d.stats.Devices++
	default:
		return fmt.Errorf("%w: unknown file type %o", ErrInvalidEntry, typ)
	}
	return d.tw.WriteHeader(hdr)
}

// header is the entry's common header: mode, owner, time, xattrs. opaque
// reports an opaque directory.
func (d *differ) header(p, full string, st *unix.Stat_t) (hdr *tar.Header, opaque bool, err error) {
	hdr = &tar.Header{
		Name:    p,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Format:  tar.FormatPAX,
	}
	xattrs, err := readXattrs(full)
	if err != nil {
		return nil, false, err
	}
	for _, x := range xattrs {
		switch {
		case x.name == overlayRedirect:
			return nil, false, fmt.Errorf("%w: a renamed directory (%s)", ErrUnsupportedUpper, overlayRedirect)
		case x.name == overlayMetacopy:
			return nil, false, fmt.Errorf("%w: a metadata-only copy-up (%s)", ErrUnsupportedUpper, overlayMetacopy)
		case x.name == overlayOpaque:
			opaque = st.Mode&unix.S_IFMT == unix.S_IFDIR && string(x.value) == "y"
		case strings.HasPrefix(x.name, overlayXattrPrefix):
			// overlayfs's own bookkeeping (origin, impure, nlink...).
		default:
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords[paxXattrPrefix+x.name] = string(x.value)
		}
	}
	return hdr, opaque, nil
}

func (d *differ) whiteout(p string, st *unix.Stat_t) error {
	dir, base := path.Split(p)
	// Docker's and containerd's overlay differs write whiteouts so.
	hdr := &tar.Header{
		Typeflag: tar.TypeReg, Name: dir + whiteoutPrefix + base, Mode: 0o600,
		Uid: int(st.Uid), Gid: int(st.Gid), ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), Format: tar.FormatPAX,
	}
	if err := d.tw.WriteHeader(hdr); err != nil {
		return err
	}
	d.stats.Whiteouts++
	return nil
}

// regular writes a regular file: its header, then exactly the size it had
// when it was looked at.
func (d *differ) regular(full string, hdr *tar.Header, st *unix.Stat_t) error {
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	f, err := os.OpenFile(full, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var fst unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &fst); err != nil {
		return err
	}
	if fst.Dev != st.Dev || fst.Ino != st.Ino || fst.Size != st.Size {
		return errors.New("changed while being read: the upper directory must not change during a diff")
	}
	if err := d.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if d.buf == nil && st.Size > 0 {
		d.buf = make([]byte, min(st.Size, copyBufSize))
	}
	n, err := io.CopyBuffer(d.tw, io.LimitReader(f, st.Size), d.buf)
	if err != nil {
		return err
	}
	if n != st.Size {
		return fmt.Errorf("read %d bytes, want %d: the upper directory must not change during a diff", n, st.Size)
	}
	d.stats.Files++
	d.stats.Bytes += n
	return nil
}

// isPlaceholder tells an empty directory or an empty regular file.
func isPlaceholder(full string, st *unix.Stat_t) (bool, error) {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return st.Size == 0, nil
	case unix.S_IFDIR:
		names, err := dirNames(full)
		return len(names) == 0, err
	}
	return false, nil
}

// maxXattrBuf bounds the buffers for xattr names and values; Linux's own
// limit on either is 64 KiB.
const maxXattrBuf = 1 << 20

type xattr struct {
	name  string
	value []byte
}

// readXattrs reads the xattrs of path itself (not of a symlink's target),
// sorted by name. A filesystem without xattrs has none.
func readXattrs(path string) ([]xattr, error) {
	size := 256
	var names []byte
	for {
		buf := make([]byte, size)
		n, err := unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) && size < maxXattrBuf {
			size *= 4
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list xattrs: %w", err)
		}
		names = buf[:n]
		break
	}
	var out []xattr
	for _, name := range strings.Split(string(names), "\x00") {
		if name == "" {
			continue
		}
		value, err := getXattr(path, name)
		if errors.Is(err, unix.ENODATA) {
			continue // gone, or hidden from us
		}
		if err != nil {
			return nil, fmt.Errorf("read xattr %s: %w", name, err)
		}
		out = append(out, xattr{name, value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func getXattr(path, name string) ([]byte, error) {
	size := 256
	for {
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) && size < maxXattrBuf {
			size *= 4
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
