package layer

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mknod and trusted.* xattrs")
	}
}

func wantWhiteoutDevice(t *testing.T, p string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Errorf("stat %s: got %v, want a 0/0 character device", p, err)
		return
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("%s: got mode %o rdev %d:%d, want a 0/0 character device", p, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
}

func TestOverlayWhiteouts(t *testing.T) {
	needRoot(t)
	s := newSandbox(t)
	st := mustApply(t, s.dir, Options{Mode: Overlay},
		dirEnt("etc/"),
		file("etc/.wh.passwd", ""),
		dirEnt("opq/"), file("opq/.wh..wh..opq", ""), file("opq/kept", "k"),
		file("implicit/.wh..wh..opq", ""),
		file("mine", "m"), file(".wh.mine", ""),
		file(".wh.later", ""), file("later", "l"),
		file(".wh..wh.plnk", ""),
		file(".wh.dd", ""), dirEnt("dd/"), file("dd/f", "f"),
	)
	wantWhiteoutDevice(t, s.path("etc/passwd"))
	wantMissing(t, s.path("etc/.wh.passwd"))
	if got := getxattr(t, s.path("opq"), "trusted.overlay.opaque"); got != "y" {
		t.Errorf("opq trusted.overlay.opaque: got %q, want %q", got, "y")
	}
	if got := getxattr(t, s.path("implicit"), "trusted.overlay.opaque"); got != "y" {
		t.Errorf("implicit trusted.overlay.opaque: got %q, want %q", got, "y")
	}
	wantNames(t, s.path("opq"), "kept")
	// A whiteout hides lower layers only: the layer's own file wins.
	wantContent(t, s.path("mine"), "m")
	wantContent(t, s.path("later"), "l")
	wantType(t, s.path("dd"), unix.S_IFDIR)
	wantNames(t, s.dir, "dd", "etc", "implicit", "later", "mine", "opq")
	if st.Whiteouts != 6 {
		t.Errorf("Whiteouts: got %d, want 6", st.Whiteouts)
	}
	s.checkContained(t)
}

func TestOverlayMalicious(t *testing.T) {
	needRoot(t)
	s := newSandbox(t)
	// Whiteout devices and the opaque xattr must not land outside either.
	_, err := applyTar(t, s.dir, mkTar(t,
		symlinkEnt("abs", s.parent), file("abs/.wh.sentinel", ""), file("abs/.wh..wh..opq", ""),
		symlinkEnt("rel", "../.."), file("rel/.wh.sentinel2", ""),
	), Options{Mode: Overlay})
	if err != nil {
		t.Fatalf("Apply: got error %v, want nil", err)
	}
	wantWhiteoutDevice(t, s.path(s.parent+"/sentinel"))
	wantWhiteoutDevice(t, s.path("sentinel2"))
	buf := make([]byte, 8)
	if _, err := unix.Lgetxattr(s.parent, "trusted.overlay.opaque", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("sandbox parent trusted.overlay.opaque: got %v, want ENODATA", err)
	}
	s.checkContained(t)

	_, err = applyTar(t, s.dir, mkTar(t, file("../.wh.sentinel", "")), Options{Mode: Overlay})
	if !errors.Is(err, ErrEscape) {
		t.Errorf("Apply: got error %v, want ErrEscape", err)
	}
	s.checkContained(t)
}

func TestChown(t *testing.T) {
	needRoot(t)
	s := newSandbox(t)
	mustApply(t, s.dir, Options{Chown: true},
		ent{name: "d/", typ: tar.TypeDir, uid: 1001, gid: 1002, mode: 0o2775},
		ent{name: "d/su", body: "x", uid: 1003, gid: 1004, mode: 0o4755},
		ent{name: "d/link", typ: tar.TypeSymlink, link: "su", uid: 1005, gid: 1006},
		ent{name: "d/fifo", typ: tar.TypeFifo, uid: 1007, gid: 1008, mode: 0o640},
		ent{name: "./", typ: tar.TypeDir, uid: 1009, gid: 1010, mode: 0o755},
	)
	for _, c := range []struct {
		path     string
		uid, gid uint32
		mode     uint32
	}{
		{"d", 1001, 1002, 0o2775},
		{"d/su", 1003, 1004, 0o4755}, // setuid survives the chown
		{"d/link", 1005, 1006, 0o777},
		{"d/fifo", 1007, 1008, 0o640},
		{".", 1009, 1010, 0o755},
	} {
		st := lstat(t, s.path(c.path))
		if st.Uid != c.uid || st.Gid != c.gid || st.Mode&0o7777 != c.mode {
			t.Errorf("%s: got %d:%d %04o, want %d:%d %04o", c.path, st.Uid, st.Gid, st.Mode&0o7777, c.uid, c.gid, c.mode)
		}
	}
	// Without Chown everything belongs to the caller.
	s2 := newSandbox(t)
	mustApply(t, s2.dir, Options{}, ent{name: "f", body: "x", uid: 1003, gid: 1004})
	if st := lstat(t, s2.path("f")); st.Uid != uint32(os.Geteuid()) {
		t.Errorf("f without Chown: got uid %d, want %d", st.Uid, os.Geteuid())
	}

	_, err := applyTar(t, s.dir, mkTar(t, ent{name: "big", body: "x", uid: 1 << 33}), Options{Chown: true})
	if !errors.Is(err, ErrInvalidEntry) {
		t.Errorf("uid 1<<33: got %v, want ErrInvalidEntry", err)
	}
}

// fileCap is a version 2 security.capability value: cap_net_bind_service,
// permitted and effective.
func fileCap() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<10)
	return string(b)
}

func TestTrustedXattrsAndCapabilities(t *testing.T) {
	needRoot(t)
	s := newSandbox(t)
	mustApply(t, s.dir, Options{Chown: true},
		ent{name: "bin/ping", body: "x", uid: 0, gid: 0, mode: 0o755, xattrs: map[string]string{"security.capability": fileCap(), "trusted.md5": "abc"}},
		ent{name: "bin/owned", body: "x", uid: 1000, gid: 1000, mode: 0o755, xattrs: map[string]string{"security.capability": fileCap()}},
		ent{name: "d/", typ: tar.TypeDir, xattrs: map[string]string{"trusted.dir": "1", "trusted.overlay.opaque": "y"}},
		ent{name: "l", typ: tar.TypeSymlink, link: "bin/ping", xattrs: map[string]string{"trusted.link": "2", "user.ignored": "x"}},
	)
	if got := getxattr(t, s.path("bin/ping"), "security.capability"); got != fileCap() {
		t.Errorf("security.capability: got %x, want %x", got, fileCap())
	}
	// Set after the chown, which would have cleared it.
	if got := getxattr(t, s.path("bin/owned"), "security.capability"); got != fileCap() {
		t.Errorf("security.capability after chown: got %x, want %x", got, fileCap())
	}
	if got := getxattr(t, s.path("bin/ping"), "trusted.md5"); got != "abc" {
		t.Errorf("trusted.md5: got %q, want %q", got, "abc")
	}
	if got := getxattr(t, s.path("d"), "trusted.dir"); got != "1" {
		t.Errorf("trusted.dir: got %q, want %q", got, "1")
	}
	if got := getxattr(t, s.path("l"), "trusted.link"); got != "2" {
		t.Errorf("trusted.link on the symlink: got %q, want %q", got, "2")
	}
	buf := make([]byte, 64)
	if _, err := unix.Lgetxattr(s.path("d"), "trusted.overlay.opaque", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("trusted.overlay.opaque from the layer: got %v, want ENODATA", err)
	}
	if _, err := unix.Getxattr(s.path("bin/ping"), "trusted.link", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("symlink's xattr on its target: got %v, want ENODATA", err)
	}
}

// TestUnprivileged runs only as non-root, where the kernel refuses trusted.*
// and security.capability. (It lets anyone mknod a 0/0 whiteout device since
// Linux 5.8, so only Overlay's opaque marker is bound to fail.)
func TestUnprivileged(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("needs non-root: checks what is skipped or refused without privileges")
	}
	s := newSandbox(t)
	mustApply(t, s.dir, Options{},
		ent{name: "bin/ping", body: "x", mode: 0o755, xattrs: map[string]string{"security.capability": fileCap(), "trusted.md5": "abc", "user.ok": "1"}},
		ent{name: "d/", typ: tar.TypeDir, xattrs: map[string]string{"trusted.dir": "1"}},
	)
	wantContent(t, s.path("bin/ping"), "x")
	if got := getxattr(t, s.path("bin/ping"), "user.ok"); got != "1" {
		t.Errorf("user.ok: got %q, want %q", got, "1")
	}
	_, err := Apply(s.path("d"), bytes.NewReader(mkTar(t, file(".wh..wh..opq", ""))), Options{Mode: Overlay})
	if !errors.Is(err, unix.EPERM) {
		t.Errorf("Overlay opaque marker without root: got %v, want EPERM", err)
	}
	s.checkContained(t)
}
