package image

import (
	"archive/tar"
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/klauspost/compress/gzip"

	"atoll.dev/atoll/internal/runtime/layer"
)

// benchLayout writes a ~50 MB (compressed) image into an OCI layout tagged
// "bench": three gzip layers of a few thousand files, of sizes and
// compressibility like a distribution's base image. With
// ATOLL_BENCH_LAYOUT=DIR it is written there once and reused, so that
// umoci can unpack the same image:
//
//	umoci unpack --image DIR:bench BUNDLE
func benchLayout(b *testing.B) string {
	dir := os.Getenv("ATOLL_BENCH_LAYOUT")
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "layout")
	} else if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		return dir
	}
	rng := rand.New(rand.NewPCG(1, 2))
	words := make([][]byte, 4096)
	for i := range words {
		w := make([]byte, 3+rng.IntN(8))
		for j := range w {
			w[j] = 'a' + byte(rng.IntN(26))
		}
		words[i] = w
	}
	var layers []benchLayer
	for i, n := range []int{3000, 1500, 600} {
		layers = append(layers, benchLayer{prefix: fmt.Sprintf("usr/l%d", i), files: n})
	}
	var ls []v1.Layer
	for _, bl := range layers {
		ls = append(ls, layerFromTar(b, bl.tar(b, rng, words), compression.GZip))
	}
	img := imageOf(b, ls...)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{annotationRefName: "bench"})); err != nil {
		b.Fatal(err)
	}
	return dir
}

type benchLayer struct {
	prefix string
	files  int
}

// tar makes the layer: directories of files from 100 B to 100 KiB, a sixth
// of them incompressible (binaries), the rest text.
func (bl benchLayer) tar(b *testing.B, rng *rand.Rand, words [][]byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := make([]byte, 0, 1<<20)
	for i := range bl.files {
		if i%50 == 0 {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s/d%d/", bl.prefix, i/50), Typeflag: tar.TypeDir, Mode: 0o755})
		}
		size := 100 << rng.IntN(10) // 100 B .. 100 KiB
		size += rng.IntN(size)
		body = body[:0]
		if i%6 == 0 {
			for len(body) < size {
				body = binaryAppend(body, rng.Uint64())
			}
		} else {
			for len(body) < size {
				body = append(append(body, words[rng.IntN(len(words))]...), ' ')
			}
		}
		body = body[:size]
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s/d%d/f%d", bl.prefix, i/50, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)}); err != nil {
			b.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	return buf.Bytes()
}

func binaryAppend(b []byte, v uint64) []byte {
	for range 8 {
		b = append(b, byte(v))
		v >>= 8
	}
	return b
}

func layoutSize(b *testing.B, dir string) int64 {
	var n int64
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, _ := d.Info()
			n += fi.Size()
		}
		return nil
	})
	return n
}

// BenchmarkImportAndUnpack measures what the first `atoll pod run` of an
// image pays: import of a ~50 MB OCI layout into an empty store, then
// RootfsLayers, fsyncs included.
func BenchmarkImportAndUnpack(b *testing.B) {
	src := benchLayout(b)
	b.Logf("image: %d MB compressed", layoutSize(b, src)>>20)
	modes := []layer.Mode{layer.Flatten}
	if os.Geteuid() == 0 {
		modes = append(modes, layer.Overlay)
	}
	for _, mode := range modes {
		b.Run(map[layer.Mode]string{layer.Flatten: "flatten", layer.Overlay: "overlay"}[mode], func(b *testing.B) {
			b.SetBytes(layoutSize(b, src))
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				s, err := Open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				s.mode = mode
				b.StartTimer()
				img, err := s.Import(ctx, src, ImportOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.RootfsLayers(ctx, img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecompress compares compress/gzip with klauspost's gzip on a
// layer of the benchmark image.
func BenchmarkDecompress(b *testing.B) {
	src := benchLayout(b)
	var biggest string
	var size int64
	filepath.WalkDir(filepath.Join(src, "blobs"), func(p string, d os.DirEntry, err error) error {
		if fi, _ := d.Info(); err == nil && !d.IsDir() && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return nil
	})
	blob, err := os.ReadFile(biggest)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("compress/gzip", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			r, err := stdgzip.NewReader(bytes.NewReader(blob))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, r)
		}
	})
	b.Run("klauspost/gzip", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			r, err := gzip.NewReader(bytes.NewReader(blob))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, r)
		}
	})
}
