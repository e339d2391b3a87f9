package layer

import (
	"archive/tar"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// benchLayer builds a layer shaped like a distribution base image: about
// 50 MB in a few thousand files, most of them small, spread over nested
// directories, with some symlinks and hardlinks.
func benchLayer(tb testing.TB) []byte {
	tb.Helper()
	const total = 50 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	content := make([]byte, 4<<20)
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	var ents []ent
	var dirs []string
	for i := 0; i < 150; i++ {
		d := fmt.Sprintf("usr/d%02d/", i%30)
		if i >= 30 {
			d += fmt.Sprintf("s%03d/", i)
		}
		dirs = append(dirs, d)
	}
	ents = append(ents, dirEnt("usr/"))
	for _, d := range dirs {
		ents = append(ents, dirEnt(d))
	}
	size := 0
	for i := 0; size < total; i++ {
		var n int
		switch r := rng.IntN(100); {
		case r < 80:
			n = 256 + rng.IntN(8<<10) // small: configs, scripts, headers
		case r < 99:
			n = 8<<10 + rng.IntN(56<<10) // medium: libraries, modules
		default:
			n = 128<<10 + rng.IntN(896<<10) // large: binaries
		}
		off := rng.IntN(len(content) - n)
		name := fmt.Sprintf("%sf%05d", dirs[rng.IntN(len(dirs))], i)
		ents = append(ents, ent{name: name, body: string(content[off : off+n]), mode: 0o644})
		size += n
		switch i % 50 {
		case 7:
			ents = append(ents, symlinkEnt(name+".lnk", filepath.Base(name)))
		case 13:
			ents = append(ents, hardlinkEnt(name+".hard", name))
		}
	}
	// In name order, as image builders write them: a directory's entries
	// come together, and the hardlinks after their targets.
	sort.SliceStable(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	return mkTar(tb, ents...)
}

func BenchmarkApply(b *testing.B) {
	data := benchLayer(b)
	files := 0
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Typeflag == tar.TypeReg {
			files++
		}
	}
	b.Logf("layer: %d bytes, %d files", len(data), files)
	parent := b.TempDir()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(parent, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := Apply(dir, bytes.NewReader(data), Options{Mode: Flatten}); err != nil {
			b.Fatalf("Apply: got error %v, want nil", err)
		}
		b.StopTimer()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
