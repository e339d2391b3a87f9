package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ent is one tar entry for the tests. Zero fields get defaults in mkTar.
type ent struct {
	name   string
	typ    byte // tar.TypeReg if zero
	body   string
	link   string
	mode   int64
	uid    int
	gid    int
	mtime  time.Time
	atime  time.Time
	xattrs map[string]string
	size   int64 // overrides len(body) in the header when non-zero
}

var testTime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// Shorthands.
func file(name, body string) ent { return ent{name: name, body: body} }
func dirEnt(name string) ent     { return ent{name: name, typ: tar.TypeDir} }
func symlinkEnt(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target}
}
func hardlinkEnt(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target}
}

func tarHeader(e ent) *tar.Header {
	if e.typ == tar.TypeXGlobalHeader {
		return &tar.Header{Name: e.name, Typeflag: e.typ, PAXRecords: map[string]string{"comment": "global"}}
	}
	h := &tar.Header{
		Name:     e.name,
		Typeflag: e.typ,
		Linkname: e.link,
		Mode:     e.mode,
		Uid:      e.uid,
		Gid:      e.gid,
		ModTime:  e.mtime,
		Format:   tar.FormatPAX,
	}
	if h.Typeflag == 0 {
		h.Typeflag = tar.TypeReg
	}
	if h.Mode == 0 {
		h.Mode = 0o644
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
	}
	if h.ModTime.IsZero() {
		h.ModTime = testTime
	}
	if !e.atime.IsZero() {
		h.AccessTime = e.atime
	}
	if h.Typeflag == tar.TypeReg {
		h.Size = int64(len(e.body))
	}
	if e.size != 0 {
		h.Size = e.size
	}
	for k, v := range e.xattrs {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = v
	}
	return h
}

// mkTar builds a tar stream. A negative or oversized size, which archive/tar
// refuses to write, is patched into the header afterwards by rawTar.
func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		if err := tw.WriteHeader(tarHeader(e)); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatalf("write body %q: %v", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox is a layer root inside a parent directory that holds only the
// root and a sentinel file, so that any write outside the root shows.
type sandbox struct {
	parent, dir, sentinel string
}

const sentinelBody = "sentinel: must never change\n"

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	parent := t.TempDir()
	s := sandbox{parent: parent, dir: filepath.Join(parent, "rootfs"), sentinel: filepath.Join(parent, "sentinel")}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Runs before t.TempDir's removal: a layer may leave directories that
	// a non-root caller cannot empty (mode 0555 and the like).
	t.Cleanup(func() { makeWritable(parent) })
	if err := os.WriteFile(s.sentinel, []byte(sentinelBody), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// contained reports what is wrong outside the root, or "" when nothing is.
func (s sandbox) contained() string {
	entries, err := os.ReadDir(s.parent)
	if err != nil {
		return "read sandbox parent: " + err.Error()
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "rootfs,sentinel" {
		return "sandbox parent holds " + strings.Join(names, ",") + ", want rootfs,sentinel"
	}
	var st unix.Stat_t
	if err := unix.Lstat(s.sentinel, &st); err != nil {
		return "stat sentinel: " + err.Error()
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 || st.Mode&0o7777 != 0o644 {
		return "sentinel changed: mode " + os.FileMode(st.Mode).String()
	}
	got, err := os.ReadFile(s.sentinel)
	if err != nil {
		return "read sentinel: " + err.Error()
	}
	if string(got) != sentinelBody {
		return "sentinel content changed to " + string(got)
	}
	return ""
}

func (s sandbox) checkContained(t testing.TB) {
	t.Helper()
	if msg := s.contained(); msg != "" {
		t.Error(msg)
	}
}

func (s sandbox) path(rel string) string { return filepath.Join(s.dir, rel) }

func applyTar(t testing.TB, dir string, data []byte, opts Options) (Stats, error) {
	t.Helper()
	return Apply(dir, bytes.NewReader(data), opts)
}

func mustApply(t testing.TB, dir string, opts Options, ents ...ent) Stats {
	t.Helper()
	st, err := applyTar(t, dir, mkTar(t, ents...), opts)
	if err != nil {
		t.Fatalf("Apply: got error %v, want nil", err)
	}
	return st
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func wantMissing(t testing.TB, p string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); !errors.Is(err, unix.ENOENT) {
		t.Errorf("lstat %s: got %v, want ENOENT", p, err)
	}
}

func wantContent(t testing.TB, p, want string) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("read %s: got error %v, want content %q", p, err, want)
		return
	}
	if string(got) != want {
		t.Errorf("content of %s: got %q, want %q", p, got, want)
	}
}

func wantType(t testing.TB, p string, want uint32) {
	t.Helper()
	st := lstat(t, p)
	if st.Mode&unix.S_IFMT != want {
		t.Errorf("type of %s: got %o, want %o", p, st.Mode&unix.S_IFMT, want)
	}
}

func wantMode(t testing.TB, p string, want uint32) {
	t.Helper()
	st := lstat(t, p)
	if st.Mode&0o7777 != want {
		t.Errorf("mode of %s: got %04o, want %04o", p, st.Mode&0o7777, want)
	}
}

func wantMtime(t testing.TB, p string, want time.Time) {
	t.Helper()
	st := lstat(t, p)
	got := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	if !got.Equal(want) {
		t.Errorf("mtime of %s: got %v, want %v", p, got.UTC(), want.UTC())
	}
}

func wantNames(t testing.TB, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("read %s: %v", dir, err)
		return
	}
	got := []string{}
	for _, e := range entries {
		got = append(got, e.Name())
	}
	sort.Strings(want)
	if want == nil {
		want = []string{}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("entries of %s: got [%s], want [%s]", dir, strings.Join(got, ","), strings.Join(want, ","))
	}
}

func makeWritable(root string) {
	if os.Geteuid() == 0 {
		return
	}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}
