package layer

import (
	"archive/tar"
	"bytes"
	"testing"
)

// FuzzApply feeds arbitrary bytes to Apply in Flatten mode: it must never
// panic and never write outside dir, whatever it returns.
func FuzzApply(f *testing.F) {
	// The seeds' absolute symlinks aim at a sandbox parent of this shape;
	// the one a run gets differs, but mutations of "/tmp/..." targets still
	// aim at real host paths.
	fake := sandbox{parent: "/tmp", dir: "/tmp/rootfs", sentinel: "/tmp/sentinel"}
	for _, tc := range maliciousCases() {
		var ents []ent
		if tc.lower != nil {
			ents = append(ents, tc.lower(fake)...)
		}
		ents = append(ents, tc.layer(fake)...)
		f.Add(mkTar(f, ents...))
	}
	f.Add(mkTar(f,
		dirEnt("./"), dirEnt("d/"), file("d/a", "a"), file("d/.wh..wh..opq", ""), file(".wh.x", ""),
		hardlinkEnt("d/b", "d/a"), symlinkEnt("s", "d"), file("s/c", "c"), ent{name: "p", typ: tar.TypeFifo},
		ent{name: "ro/", typ: tar.TypeDir, mode: 0o555}, file("ro/f", "f"),
	))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newSandbox(t)
		// Both resolvers, picked by a bit the fuzzer controls.
		walkOnly := len(data)%2 == 1
		_, _ = apply(s.dir, bytes.NewReader(data), Options{Mode: Flatten}, walkOnly)
		if msg := s.contained(); msg != "" {
			t.Fatal(msg)
		}
	})
}
