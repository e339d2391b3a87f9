package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// flattenCase applies lower (if any) and then layer to a fresh root in Flatten
// mode without chown, and checks the result.
type flattenCase struct {
	name    string
	lower   []ent
	layer   []ent
	wantErr error // errors.Is; nil: must succeed
	check   func(t *testing.T, s sandbox, st Stats)
}

func runFlatten(t *testing.T, cases []flattenCase) {
	t.Helper()
	for _, walkOnly := range []bool{false, true} {
		resolve := "openat2"
		if walkOnly {
			resolve = "walk"
		}
		for _, tc := range cases {
			t.Run(resolve+"/"+tc.name, func(t *testing.T) {
				s := newSandbox(t)
				if tc.lower != nil {
					if _, err := apply(s.dir, bytes.NewReader(mkTar(t, tc.lower...)), Options{}, walkOnly); err != nil {
						t.Fatalf("apply lower: got error %v, want nil", err)
					}
				}
				st, err := apply(s.dir, bytes.NewReader(mkTar(t, tc.layer...)), Options{}, walkOnly)
				switch {
				case tc.wantErr == nil && err != nil:
					t.Fatalf("Apply: got error %v, want nil", err)
				case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
					t.Fatalf("Apply: got error %v, want %v", err, tc.wantErr)
				}
				if tc.check != nil {
					tc.check(t, s, st)
				}
				s.checkContained(t)
			})
		}
	}
}

func TestFlattenEntries(t *testing.T) {
	later := testTime.Add(time.Hour)
	runFlatten(t, []flattenCase{
		{
			name:  "regular file content mode and times",
			layer: []ent{{name: "etc/motd", body: "hello\n", mode: 0o640, mtime: testTime, atime: later}},
			check: func(t *testing.T, s sandbox, st Stats) {
				// atime first: reading the file may move it.
				got := lstat(t, s.path("etc/motd")).Atim
				if !time.Unix(got.Sec, got.Nsec).Equal(later) {
					t.Errorf("atime: got %v, want %v", time.Unix(got.Sec, got.Nsec).UTC(), later)
				}
				wantContent(t, s.path("etc/motd"), "hello\n")
				wantMode(t, s.path("etc/motd"), 0o640)
				wantMtime(t, s.path("etc/motd"), testTime)
				if st.Files != 1 || st.Bytes != 6 {
					t.Errorf("stats: got %+v, want Files 1 Bytes 6", st)
				}
			},
		},
		{
			name: "setuid setgid and sticky bits survive umask",
			layer: []ent{
				{name: "bin/su", body: "x", mode: 0o4755},
				{name: "bin/wall", body: "x", mode: 0o2755},
				{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
				{name: "bin/all", body: "x", mode: 0o7777},
			},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantMode(t, s.path("bin/su"), 0o4755)
				wantMode(t, s.path("bin/wall"), 0o2755)
				wantMode(t, s.path("tmp"), 0o1777)
				wantMode(t, s.path("bin/all"), 0o7777)
			},
		},
		{
			name: "directory times are set after their children are written",
			layer: []ent{
				{name: "d/", typ: tar.TypeDir, mtime: testTime},
				file("d/a", "a"),
				{name: "d/sub/", typ: tar.TypeDir, mtime: later},
				file("d/sub/b", "b"),
				file("d/c", "c"),
			},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantMtime(t, s.path("d"), testTime)
				wantMtime(t, s.path("d/sub"), later)
			},
		},
		{
			name: "read-only directory still gets its children",
			layer: []ent{
				{name: "ro/", typ: tar.TypeDir, mode: 0o555},
				file("ro/f", "f"),
				{name: "ro/sub/", typ: tar.TypeDir, mode: 0o500},
				file("ro/sub/g", "g"),
			},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantContent(t, s.path("ro/sub/g"), "g")
				wantMode(t, s.path("ro"), 0o555)
				wantMode(t, s.path("ro/sub"), 0o500)
				// Let t.TempDir's cleanup in when not root.
				os.Chmod(s.path("ro/sub"), 0o755)
				os.Chmod(s.path("ro"), 0o755)
			},
		},
		{
			name: "symlink keeps its target and gets its own mtime",
			layer: []ent{
				{name: "bin/sh", typ: tar.TypeSymlink, link: "/usr/bin/dash", mtime: later},
				symlinkEnt("lib", "usr/lib"),
			},
			check: func(t *testing.T, s sandbox, st Stats) {
				for name, want := range map[string]string{"bin/sh": "/usr/bin/dash", "lib": "usr/lib"} {
					got, err := os.Readlink(s.path(name))
					if err != nil || got != want {
						t.Errorf("readlink %s: got %q, %v, want %q", name, got, err, want)
					}
				}
				wantMtime(t, s.path("bin/sh"), later)
				if st.Symlinks != 2 {
					t.Errorf("Symlinks: got %d, want 2", st.Symlinks)
				}
			},
		},
		{
			name:  "hardlink shares the inode of its target",
			layer: []ent{file("a", "data"), hardlinkEnt("b", "a"), hardlinkEnt("sub/c", "/a")},
			check: func(t *testing.T, s sandbox, st Stats) {
				a, b, c := lstat(t, s.path("a")), lstat(t, s.path("b")), lstat(t, s.path("sub/c"))
				if a.Ino != b.Ino || a.Ino != c.Ino || a.Nlink != 3 {
					t.Errorf("inodes: got a=%d b=%d c=%d nlink %d, want one inode with nlink 3", a.Ino, b.Ino, c.Ino, a.Nlink)
				}
				if st.Hardlinks != 2 {
					t.Errorf("Hardlinks: got %d, want 2", st.Hardlinks)
				}
			},
		},
		{
			name:  "hardlink to a symlink links the symlink itself",
			layer: []ent{symlinkEnt("s", "/nowhere"), hardlinkEnt("h", "s")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				if lstat(t, s.path("s")).Ino != lstat(t, s.path("h")).Ino {
					t.Error("h: got another inode than s, want the symlink itself")
				}
			},
		},
		{
			name:  "hardlink to a lower layer's file",
			lower: []ent{file("etc/passwd", "root:x:0:0")},
			layer: []ent{hardlinkEnt("etc/passwd-", "etc/passwd")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantContent(t, s.path("etc/passwd-"), "root:x:0:0")
			},
		},
		{
			name:  "duplicate hardlink entry is kept",
			layer: []ent{file("a", "data"), hardlinkEnt("b", "a"), hardlinkEnt("b", "a"), hardlinkEnt("a", "a")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantContent(t, s.path("b"), "data")
				wantContent(t, s.path("a"), "data")
			},
		},
		{
			name:  "fifo",
			layer: []ent{{name: "run/fifo", typ: tar.TypeFifo, mode: 0o620}},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantType(t, s.path("run/fifo"), unix.S_IFIFO)
				wantMode(t, s.path("run/fifo"), 0o620)
				wantMtime(t, s.path("run/fifo"), testTime)
			},
		},
		{
			name:  "missing parents are created",
			layer: []ent{file("a/b/c/d", "deep")},
			check: func(t *testing.T, s sandbox, st Stats) {
				wantContent(t, s.path("a/b/c/d"), "deep")
				wantMode(t, s.path("a/b"), 0o755&^currentUmask())
				if st.Dirs != 0 {
					t.Errorf("Dirs: got %d, want 0 (implicit parents are not entries)", st.Dirs)
				}
			},
		},
		{
			name:  "root entry sets the root's mode and times",
			layer: []ent{{name: "./", typ: tar.TypeDir, mode: 0o751, mtime: later}, file("./x", "x")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantMode(t, s.dir, 0o751)
				wantMtime(t, s.dir, later)
				wantContent(t, s.path("x"), "x")
			},
		},
		{
			name:  "user xattr is set and trusted.overlay is never taken from a layer",
			layer: []ent{{name: "f", body: "x", xattrs: map[string]string{"user.test": "v1", "trusted.overlay.opaque": "y", "security.selinux": "system_u:object_r:etc_t:s0"}}},
			check: func(t *testing.T, s sandbox, _ Stats) {
				if got := getxattr(t, s.path("f"), "user.test"); got != "v1" {
					t.Errorf("user.test: got %q, want %q", got, "v1")
				}
				for _, name := range []string{"trusted.overlay.opaque", "security.selinux"} {
					buf := make([]byte, 256)
					if _, err := unix.Lgetxattr(s.path("f"), name, buf); !errors.Is(err, unix.ENODATA) {
						t.Errorf("%s: got %v, want ENODATA", name, err)
					}
				}
			},
		},
		{
			name: "device nodes are counted and never created",
			layer: []ent{
				{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
				{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660},
				{name: "../../dev/evil", typ: tar.TypeChar},
			},
			check: func(t *testing.T, s sandbox, st Stats) {
				wantMissing(t, s.path("dev"))
				if st.SkippedDevices != 3 {
					t.Errorf("SkippedDevices: got %d, want 3", st.SkippedDevices)
				}
			},
		},
		{
			name:  "global PAX header is skipped",
			layer: []ent{{name: "pax_global_header", typ: tar.TypeXGlobalHeader}, file("a", "a")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.dir, "a")
			},
		},
		{
			name:    "unknown entry type is refused",
			layer:   []ent{{name: "v", typ: 'V'}},
			wantErr: ErrInvalidEntry,
		},
		{
			name:    "empty symlink target is refused",
			layer:   []ent{{name: "s", typ: tar.TypeSymlink}},
			wantErr: ErrInvalidEntry,
		},
		{
			name:    "regular file naming the root is refused",
			layer:   []ent{file(".", "")},
			wantErr: ErrInvalidEntry,
		},
		{
			name:    "component longer than NAME_MAX is refused",
			layer:   []ent{file(strings.Repeat("n", 256), "x")},
			wantErr: ErrInvalidEntry,
		},
		{
			name:    "path longer than PATH_MAX is refused",
			layer:   []ent{file(strings.Repeat("d/", 2048)+"f", "x")},
			wantErr: ErrInvalidEntry,
		},
		{
			name:  "deep but legal nesting",
			layer: []ent{file(strings.Repeat("d/", 400)+"f", "deep")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantContent(t, s.path(strings.Repeat("d/", 400)+"f"), "deep")
			},
		},
		{
			name:  "dot-dot inside the root is cleaned",
			layer: []ent{file("a/b/../c", "c"), file("./x/./y", "y")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantContent(t, s.path("a/c"), "c")
				wantContent(t, s.path("x/y"), "y")
				wantMissing(t, s.path("a/b"))
			},
		},
	})
}

func TestFlattenReplace(t *testing.T) {
	runFlatten(t, []flattenCase{
		{
			name:  "file over a directory removes the tree",
			lower: []ent{dirEnt("d/"), file("d/a", "a"), dirEnt("d/sub/"), file("d/sub/b", "b")},
			layer: []ent{file("d", "now a file")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantContent(t, s.path("d"), "now a file")
			},
		},
		{
			name:  "directory over a directory keeps it and updates its metadata",
			lower: []ent{{name: "d/", typ: tar.TypeDir, mode: 0o700}, file("d/lower", "l")},
			layer: []ent{{name: "d/", typ: tar.TypeDir, mode: 0o750}, file("d/upper", "u")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.path("d"), "lower", "upper")
				wantMode(t, s.path("d"), 0o750)
			},
		},
		{
			name:  "file over a file replaces it",
			lower: []ent{{name: "f", body: "old", mode: 0o600}},
			layer: []ent{{name: "f", body: "new", mode: 0o644}},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantContent(t, s.path("f"), "new")
				wantMode(t, s.path("f"), 0o644)
			},
		},
		{
			name:  "file over a hardlinked file leaves the other link alone",
			lower: []ent{file("etc/shadow", "secret"), hardlinkEnt("x", "etc/shadow")},
			layer: []ent{file("x", "overwritten")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantContent(t, s.path("etc/shadow"), "secret")
				wantContent(t, s.path("x"), "overwritten")
			},
		},
		{
			name:  "file over a symlink replaces the symlink, not its target",
			lower: []ent{file("target", "keep"), symlinkEnt("s", "target")},
			layer: []ent{file("s", "new")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantType(t, s.path("s"), unix.S_IFREG)
				wantContent(t, s.path("s"), "new")
				wantContent(t, s.path("target"), "keep")
			},
		},
		{
			name:  "directory over a symlink to a directory replaces the symlink",
			lower: []ent{dirEnt("real/"), file("real/a", "a"), symlinkEnt("s", "real")},
			layer: []ent{dirEnt("s/"), file("s/b", "b")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantType(t, s.path("s"), unix.S_IFDIR)
				wantNames(t, s.path("s"), "b")
				wantNames(t, s.path("real"), "a")
			},
		},
		{
			name:  "symlink over a directory removes the tree",
			lower: []ent{dirEnt("d/"), file("d/a", "a")},
			layer: []ent{symlinkEnt("d", "elsewhere")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantType(t, s.path("d"), unix.S_IFLNK)
			},
		},
		{
			name:  "fifo and hardlink over files",
			lower: []ent{file("p", "p"), file("h", "h")},
			layer: []ent{{name: "p", typ: tar.TypeFifo}, file("t", "t"), hardlinkEnt("h", "t")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantType(t, s.path("p"), unix.S_IFIFO)
				wantContent(t, s.path("h"), "t")
			},
		},
		{
			name:  "duplicate entries: the last one wins",
			layer: []ent{file("f", "one"), file("f", "two"), dirEnt("g/"), file("g", "file"), file("h", "file"), dirEnt("h/")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantContent(t, s.path("f"), "two")
				wantContent(t, s.path("g"), "file")
				wantType(t, s.path("h"), unix.S_IFDIR)
			},
		},
		{
			name:  "a directory replaced by a file and made again gets later entries",
			layer: []ent{dirEnt("d/"), file("d/a", "a"), file("d", "file"), dirEnt("d/"), file("d/b", "b")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.path("d"), "b")
			},
		},
		{
			name:    "hardlink whose replacement removes its own target",
			layer:   []ent{dirEnt("d/"), file("d/x", "x"), hardlinkEnt("d", "d/x")},
			wantErr: ErrHardlinkTarget,
		},
		{
			name:    "a file used as a directory component is an error",
			layer:   []ent{file("f", "x"), file("f/x", "y")},
			wantErr: unix.ENOTDIR,
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantContent(t, s.path("f"), "x")
			},
		},
		{
			name:  "writes through a symlinked directory land in its target",
			lower: []ent{dirEnt("run/"), symlinkEnt("var/run", "/run")},
			layer: []ent{file("var/run/pid", "1"), dirEnt("var/run/sub/"), file("var/run/sub/x", "x")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantType(t, s.path("var/run"), unix.S_IFLNK)
				wantContent(t, s.path("run/pid"), "1")
				wantContent(t, s.path("run/sub/x"), "x")
			},
		},
		{
			name:  "a symlink replaced mid-layer redirects later entries",
			layer: []ent{dirEnt("a/"), dirEnt("b/"), symlinkEnt("l", "a"), file("l/1", "1"), symlinkEnt("l", "b"), file("l/2", "2")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.path("a"), "1")
				wantNames(t, s.path("b"), "2")
			},
		},
	})
}

func TestFlattenWhiteouts(t *testing.T) {
	lower := []ent{
		file("a", "a"),
		dirEnt("d/"), file("d/x", "x"), dirEnt("d/sub/"), file("d/sub/y", "y"),
		dirEnt("keep/"), file("keep/k", "k"),
	}
	runFlatten(t, []flattenCase{
		{
			name:  "whiteout deletes a file and is not written",
			lower: lower,
			layer: []ent{file(".wh.a", "")},
			check: func(t *testing.T, s sandbox, st Stats) {
				wantNames(t, s.dir, "d", "keep")
				if st.Whiteouts != 1 || st.Files != 0 {
					t.Errorf("stats: got %+v, want Whiteouts 1 Files 0", st)
				}
			},
		},
		{
			name:  "whiteout deletes a directory tree",
			lower: lower,
			layer: []ent{file(".wh.d", "")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.dir, "a", "keep")
			},
		},
		{
			name:  "nested whiteout",
			lower: lower,
			layer: []ent{dirEnt("d/"), file("d/sub/.wh.y", "")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.path("d/sub"))
				wantNames(t, s.path("d"), "sub", "x")
			},
		},
		{
			name:  "whiteout of a missing name or under a missing parent does nothing",
			lower: lower,
			layer: []ent{file(".wh.nothing", ""), file("no/such/.wh.dir", ""), file("a/.wh.x", "")},
			check: func(t *testing.T, s sandbox, st Stats) {
				wantNames(t, s.dir, "a", "d", "keep")
				if st.Whiteouts != 3 {
					t.Errorf("Whiteouts: got %d, want 3", st.Whiteouts)
				}
			},
		},
		{
			name:  "opaque directory loses what lower layers put there, only",
			lower: lower,
			layer: []ent{dirEnt("d/"), file("d/before", "b"), dirEnt("d/sub/"), file("d/sub/mine", "m"), file("d/.wh..wh..opq", ""), file("d/after", "a")},
			check: func(t *testing.T, s sandbox, st Stats) {
				wantNames(t, s.path("d"), "after", "before", "sub")
				wantNames(t, s.path("d/sub"), "mine")
				wantNames(t, s.dir, "a", "d", "keep")
				if st.Whiteouts != 1 {
					t.Errorf("Whiteouts: got %d, want 1", st.Whiteouts)
				}
			},
		},
		{
			name:  "opaque marker first",
			lower: lower,
			layer: []ent{file("d/.wh..wh..opq", ""), dirEnt("d/"), file("d/new", "n")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.path("d"), "new")
			},
		},
		{
			name:  "opaque root",
			lower: lower,
			layer: []ent{file("fresh", "f"), file(".wh..wh..opq", "")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.dir, "fresh")
			},
		},
		{
			name:  "opaque directory keeps files written through implicit parents",
			lower: lower,
			layer: []ent{file("d/new/deep/f", "f"), file("d/.wh..wh..opq", "")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.path("d"), "new")
				wantContent(t, s.path("d/new/deep/f"), "f")
			},
		},
		{
			name:  "whiteout spares what the same layer wrote, in either order",
			lower: lower,
			layer: []ent{file("a", "mine"), file(".wh.a", ""), file(".wh.d", ""), dirEnt("d/"), file("d/new", "n")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantContent(t, s.path("a"), "mine")
				wantNames(t, s.path("d"), "new")
			},
		},
		{
			name:  "whiteout of a directory this layer added to keeps the additions",
			lower: lower,
			layer: []ent{file("d/sub/new", "n"), file(".wh.d", "")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.path("d"), "sub")
				wantNames(t, s.path("d/sub"), "new")
			},
		},
		{
			name:  "reserved whiteout names are ignored",
			lower: lower,
			layer: []ent{file(".wh..wh.plnk", ""), file(".wh..wh.aufs", "")},
			check: func(t *testing.T, s sandbox, st Stats) {
				wantNames(t, s.dir, "a", "d", "keep")
				if st.Whiteouts != 0 {
					t.Errorf("Whiteouts: got %d, want 0", st.Whiteouts)
				}
			},
		},
		{
			name:    "whiteout naming nothing is refused",
			layer:   []ent{file("d/.wh.", "")},
			wantErr: ErrInvalidEntry,
		},
		{
			name:  "whiteout through a symlinked parent deletes in its target",
			lower: []ent{dirEnt("real/"), file("real/x", "x"), file("real/y", "y"), symlinkEnt("link", "/real")},
			layer: []ent{file("link/.wh.x", "")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.path("real"), "y")
			},
		},
		{
			name:  "whiteout of a symlink deletes the symlink, not its target",
			lower: []ent{dirEnt("real/"), file("real/x", "x"), symlinkEnt("link", "real")},
			layer: []ent{file(".wh.link", "")},
			check: func(t *testing.T, s sandbox, _ Stats) {
				wantNames(t, s.dir, "real")
				wantNames(t, s.path("real"), "x")
			},
		},
	})
}

func TestErrorMessageNamesEntry(t *testing.T) {
	s := newSandbox(t)
	_, err := applyTar(t, s.dir, mkTar(t, file("../etc/passwd", "x")), Options{})
	want := `layer entry "../etc/passwd": path escapes the layer root`
	if err == nil || err.Error() != want {
		t.Errorf("error: got %v, want %s", err, want)
	}
	if !errors.Is(err, ErrEscape) {
		t.Errorf("errors.Is(%v, ErrEscape): got false, want true", err)
	}

	_, err = applyTar(t, s.dir, mkTar(t, hardlinkEnt("h", "missing")), Options{})
	if err == nil || !errors.Is(err, ErrHardlinkTarget) || !strings.Contains(err.Error(), `layer entry "h"`) || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("error: got %v, want ErrHardlinkTarget naming entry h and target missing", err)
	}
}

func TestApplyReadsToEOF(t *testing.T) {
	s := newSandbox(t)
	data := append(mkTar(t, file("a", "a")), make([]byte, 10240)...)
	r := bytes.NewReader(data)
	if _, err := Apply(s.dir, r, Options{}); err != nil {
		t.Fatalf("Apply: got error %v, want nil", err)
	}
	if r.Len() != 0 {
		t.Errorf("unread bytes: got %d, want 0", r.Len())
	}
}

func TestHostileHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		data func(t *testing.T) []byte
	}{
		{"negative size", func(t *testing.T) []byte { return patchSize(t, mkTar(t, file("f", "x")), "-000000001\x00") }},
		{"huge size", func(t *testing.T) []byte { return patchSize(t, mkTar(t, file("f", "x")), "77777777777") }},
		{"size past the end", func(t *testing.T) []byte {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			if err := tw.WriteHeader(tarHeader(ent{name: "f", size: 1 << 20})); err != nil {
				t.Fatal(err)
			}
			tw.Write(make([]byte, 1000))
			tw.Flush() // fails, and leaves what was written
			return buf.Bytes()
		}},
		{"truncated header", func(t *testing.T) []byte { return mkTar(t, file("f", "x"))[:100] }},
		{"garbage", func(t *testing.T) []byte { return bytes.Repeat([]byte("garbage!"), 200) }},
		{"sparse file with a 1 TiB hole", sparseTar},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := applyTar(t, s.dir, tc.data(t), Options{})
			if err == nil {
				t.Errorf("Apply: got nil error, want one")
			}
			if tc.name == "sparse file with a 1 TiB hole" && !errors.Is(err, ErrInvalidEntry) {
				t.Errorf("Apply: got %v, want ErrInvalidEntry", err)
			}
			s.checkContained(t)
		})
	}
}

// sparseTar is a GNU PAX 1.0 sparse file of 1 TiB, all hole, in 2 KiB.
// archive/tar's writer drops GNU.sparse.* records, so they are written under
// another name of the same length and renamed in the bytes.
func sparseTar(t *testing.T) []byte {
	t.Helper()
	sparseMap := "1\n0\n0\n"
	body := sparseMap + string(make([]byte, 512-len(sparseMap)))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{
		Name: "GNUSparseFile.0/f", Typeflag: tar.TypeReg, Size: int64(len(body)), Mode: 0o644, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"XNU.sparse.major": "1", "XNU.sparse.minor": "0", "XNU.sparse.name": "f", "XNU.sparse.realsize": "1099511627776"},
	}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(buf.Bytes(), []byte("XNU.sparse."), []byte("GNU.sparse."))
}

// patchSize overwrites the size field of the first header whose typeflag is
// a regular file, and fixes the checksum.
func patchSize(t *testing.T, data []byte, size string) []byte {
	t.Helper()
	data = bytes.Clone(data)
	for off := 0; off+512 <= len(data); off += 512 {
		blk := data[off : off+512]
		if blk[156] != tar.TypeReg {
			continue
		}
		copy(blk[124:136], size)
		copy(blk[148:156], "        ")
		sum := 0
		for _, c := range blk {
			sum += int(c)
		}
		copy(blk[148:156], []byte(octal(sum, 6)+"\x00 "))
		return data
	}
	t.Fatal("no regular file header to patch")
	return nil
}

func octal(n, width int) string {
	s := ""
	for ; n > 0; n /= 8 {
		s = string(rune('0'+n%8)) + s
	}
	for len(s) < width {
		s = "0" + s
	}
	return s
}

func TestSync(t *testing.T) {
	s := newSandbox(t)
	mustApply(t, s.dir, Options{}, file("a", "a"))
	if err := Sync(s.dir); err != nil {
		t.Errorf("Sync: got %v, want nil", err)
	}
	if err := Sync(s.path("missing")); err == nil {
		t.Error("Sync of a missing dir: got nil, want an error")
	}
}

func TestApplyBadArguments(t *testing.T) {
	s := newSandbox(t)
	if _, err := Apply(s.path("missing"), bytes.NewReader(nil), Options{}); err == nil {
		t.Error("Apply to a missing dir: got nil, want an error")
	}
	if _, err := Apply(s.dir, bytes.NewReader(nil), Options{Mode: 7}); err == nil {
		t.Error("Apply with an unknown mode: got nil, want an error")
	}
	if _, err := Apply(s.dir, iotestErrReader{}, Options{}); err == nil {
		t.Error("Apply of a failing reader: got nil, want an error")
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, io.ErrClosedPipe }

func getxattr(t *testing.T, path, name string) string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil {
		t.Errorf("getxattr %s %s: got error %v, want a value", path, name, err)
		return ""
	}
	return string(buf[:n])
}

func currentUmask() uint32 {
	// Reading the umask means setting it; the tests do not run in
	// parallel, so put it back at once.
	m := unix.Umask(0)
	unix.Umask(m)
	return uint32(m)
}
