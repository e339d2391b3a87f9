package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// maliciousCase is a hostile layer. Its entries may name the sandbox's parent
// directory (absolute symlink targets), hence the function.
type maliciousCase struct {
	name    string
	lower   func(s sandbox) []ent
	layer   func(s sandbox) []ent
	wantErr []error // every one must match with errors.Is; nil: contained, no error
	check   func(t *testing.T, s sandbox)
}

// hostProbe is a name under /etc that no host has: the cases that aim at
// the host's /etc check that it never appears.
func hostProbe() string {
	return "atoll-layer-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

func maliciousCases() []maliciousCase {
	probe := hostProbe()
	layer := func(ents ...ent) func(sandbox) []ent { return func(sandbox) []ent { return ents } }
	return []maliciousCase{
		{
			name:    "dot-dot at the top",
			layer:   layer(file("../pwned", "x")),
			wantErr: []error{ErrEscape},
		},
		{
			name:    "dot-dot climbing out after a component",
			layer:   layer(file("a/../../pwned", "x")),
			wantErr: []error{ErrEscape},
		},
		{
			name:    "dot-dot directory",
			layer:   layer(dirEnt("../../")),
			wantErr: []error{ErrEscape},
		},
		{
			name:    "dot-dot whiteout",
			layer:   layer(file("../.wh.sentinel", "")),
			wantErr: []error{ErrEscape},
		},
		{
			name:  "absolute path lands inside",
			layer: layer(file("/etc/"+probe, "x")),
			check: func(t *testing.T, s sandbox) {
				wantContent(t, s.path("etc/"+probe), "x")
				wantMissing(t, "/etc/"+probe)
			},
		},
		{
			name: "absolute symlink to a host directory, then a file through it",
			layer: func(s sandbox) []ent {
				return []ent{symlinkEnt("evil", s.parent), file("evil/pwned", "x"), symlinkEnt("hostetc", "/etc"), file("hostetc/"+probe, "x")}
			},
			check: func(t *testing.T, s sandbox) {
				wantContent(t, s.path(s.parent+"/pwned"), "x")
				wantContent(t, s.path("etc/"+probe), "x")
				wantMissing(t, "/etc/"+probe)
			},
		},
		{
			name:  "relative symlink climbing out, then a file through it",
			layer: layer(symlinkEnt("evil", "../../../.."), file("evil/pwned", "x")),
			check: func(t *testing.T, s sandbox) {
				wantContent(t, s.path("pwned"), "x")
			},
		},
		{
			name:  "symlink to dot-dot, then a directory and a file through it",
			layer: layer(symlinkEnt("up", ".."), dirEnt("up/d/"), file("up/d/pwned", "x"), file("up/up/up/x", "y")),
			check: func(t *testing.T, s sandbox) {
				wantContent(t, s.path("d/pwned"), "x")
				wantContent(t, s.path("x"), "y")
			},
		},
		{
			name: "chain of two symlinks",
			layer: func(s sandbox) []ent {
				return []ent{symlinkEnt("a", "b"), symlinkEnt("b", s.parent), file("a/pwned", "x"), symlinkEnt("c", "d/../../.."), dirEnt("d/"), file("c/pwned2", "y")}
			},
			check: func(t *testing.T, s sandbox) {
				wantContent(t, s.path(s.parent+"/pwned"), "x")
				wantContent(t, s.path("pwned2"), "y")
			},
		},
		{
			name: "dangling symlink to a host path, then a file through it",
			layer: func(s sandbox) []ent {
				return []ent{symlinkEnt("d", s.parent+"/newdir"), file("d/pwned", "x")}
			},
			check: func(t *testing.T, s sandbox) {
				wantContent(t, s.path(s.parent+"/newdir/pwned"), "x")
			},
		},
		{
			name: "file over a symlink to the sentinel",
			layer: func(s sandbox) []ent {
				return []ent{symlinkEnt("f", s.sentinel), file("f", "overwritten"), symlinkEnt("g", "../sentinel"), file("g", "overwritten")}
			},
			check: func(t *testing.T, s sandbox) {
				wantContent(t, s.path("f"), "overwritten")
				wantContent(t, s.path("g"), "overwritten")
			},
		},
		{
			name: "directory, fifo and hardlink over a symlink to the outside",
			layer: func(s sandbox) []ent {
				return []ent{
					symlinkEnt("d", s.parent), dirEnt("d/"),
					symlinkEnt("p", s.sentinel), {name: "p", typ: tar.TypeFifo},
					file("t", "t"), symlinkEnt("h", s.sentinel), hardlinkEnt("h", "t"),
				}
			},
			check: func(t *testing.T, s sandbox) {
				wantType(t, s.path("d"), unix.S_IFDIR)
				wantType(t, s.path("p"), unix.S_IFIFO)
				wantContent(t, s.path("h"), "t")
			},
		},
		{
			name: "symlink in a lower layer, file through it in the upper",
			lower: func(s sandbox) []ent {
				return []ent{symlinkEnt("evil", s.parent), symlinkEnt("rel", "../")}
			},
			layer: layer(file("evil/pwned", "x"), file("rel/sentinel", "overwritten")),
			check: func(t *testing.T, s sandbox) {
				wantContent(t, s.path(s.parent+"/pwned"), "x")
				wantContent(t, s.path("sentinel"), "overwritten")
			},
		},
		{
			name:    "hardlink to the host's /etc/passwd",
			layer:   layer(hardlinkEnt("passwd", "/etc/passwd")),
			wantErr: []error{ErrHardlinkTarget, unix.ENOENT},
			check: func(t *testing.T, s sandbox) {
				wantMissing(t, s.path("passwd"))
			},
		},
		{
			name:    "hardlink to dot-dot",
			layer:   layer(hardlinkEnt("h", "../sentinel")),
			wantErr: []error{ErrHardlinkTarget, ErrEscape},
		},
		{
			name:    "hardlink to dot-dot outside",
			layer:   layer(hardlinkEnt("h", "../outside")),
			wantErr: []error{ErrHardlinkTarget, ErrEscape},
		},
		{
			name: "hardlink through an absolute symlink to the sentinel",
			layer: func(s sandbox) []ent {
				return []ent{symlinkEnt("evil", s.parent), hardlinkEnt("h", "evil/sentinel")}
			},
			wantErr: []error{ErrHardlinkTarget},
			check: func(t *testing.T, s sandbox) {
				wantMissing(t, s.path("h"))
			},
		},
		{
			name:    "hardlink through a symlink to dot-dot",
			layer:   layer(symlinkEnt("up", "../.."), hardlinkEnt("h", "up/sentinel")),
			wantErr: []error{ErrHardlinkTarget},
		},
		{
			name: "hardlink to a symlink to the outside links the symlink, and a write over it replaces it",
			layer: func(s sandbox) []ent {
				return []ent{symlinkEnt("s", s.sentinel), hardlinkEnt("h", "s"), file("h", "overwritten")}
			},
			check: func(t *testing.T, s sandbox) {
				wantType(t, s.path("s"), unix.S_IFLNK)
				wantContent(t, s.path("h"), "overwritten")
			},
		},
		{
			name:    "hardlink to a directory",
			layer:   layer(dirEnt("d/"), hardlinkEnt("h", "d")),
			wantErr: []error{ErrHardlinkTarget},
		},
		{
			name:    "hardlink to the root",
			layer:   layer(hardlinkEnt("h", "./")),
			wantErr: []error{ErrHardlinkTarget},
		},
		{
			name:  "device nodes",
			layer: layer(ent{name: "null", typ: tar.TypeChar}, ent{name: "sda", typ: tar.TypeBlock}, ent{name: "/dev/mem", typ: tar.TypeChar}),
			check: func(t *testing.T, s sandbox) {
				wantNames(t, s.dir)
			},
		},
		{
			name: "whiteout and opaque marker through symlinks to the outside",
			layer: func(s sandbox) []ent {
				return []ent{
					symlinkEnt("abs", s.parent), file("abs/.wh.sentinel", ""), file("abs/.wh..wh..opq", ""),
					symlinkEnt("rel", "../.."), file("rel/.wh.sentinel", ""), file("rel/.wh.rootfs", ""),
				}
			},
			check: func(t *testing.T, s sandbox) {
				wantType(t, s.path("abs"), unix.S_IFLNK)
			},
		},
		{
			name: "whiteout of dot-dot",
			layer: layer(
				ent{name: "d/.wh..."}, // NAME is ".."
			),
			wantErr: []error{ErrInvalidEntry},
		},
		{
			name: "symlink loop as a parent",
			layer: layer(
				symlinkEnt("a", "b"), symlinkEnt("b", "a"), file("a/x", "x"),
			),
			wantErr: []error{unix.ELOOP},
		},
		{
			name:    "file then the same name as a directory component",
			layer:   layer(file("f", "x"), dirEnt("f/d/")),
			wantErr: []error{unix.ENOTDIR},
		},
	}
}

func TestMaliciousLayers(t *testing.T) {
	for _, walkOnly := range []bool{false, true} {
		resolve := "openat2"
		if walkOnly {
			resolve = "walk"
		}
		for _, tc := range maliciousCases() {
			t.Run(resolve+"/"+tc.name, func(t *testing.T) {
				s := newSandbox(t)
				if tc.lower != nil {
					if _, err := apply(s.dir, bytes.NewReader(mkTar(t, tc.lower(s)...)), Options{}, walkOnly); err != nil {
						t.Fatalf("apply lower: got error %v, want nil", err)
					}
				}
				_, err := apply(s.dir, bytes.NewReader(mkTar(t, tc.layer(s)...)), Options{}, walkOnly)
				if tc.wantErr == nil && err != nil {
					t.Errorf("Apply: got error %v, want nil (contained)", err)
				}
				for _, want := range tc.wantErr {
					if !errors.Is(err, want) {
						t.Errorf("Apply: got error %v, want %v", err, want)
					}
				}
				if tc.check != nil {
					tc.check(t, s)
				}
				s.checkContained(t)
				// Nothing may have been written at the absolute
				// host path of the sandbox either, other than inside.
				wantMissing(t, filepath.Join(s.parent, "pwned"))
			})
		}
	}
}
