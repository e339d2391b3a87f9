package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// diffEntry is what a test checks of a tar entry.
type diffEntry struct {
	hdr  *tar.Header
	body string
}

// diffTar runs Diff on upper and returns the tar's bytes and entries.
func diffTar(t *testing.T, upper string, opts DiffOptions) ([]byte, []diffEntry, DiffStats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := Diff(upper, &buf, opts)
	if err != nil {
		t.Fatalf("Diff: got error %v, want nil", err)
	}
	var out []diffEntry
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read the diff: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read the diff: %v", err)
		}
		out = append(out, diffEntry{hdr, string(body)})
	}
	return buf.Bytes(), out, st
}

// describe is one line per entry: name, type, mode, then the link target,
// the device numbers or the content.
func describe(entries []diffEntry) []string {
	var out []string
	for _, e := range entries {
		h := e.hdr
		line := fmt.Sprintf("%s %s %04o", h.Name, typeName(h.Typeflag), h.Mode)
		switch h.Typeflag {
		case tar.TypeSymlink, tar.TypeLink:
			line += " -> " + h.Linkname
		case tar.TypeChar, tar.TypeBlock:
			line += fmt.Sprintf(" %d:%d", h.Devmajor, h.Devminor)
		case tar.TypeReg:
			line += fmt.Sprintf(" %q", e.body)
		}
		out = append(out, line)
	}
	return out
}

func typeName(f byte) string {
	switch f {
	case tar.TypeReg:
		return "file"
	case tar.TypeDir:
		return "dir"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeChar:
		return "char"
	case tar.TypeBlock:
		return "block"
	}
	return fmt.Sprintf("type%q", f)
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot\n\t%s\nwant\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// writeFile writes a file of mode (setuid and the like included: unix
// modes, not os.FileMode's), past the umask.
func writeFile(t *testing.T, p, body string, mode uint32) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(body), 0o600))
	must(t, unix.Chmod(p, mode))
}

func setMtime(t *testing.T, p string, mtime time.Time) {
	t.Helper()
	ts := []unix.Timespec{timespec(mtime), timespec(mtime)}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
}

// plainUpper is an upper directory of what any user can make: files,
// directories, a hardlink, a symlink, a fifo and a socket.
func plainUpper(t *testing.T) string {
	upper := t.TempDir()
	p := func(rel string) string { return filepath.Join(upper, rel) }
	must(t, os.Mkdir(p("a"), 0o755))
	must(t, os.Chmod(p("a"), 0o750))
	writeFile(t, p("a/file"), "hello\n", 0o640)
	must(t, os.Link(p("a/file"), p("a/link")))
	must(t, os.Symlink("../b/target", p("a/sym")))
	writeFile(t, p("b/setuid"), "x", 0o4755)
	must(t, unix.Mkfifo(p("fifo"), 0o600))
	must(t, os.Chmod(p("fifo"), 0o600))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p("sock"), Net: "unix"})
	must(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()
	writeFile(t, p("z"), "", 0o644)
	if _, err := os.Lstat(p("sock")); err != nil {
		t.Fatalf("the socket should outlive its listener: %v", err)
	}
	for _, rel := range []string{"a/file", "a/sym", "b/setuid", "fifo", "z", "a", "b"} {
		setMtime(t, p(rel), testTime.Add(1500*time.Millisecond))
	}
	return upper
}

func TestDiffEntries(t *testing.T) {
	upper := plainUpper(t)
	_, entries, st := diffTar(t, upper, DiffOptions{})
	wantLines(t, "entries", describe(entries), []string{
		`a/ dir 0750`,
		`a/file file 0640 "hello\n"`,
		`a/link hardlink 0640 -> a/file`,
		`a/sym symlink 0777 -> ../b/target`,
		`b/ dir 0755`,
		`b/setuid file 4755 "x"`,
		`fifo fifo 0600`,
		`z file 0644 ""`,
	})
	for _, e := range entries {
		if e.hdr.Uid != os.Getuid() || e.hdr.Gid != os.Getgid() {
			t.Errorf("%s: owner %d:%d, want %d:%d", e.hdr.Name, e.hdr.Uid, e.hdr.Gid, os.Getuid(), os.Getgid())
		}
		if e.hdr.Uname != "" || e.hdr.Gname != "" || !e.hdr.AccessTime.IsZero() || !e.hdr.ChangeTime.IsZero() {
			t.Errorf("%s: uname %q gname %q atime %v ctime %v, want none of them (they differ between machines and reads)",
				e.hdr.Name, e.hdr.Uname, e.hdr.Gname, e.hdr.AccessTime, e.hdr.ChangeTime)
		}
		if e.hdr.Typeflag != tar.TypeLink && !e.hdr.ModTime.Equal(testTime.Add(1500*time.Millisecond)) {
			t.Errorf("%s: mtime %v, want %v (nanoseconds kept)", e.hdr.Name, e.hdr.ModTime, testTime.Add(1500*time.Millisecond))
		}
		if e.hdr.Format != tar.FormatPAX && e.hdr.Format != tar.FormatUSTAR {
			// A PAX header with no extended records reads back as USTAR.
			t.Errorf("%s: format %v, want PAX", e.hdr.Name, e.hdr.Format)
		}
	}
	want := DiffStats{Files: 3, Dirs: 2, Symlinks: 1, Hardlinks: 1, Fifos: 1, SkippedSockets: 1, Bytes: 7}
	if st != want {
		t.Errorf("stats: got %+v, want %+v", st, want)
	}
}

func TestDiffIsDeterministic(t *testing.T) {
	upper := plainUpper(t)
	first, _, _ := diffTar(t, upper, DiffOptions{})
	// Reading files changes their access times, which must not matter.
	filepath.WalkDir(upper, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			os.ReadFile(p)
		}
		return nil
	})
	second, _, _ := diffTar(t, upper, DiffOptions{})
	if !bytes.Equal(first, second) {
		t.Errorf("two diffs of one tree differ: %d and %d bytes", len(first), len(second))
	}
}

// treeOf describes a tree for comparison: type, mode, mtime, content or
// link target of each path, and which paths share an inode.
func treeOf(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s %o", rel, st.Mode)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %q", b)
			if first, ok := inodes[st.Ino]; ok {
				line += " same file as " + first
			} else {
				inodes[st.Ino] = rel
			}
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			line += " " + time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC().Format(time.RFC3339Nano)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// Applying the diff to an empty directory gives the tree back (but for
// the socket, which a layer cannot hold).
func TestDiffRoundTrip(t *testing.T) {
	upper := plainUpper(t)
	data, _, _ := diffTar(t, upper, DiffOptions{})
	must(t, os.Remove(filepath.Join(upper, "sock")))
	dir := t.TempDir()
	if _, err := Apply(dir, bytes.NewReader(data), Options{Mode: Flatten}); err != nil {
		t.Fatalf("Apply the diff: %v", err)
	}
	wantLines(t, "the tree the diff applies to", treeOf(t, dir), treeOf(t, upper))
}

func TestDiffLeavesOutMountPointPlaceholders(t *testing.T) {
	upper := t.TempDir()
	p := func(rel string) string { return filepath.Join(upper, rel) }
	must(t, os.MkdirAll(p("proc"), 0o755))
	writeFile(t, p("etc/hosts"), "", 0o644)
	writeFile(t, p("etc/resolv.conf"), "nameserver 10.0.0.1\n", 0o644) // written by the app: kept
	writeFile(t, p("data/f"), "f", 0o644)                              // a non-empty directory: kept
	must(t, os.MkdirAll(p("empty"), 0o755))                            // not a mount point: kept
	_, entries, _ := diffTar(t, upper, DiffOptions{MountPoints: []string{"/proc", "etc/hosts", "etc/resolv.conf", "data/", "missing", "/"}})
	wantLines(t, "entries", describe(entries), []string{
		`data/ dir 0755`,
		`data/f file 0644 "f"`,
		`empty/ dir 0755`,
		`etc/ dir 0755`,
		`etc/resolv.conf file 0644 "nameserver 10.0.0.1\n"`,
	})
}

func TestDiffUserXattrs(t *testing.T) {
	upper := t.TempDir()
	f := filepath.Join(upper, "f")
	writeFile(t, f, "f", 0o644)
	if err := unix.Setxattr(f, "user.comment", []byte("hi\x00there"), 0); err != nil {
		t.Skipf("the temporary directory's filesystem refuses user xattrs: %v", err)
	}
	_, entries, _ := diffTar(t, upper, DiffOptions{})
	if len(entries) != 1 {
		t.Fatalf("entries: got %v, want one", describe(entries))
	}
	if got := entries[0].hdr.PAXRecords["SCHILY.xattr.user.comment"]; got != "hi\x00there" {
		t.Errorf("xattr user.comment: got %q, want %q", got, "hi\x00there")
	}
}

func TestDiffRefusesABadUpper(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	writeFile(t, f, "", 0o644)
	for _, upper := range []string{f, filepath.Join(t.TempDir(), "missing")} {
		if _, err := Diff(upper, io.Discard, DiffOptions{}); err == nil || !strings.Contains(err.Error(), upper) {
			t.Errorf("Diff(%s): got error %v, want one naming it", upper, err)
		}
	}
}

// An upper directory made by hand with overlayfs's conventions.
func TestDiffOverlayConventions(t *testing.T) {
	needRoot(t)
	upper := t.TempDir()
	p := func(rel string) string { return filepath.Join(upper, rel) }
	must(t, os.Mkdir(p("etc"), 0o755))
	must(t, unix.Mknod(p("etc/passwd"), unix.S_IFCHR, 0))
	// overlayfs may link its whiteouts to one shared inode.
	must(t, os.Link(p("etc/passwd"), p("etc/group")))
	must(t, unix.Mknod(p("gone"), unix.S_IFCHR, 0))
	must(t, unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, os.Chmod(p("null"), 0o666))
	must(t, os.Mkdir(p("opq"), 0o700))
	must(t, os.Chmod(p("opq"), 0o700))
	must(t, unix.Setxattr(p("opq"), "trusted.overlay.opaque", []byte("y"), 0))
	must(t, unix.Setxattr(p("opq"), "trusted.overlay.origin", []byte("\x00\xfb"), 0))
	must(t, unix.Setxattr(p("opq"), "trusted.test", []byte("kept"), 0))
	writeFile(t, p("opq/new"), "new", 0o644)
	writeFile(t, p("owned"), "o", 0o600)
	must(t, os.Chown(p("owned"), 1000, 1001))
	must(t, os.Mkdir(p("notopq"), 0o755))
	must(t, unix.Setxattr(p("notopq"), "trusted.overlay.opaque", []byte("n"), 0))

	_, entries, st := diffTar(t, upper, DiffOptions{})
	wantLines(t, "entries", describe(entries), []string{
		`etc/ dir 0755`,
		`etc/.wh.group file 0600 ""`,
		`etc/.wh.passwd file 0600 ""`,
		`.wh.gone file 0600 ""`,
		`notopq/ dir 0755`,
		`null char 0666 1:3`,
		`opq/ dir 0700`,
		`opq/.wh..wh..opq file 0700 ""`,
		`opq/new file 0644 "new"`,
		`owned file 0600 "o"`,
	})
	for _, e := range entries {
		for k := range e.hdr.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.trusted.overlay.") {
				t.Errorf("%s: has %s, want no trusted.overlay.* xattr in a layer", e.hdr.Name, k)
			}
		}
		switch e.hdr.Name {
		case "opq/":
			if got := e.hdr.PAXRecords["SCHILY.xattr.trusted.test"]; got != "kept" {
				t.Errorf("opq/ xattr trusted.test: got %q, want %q", got, "kept")
			}
		case "owned":
			if e.hdr.Uid != 1000 || e.hdr.Gid != 1001 {
				t.Errorf("owned: owner %d:%d, want 1000:1001", e.hdr.Uid, e.hdr.Gid)
			}
		}
	}
	if st.Whiteouts != 4 || st.Devices != 1 || st.Hardlinks != 0 {
		t.Errorf("stats: got %+v, want 4 whiteouts (3 and an opaque marker), 1 device, no hardlink", st)
	}

	// A renamed directory's content is partly in the lower layers: no
	// layer can be made of the upper directory alone.
	must(t, unix.Setxattr(p("etc"), "trusted.overlay.redirect", []byte("/old"), 0))
	if _, err := Diff(upper, io.Discard, DiffOptions{}); !errors.Is(err, ErrUnsupportedUpper) || !strings.Contains(err.Error(), `"etc"`) {
		t.Errorf("Diff with a redirected directory: got %v, want ErrUnsupportedUpper naming \"etc\"", err)
	}
}

// The kernel's own upper directory: changes made through a real overlay
// mount, diffed, and applied over the lower layer, give the merged view.
func TestDiffRealOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts an overlay")
	}
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		must(t, os.Mkdir(d, 0o755))
	}
	l := func(rel string) string { return filepath.Join(lower, rel) }
	writeFile(t, l("keep"), "keep\n", 0o644)
	writeFile(t, l("gone"), "gone\n", 0o644)
	writeFile(t, l("dir/a"), "a", 0o644)
	writeFile(t, l("dir/b"), "b", 0o644)
	writeFile(t, l("old/x"), "x", 0o644)
	writeFile(t, l("etc/passwd"), "root:x:0:0::/root:/bin/sh\n", 0o644)
	var lowerTar bytes.Buffer
	if _, err := Diff(lower, &lowerTar, DiffOptions{}); err != nil {
		t.Fatal(err)
	}

	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		t.Skipf("mount overlay: %v", err)
	}
	mounted := true
	unmount := func() {
		if mounted {
			must(t, unix.Unmount(merged, 0))
			mounted = false
		}
	}
	t.Cleanup(func() {
		if mounted {
			unix.Unmount(merged, unix.MNT_DETACH)
		}
	})
	m := func(rel string) string { return filepath.Join(merged, rel) }
	must(t, os.Remove(m("gone")))                             // a whiteout
	must(t, os.RemoveAll(m("dir")))                           // a whiteout...
	writeFile(t, m("dir/c"), "c", 0o644)                      // ...then an opaque directory
	must(t, os.WriteFile(m("keep"), []byte("kept\n"), 0o644)) // a copy-up
	writeFile(t, m("new"), "new\n", 0o755)
	must(t, os.Link(m("new"), m("new2")))
	must(t, os.Rename(m("old/x"), m("moved"))) // a file moves: copy-up and whiteout
	must(t, os.Symlink("/etc/passwd", m("pw")))
	must(t, os.Chmod(m("etc/passwd"), 0o600)) // metadata only: a copy-up
	wantTree := treeOf(t, merged)
	unmount()

	data, entries, _ := diffTar(t, upper, DiffOptions{})
	names := map[string]bool{}
	for _, e := range entries {
		names[e.hdr.Name] = true
	}
	for _, want := range []string{".wh.gone", "dir/", "dir/.wh..wh..opq", "dir/c", "old/.wh.x", "moved", "new", "new2", "keep", "pw", "etc/passwd"} {
		if !names[want] {
			t.Errorf("the diff lacks %q; entries:\n\t%s", want, strings.Join(describe(entries), "\n\t"))
		}
	}

	flat := filepath.Join(base, "flat")
	must(t, os.Mkdir(flat, 0o755))
	for i, layerTar := range [][]byte{lowerTar.Bytes(), data} {
		if _, err := Apply(flat, bytes.NewReader(layerTar), Options{Mode: Flatten, Chown: true}); err != nil {
			t.Fatalf("apply layer %d: %v", i, err)
		}
	}
	// The directories' mtimes are the kernel's business on either side.
	strip := func(lines []string) []string {
		var out []string
		for _, line := range lines {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "40") {
				line = f[0] + " " + f[1]
			}
			out = append(out, line)
		}
		return out
	}
	wantLines(t, "lower + diff, flattened, against the merged view", strip(treeOf(t, flat)), strip(wantTree))
}
