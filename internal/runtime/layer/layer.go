package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Mode says how whiteouts are handled.
type Mode int

const (
	// Flatten applies the layer on top of what dir already holds (the lower
	// layers applied before it): a whiteout ".wh.NAME" deletes NAME, an opaque
	// ".wh..wh..opq" empties its directory of what lower layers put there.
	Flatten Mode = iota
	// Overlay unpacks the layer alone into an empty dir that will be one
	// overlayfs lower layer: a whiteout becomes a 0/0 character device named
	// NAME, an opaque marker sets the xattr trusted.overlay.opaque="y" on its
	// directory. Needs root (mknod and trusted.* xattrs).
	//
	// (Linux lets anyone mknod a 0/0 character device since 5.8, so only
	// the opaque marker strictly needs root there.)
	Overlay
)

func (m Mode) String() string {
	switch m {
	case Flatten:
		return "flatten"
	case Overlay:
		return "overlay"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Options says how Apply writes a layer.
type Options struct {
	Mode Mode
	// Chown applies the owners recorded in the tar (uid/gid). When false,
	// files belong to the caller. Callers set it when running as root.
	Chown bool
}

// Stats counts what Apply did. Files counts regular files and fifos, Dirs
// the directory entries of the tar (not the missing parents Apply made),
// Whiteouts the whiteouts and opaque markers.
type Stats struct {
	Files, Dirs, Symlinks, Hardlinks, Whiteouts int
	SkippedDevices                              int   // character/block devices in the layer, never created
	Bytes                                       int64 // regular file content written
}

// The refusals, for errors.Is. Every error Apply returns for an entry names
// the entry: `layer entry "../etc/passwd": path escapes the layer root`.
var (
	// ErrEscape: an entry name (or hardlink target) climbs above the root.
	ErrEscape = errors.New("path escapes the layer root")
	// ErrHardlinkTarget: a hardlink whose target escapes, is missing from
	// dir, or cannot be linked (a directory).
	ErrHardlinkTarget = errors.New("bad hardlink target")
	// ErrInvalidEntry: a name or header that no sane layer holds (a NUL byte,
	// a component longer than NAME_MAX, a path longer than PATH_MAX, an
	// empty whiteout name, an unknown entry type, an owner out of range, a
	// sparse file).
	ErrInvalidEntry = errors.New("invalid layer entry")
)

const (
	whiteoutPrefix = ".wh."
	// Names starting with this are reserved by the spec; only the opaque
	// marker among them means anything to us.
	whiteoutMetaPrefix = ".wh..wh."
	opaqueMarker       = ".wh..wh..opq"

	copyBufSize = 1 << 20
)

// Apply reads one uncompressed layer tar stream and writes it into dir, which
// must exist. In Overlay mode dir should be empty, and a hardlink's target
// must be in the same layer (image builders only ever write such links).
//
// Apply reads r to its end, past the tar's end-of-archive blocks, so that a
// caller hashing the stream through an io.TeeReader sees every byte.
func Apply(dir string, r io.Reader, opts Options) (Stats, error) {
	return apply(dir, r, opts, false)
}

// apply is Apply with a switch for tests: walkOnly resolves every path
// with the component-by-component walk instead of openat2.
func apply(dir string, r io.Reader, opts Options, walkOnly bool) (Stats, error) {
	if opts.Mode != Flatten && opts.Mode != Overlay {
		return Stats{}, fmt.Errorf("apply layer to %s: unknown mode %d", dir, int(opts.Mode))
	}
	a, err := newApplier(dir, opts)
	if err != nil {
		return Stats{}, err
	}
	defer a.close()
	if walkOnly {
		a.useOpenat2 = false
	}
	if err := a.apply(r); err != nil {
		return a.stats, err
	}
	return a.stats, nil
}

// Sync flushes the filesystem holding dir to disk with syncfs(2). Apply never
// syncs, so that a multi-layer unpack pays for one sync instead of one per
// file.
func Sync(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, &os.PathError{Op: "open", Path: dir, Err: err})
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("sync %s: syncfs: %w", dir, err)
	}
	return nil
}

// applier is the state of one Apply call.
type applier struct {
	opts   Options
	isRoot bool // effective uid 0: xattr refusals are errors, not skips

	root    int // fd of dir, O_RDONLY so that it can be fchmod'ed and read
	rootKey devIno

	resolver

	// written holds every directory entry this layer created or replaced,
	// as (parent directory inode, name), so that a whiteout or opaque marker
	// of the same layer spares them whatever the order of the stream. Only
	// kept in Flatten mode. Inodes rather than paths, because the same entry
	// can be reached by names that differ through symlinks.
	written map[nameKey]struct{}

	// dirs holds the metadata of the directory entries, applied at the end.
	dirs     []dirMeta
	dirIndex map[string]int

	stats Stats
	// buf is the copy buffer for every file of the layer, made at the
	// first file with content: a 1 MiB allocation costs more than a
	// small layer's whole unpack.
	buf []byte
}

type devIno struct{ dev, ino uint64 }

type nameKey struct {
	dir  devIno
	name string
}

func newApplier(dir string, opts Options) (*applier, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("apply layer to %s: %w", dir, &os.PathError{Op: "open", Path: dir, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("apply layer to %s: stat: %w", dir, err)
	}
	a := &applier{
		opts:     opts,
		isRoot:   os.Geteuid() == 0,
		root:     fd,
		rootKey:  devIno{uint64(st.Dev), uint64(st.Ino)},
		dirIndex: make(map[string]int),
	}
	a.resolver = resolver{root: fd, rootKey: a.rootKey, useOpenat2: true}
	if opts.Mode == Flatten {
		a.written = make(map[nameKey]struct{})
		a.resolver.created = a.markWritten
	}
	return a, nil
}

func (a *applier) close() {
	a.resolver.flush()
	unix.Close(a.root)
}

func (a *applier) apply(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
			// GODEBUG=tarinsecurepath=0 makes archive/tar flag names
			// such as "../x"; we judge names ourselves, below.
			err = nil
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	if err := a.finishDirs(); err != nil {
		return err
	}
	// Whatever follows the end-of-archive blocks (tar pads to a record
	// size) belongs to the stream a caller may be hashing.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("read layer: %w", err)
	}
	return nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		// Global PAX records carry nothing we apply (times and owners
		// come with each entry).
		return nil
	case tar.TypeChar, tar.TypeBlock:
		a.stats.SkippedDevices++
		return nil
	}
	comps, err := splitName(hdr.Name)
	if err != nil {
		return err
	}
	if len(comps) == 0 {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: names the layer root but is not a directory", ErrInvalidEntry)
		}
		return a.rootDir(hdr)
	}
	parent := strings.Join(comps[:len(comps)-1], "/")
	name := comps[len(comps)-1]
	if strings.HasPrefix(name, whiteoutPrefix) {
		return a.whiteout(parent, name)
	}

	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse:
		// TypeCont is a regular file to every tar that is not on a
		// 1980s tape.
		if isSparse(hdr) {
			// archive/tar expands holes into zeros as it reads and
			// gives no way to skip them, so a few hundred bytes of
			// sparse map could have us write terabytes. No image
			// builder writes sparse entries (Go's archive/tar cannot).
			return fmt.Errorf("%w: sparse files are not supported", ErrInvalidEntry)
		}
		return a.regular(parent, name, hdr, r)
	case tar.TypeDir:
		return a.dir(parent, name, strings.Join(comps, "/"), hdr)
	case tar.TypeSymlink:
		return a.symlink(parent, name, hdr)
	case tar.TypeLink:
		return a.hardlink(parent, name, hdr)
	case tar.TypeFifo:
		return a.fifo(parent, name, hdr)
	}
	return fmt.Errorf("%w: unsupported entry type %q", ErrInvalidEntry, hdr.Typeflag)
}

// isSparse tells GNU sparse entries: the old format's typeflag, or the PAX
// formats' GNU.sparse.* records.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// splitName cleans a tar entry name into its components relative to the
// root: empty and "." components go, ".." takes the previous component away,
// and a ".." with nothing left to take is an escape.
func splitName(name string) ([]string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("%w: name contains a NUL byte", ErrInvalidEntry)
	}
	comps := make([]string, 0, strings.Count(name, "/")+1)
	size := 0
	for rest := name; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		switch c {
		case "", ".":
			continue
		case "..":
			if len(comps) == 0 {
				return nil, ErrEscape
			}
			size -= len(comps[len(comps)-1]) + 1
			comps = comps[:len(comps)-1]
			continue
		}
		if len(c) > unix.NAME_MAX {
			return nil, fmt.Errorf("%w: a component is longer than %d bytes", ErrInvalidEntry, unix.NAME_MAX)
		}
		comps = append(comps, c)
		size += len(c) + 1
	}
	// The whole relative path is handed to one openat2 call, and the
	// kernel refuses paths of PATH_MAX bytes or more.
	if size > unix.PathMax {
		return nil, fmt.Errorf("%w: name is longer than %d bytes", ErrInvalidEntry, unix.PathMax-1)
	}
	return comps, nil
}

// markWritten records that this layer created name in directory d.
func (a *applier) markWritten(d dirHandle, name string) {
	if a.written != nil {
		a.written[nameKey{d.key, name}] = struct{}{}
	}
}
