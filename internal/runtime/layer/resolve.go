package layer

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// dirHandle is an open directory inside the root. fd is O_PATH (or the root
// fd itself): good as the dirfd of the *at calls, not for reading.
type dirHandle struct {
	fd  int
	key devIno
}

type cacheEntry struct {
	path string
	h    dirHandle
}

// cacheSize is small: tar streams list a directory's entries together, and
// a hardlink needs its target's directory as well as its own.
const cacheSize = 4

// maxSymlinks is the kernel's MAXSYMLINKS, so that the fallback walk gives
// up where openat2 would.
const maxSymlinks = 40

// resolver turns cleaned relative paths into directory handles, resolving
// like openat2 with RESOLVE_IN_ROOT, and keeps the last few open.
type resolver struct {
	root       int
	rootKey    devIno
	useOpenat2 bool

	// created, if set, is told of each directory the resolver creates.
	created func(d dirHandle, name string)

	cache []cacheEntry // most recently used first
	// stale says a removal may have changed what a cached path resolves
	// to. The cache is flushed at the next lookup rather than at once, so
	// that handles held by the caller stay open until then.
	stale bool
}

func (r *resolver) rootHandle() dirHandle { return dirHandle{fd: r.root, key: r.rootKey} }

// invalidate is called after anything is removed or replaced: the removed
// entry may have been a directory or a symlink on a cached path.
func (r *resolver) invalidate() { r.stale = true }

func (r *resolver) flush() {
	for _, e := range r.cache {
		unix.Close(e.h.fd)
	}
	r.cache = r.cache[:0]
	r.stale = false
}

// lookupDir returns the directory at path (components joined by "/", no "."
// or ".." left by splitName, though symlinks met on the way may hold them).
// With create, missing directories are made, mode 0755. The handle stays
// valid until the next call to lookupDir.
func (r *resolver) lookupDir(path string, create bool) (dirHandle, error) {
	if r.stale {
		r.flush()
	}
	if path == "" {
		return r.rootHandle(), nil
	}
	for i, e := range r.cache {
		if e.path == path {
			copy(r.cache[1:i+1], r.cache[:i])
			r.cache[0] = e
			return e.h, nil
		}
	}
	fd, err := r.open(path, create)
	if err != nil {
		return dirHandle{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return dirHandle{}, err
	}
	h := dirHandle{fd: fd, key: devIno{uint64(st.Dev), uint64(st.Ino)}}
	if len(r.cache) == cacheSize {
		unix.Close(r.cache[cacheSize-1].h.fd)
		r.cache = r.cache[:cacheSize-1]
	}
	r.cache = append(r.cache, cacheEntry{})
	copy(r.cache[1:], r.cache)
	r.cache[0] = cacheEntry{path: path, h: h}
	return h, nil
}

func (r *resolver) open(path string, create bool) (int, error) {
	if r.useOpenat2 {
		fd, err := r.openat2(path)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.ENOENT) && create:
			// Fall through to the walk, which creates.
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.E2BIG), errors.Is(err, unix.EINVAL):
			// No openat2 (before Linux 5.6) or a seccomp filter
			// refusing it: walk from now on.
			r.useOpenat2 = false
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EXDEV):
			// The kernel saw a rename race it would not vouch for;
			// the walk has no such check to fail.
		default:
			return -1, err
		}
	}
	return r.walk(path, create)
}

func (r *resolver) openat2(path string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(r.root, path, &how)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// walk resolves path one component at a time, the way RESOLVE_IN_ROOT
// does: every component is opened with O_NOFOLLOW, a symlink's target is
// read and spliced into the rest of the path (an absolute one restarting from
// the root), and ".." at the root stays at the root. Only directories are ever
// descended into, so the walk cannot leave the root.
func (r *resolver) walk(path string, create bool) (int, error) {
	cur, err := unix.Openat(r.root, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer func() {
		if cur >= 0 {
			unix.Close(cur)
		}
	}()
	depth := 0 // how far cur is below the root, so that ".." can stop there
	links := 0
	rest := path
	for rest != "" {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		switch c {
		case "", ".":
			continue
		case "..":
			if depth == 0 {
				continue
			}
			up, err := unix.Openat(cur, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return -1, err
			}
			unix.Close(cur)
			cur = up
			depth--
			continue
		}
		fd, err := unix.Openat(cur, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			err = unix.Mkdirat(cur, c, 0o755)
			if err == nil && r.created != nil {
				var st unix.Stat_t
				if err := unix.Fstat(cur, &st); err != nil {
					return -1, err
				}
				r.created(dirHandle{fd: cur, key: devIno{uint64(st.Dev), uint64(st.Ino)}}, c)
			}
			if err != nil && !errors.Is(err, unix.EEXIST) {
				return -1, err
			}
			fd, err = unix.Openat(cur, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			unix.Close(cur)
			cur = fd
			depth++
		case unix.S_IFLNK:
			links++
			if links > maxSymlinks {
				unix.Close(fd)
				return -1, unix.ELOOP
			}
			target, err := readlinkFd(fd)
			unix.Close(fd)
			if err != nil {
				return -1, err
			}
			if strings.HasPrefix(target, "/") {
				root, err := unix.Openat(r.root, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return -1, err
				}
				unix.Close(cur)
				cur = root
				depth = 0
			}
			if rest != "" {
				target += "/" + rest
			}
			rest = target
		default:
			unix.Close(fd)
			return -1, unix.ENOTDIR
		}
	}
	fd := cur
	cur = -1
	return fd, nil
}

// readlinkFd reads the target of the symlink that fd (O_PATH|O_NOFOLLOW)
// refers to.
func readlinkFd(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	for {
		n, err := unix.Readlinkat(fd, "", buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= 1<<16 {
			return "", unix.ENAMETOOLONG
		}
		buf = make([]byte, 2*len(buf))
	}
}
