package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"atoll.dev/atoll/internal/runtime/imagetest"

	"atoll.dev/atoll/bench/internal/report"
)

// bigRef names the 50 MB image in its layout.
const bigRef = "bench/big:latest"

// bigImage is the written layout of the 50 MB image and what the table
// says of it.
type bigImage struct {
	layout     string
	layers     int
	entries    int   // files and symlinks, over all layers
	bytes      int64 // the files' contents, over all layers
	compressed int64 // the gzip layers
}

// bigBench times the first run of the 50 MB image, atoll (import, unpack,
// run, on a fresh root each round) against umoci unpack (into a fresh
// directory each round), and returns the table's row.
func bigBench(ctx context.Context, o options, w *work, testapp string) ([]row, error) {
	fmt.Fprintln(os.Stderr, "first run: writing the 50 MB image")
	img, err := writeBigImage(filepath.Join(w.dir, "big-image"), testapp)
	if err != nil {
		return nil, err
	}

	atollFirst := func(round int) (time.Duration, error) {
		root := filepath.Join(w.dir, fmt.Sprintf("first-atoll-%d", round))
		// Written back before the clock starts: no round pays for the
		// previous one's writes and removals.
		syscall.Sync()
		took, err := w.timed(o.atoll, "pod", "run", "--root", root, "--rm", "--net=none", "--insecure-options=image", img.layout, "--", "true")
		if gcErr := atollGC(o, root); gcErr != nil && err == nil {
			err = gcErr
		}
		if rmErr := removeTree(root); rmErr != nil && err == nil {
			err = rmErr
		}
		return took, err
	}
	umociFirst := func(round int) (time.Duration, error) {
		bundle := filepath.Join(w.dir, fmt.Sprintf("first-umoci-%d", round))
		syscall.Sync()
		took, err := w.timed("umoci", "unpack", "--image", img.layout+":"+bigRef, bundle)
		if rmErr := removeTree(bundle); rmErr != nil && err == nil {
			err = rmErr
		}
		return took, err
	}
	contenders := []struct {
		name  string
		first func(round int) (time.Duration, error)
		took  []time.Duration
	}{{name: "atoll", first: atollFirst}, {name: "umoci", first: umociFirst}}

	fmt.Fprintln(os.Stderr, "first run: one warm-up of each, then", o.bigRounds, "rounds")
	for _, c := range contenders {
		if _, err := c.first(0); err != nil {
			return nil, fmt.Errorf("first-run warm-up of %s: %w", c.name, err)
		}
	}
	for round := 1; round <= o.bigRounds; round++ {
		for i := range contenders {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("interrupted in first-run round %d: %w", round, err)
			}
			c := &contenders[(round+i)%len(contenders)]
			took, err := c.first(round)
			if err != nil {
				return nil, fmt.Errorf("first-run round %d, %s: %w", round, c.name, err)
			}
			c.took = append(c.took, took)
		}
		fmt.Fprintf(os.Stderr, "first-run round %d: atoll %s, umoci %s\n", round, ms(contenders[0].took[round-1]), ms(contenders[1].took[round-1]))
	}

	return []row{{
		what: fmt.Sprintf("first run of a %.0f MB image (%d gzip layers, %.0f MB compressed, %d files and symlinks), `pod run --rm --net=none LAYOUT` on a fresh root, import and unpack included; peer `umoci unpack` into a fresh directory",
			float64(img.bytes)/1e6, img.layers, float64(img.compressed)/1e6, img.entries),
		atoll: report.Median(contenders[0].took), peer: report.Median(contenders[1].took), target: 1,
	}}, nil
}

// writeBigImage writes a three-layer image shaped like a small
// distribution's, all from a fixed seed so that every run measures the same
// bytes: the test program with its base files; libraries and programs
// (about 20 MB that barely compress, symlinks to the libraries); text
// (about 20 MB that compresses, documentation and configuration, symlinks
// to shared licences), which also replaces a few files of the layer below
// and deletes a few (whiteouts).
func writeBigImage(dir, testapp string) (bigImage, error) {
	program, err := os.ReadFile(testapp)
	if err != nil {
		return bigImage{}, err
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	words := vocabulary(rng, 3000)
	packages := words[len(words)-150:] // rarer words name packages

	base := imagetest.BaseFiles()
	base["/bin/testapp"] = imagetest.File{Data: program, Mode: 0o755}
	libs, libFiles := libraryLayer(rng, words, packages)
	docs := textLayer(rng, words, packages, libFiles)

	image, err := imagetest.NewImage(v1.Config{Entrypoint: []string{"/bin/testapp"}, Env: []string{imagetest.DefaultPath}}, base, libs, docs)
	if err != nil {
		return bigImage{}, err
	}
	if err := imagetest.SaveLayout(dir, image, bigRef); err != nil {
		return bigImage{}, err
	}
	stats := bigImage{layout: dir}
	layers, err := image.Layers()
	if err != nil {
		return bigImage{}, err
	}
	for _, l := range layers {
		size, err := l.Size()
		if err != nil {
			return bigImage{}, err
		}
		stats.layers++
		stats.compressed += size
	}
	for _, files := range []map[string]imagetest.File{base, libs, docs} {
		for p, f := range files {
			if !f.Dir && !strings.Contains(p, "/.wh.") {
				stats.entries++
				stats.bytes += int64(len(f.Data))
			}
		}
	}
	return stats, nil
}

// libraryLayer makes 400 binary files, 70% libraries under
// /usr/lib/x86_64-linux-gnu/PACKAGE (half of them with a lib*.so symlink)
// and 30% programs in /usr/bin, of 1 KiB to 300 KiB. It also returns the
// libraries' paths in the order made, for the layer above to replace and
// delete some.
func libraryLayer(rng *rand.Rand, words, packages []string) (map[string]imagetest.File, []string) {
	files := map[string]imagetest.File{}
	var libs []string
	for regular := 0; regular < 400; {
		name := pick(rng, words)
		data := binaryish(rng, logUniform(rng, 1<<10, 300<<10))
		if rng.IntN(10) < 7 {
			dir := "/usr/lib/x86_64-linux-gnu/" + pick(rng, packages)
			so := fmt.Sprintf("lib%s.so", name)
			p := fmt.Sprintf("%s/%s.%d", dir, so, 1+rng.IntN(4))
			if _, taken := files[p]; taken {
				continue
			}
			files[p] = imagetest.File{Data: data}
			libs = append(libs, p)
			regular++
			if _, taken := files[dir+"/"+so]; !taken && rng.IntN(2) == 0 {
				files[dir+"/"+so] = imagetest.File{Link: path.Base(p)}
			}
			continue
		}
		p := "/usr/bin/" + name
		if _, taken := files[p]; taken {
			continue
		}
		files[p] = imagetest.File{Data: data, Mode: 0o755}
		regular++
	}
	return files, libs
}

// textLayer makes 1,600 text files of 100 B to 100 KiB (documentation,
// data, configuration), a shared licence per kind with a copyright symlink
// to one in most documentation directories, and replaces five of the
// libraries below and deletes five.
func textLayer(rng *rand.Rand, words, packages, libs []string) map[string]imagetest.File {
	files := map[string]imagetest.File{}
	licences := []string{"GPL-2", "GPL-3", "LGPL-2.1", "Apache-2.0", "BSD", "MIT"}
	for _, l := range licences {
		files["/usr/share/common-licenses/"+l] = imagetest.File{Data: text(rng, words, logUniform(rng, 1<<10, 40<<10))}
	}
	for made := 0; made < 1600; {
		pkg, name := pick(rng, packages), pick(rng, words)
		var p string
		switch n := rng.IntN(20); {
		case n < 10:
			p = fmt.Sprintf("/usr/share/doc/%s/%s.txt", pkg, name)
		case n < 17:
			p = fmt.Sprintf("/usr/share/%s/%s/%s.dat", pkg, pick(rng, words), name)
		default:
			p = fmt.Sprintf("/etc/%s/%s.conf", pkg, name)
		}
		if _, taken := files[p]; taken {
			continue
		}
		files[p] = imagetest.File{Data: text(rng, words, logUniform(rng, 100, 100<<10))}
		made++
		copyright := fmt.Sprintf("/usr/share/doc/%s/copyright", pkg)
		if _, taken := files[copyright]; !taken && strings.HasPrefix(p, "/usr/share/doc/") {
			files[copyright] = imagetest.File{Link: "../../common-licenses/" + pick(rng, licences)}
		}
	}
	for i, lib := range libs[:10] {
		if i < 5 {
			files[lib] = imagetest.File{Data: binaryish(rng, logUniform(rng, 1<<10, 300<<10))}
		} else {
			files[path.Dir(lib)+"/.wh."+path.Base(lib)] = imagetest.File{}
		}
	}
	return files
}

// vocabulary makes n distinct lowercase words of 2 to 9 letters.
func vocabulary(rng *rand.Rand, n int) []string {
	seen := map[string]bool{}
	var words []string
	for len(words) < n {
		b := make([]byte, 2+rng.IntN(8))
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		if w := string(b); !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	return words
}

// pick chooses a word, the first ones far more often than the last, as
// words of a language are.
func pick(rng *rand.Rand, words []string) string {
	return words[rng.IntN(rng.IntN(len(words))+1)]
}

// logUniform draws a size between lo and hi, as many small ones as large
// ones per doubling, as file sizes on a system are.
func logUniform(rng *rand.Rand, lo, hi int) int {
	return int(float64(lo) * math.Exp(rng.Float64()*math.Log(float64(hi)/float64(lo))))
}

// binaryish makes n bytes like machine code's for gzip: a quarter zeros,
// the rest random, so that they compress only a little.
func binaryish(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		if c := byte(rng.Uint32()); c >= 64 {
			b[i] = c
		}
	}
	return b
}

// text makes n bytes of lines of words.
func text(rng *rand.Rand, words []string, n int) []byte {
	var b strings.Builder
	b.Grow(n + 16)
	for b.Len() < n {
		for range 4 + rng.IntN(9) {
			b.WriteString(pick(rng, words))
			b.WriteByte(' ')
		}
		b.WriteByte('\n')
	}
	return []byte(b.String()[:n])
}
