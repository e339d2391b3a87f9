package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is a file of a test layer.
type entry struct {
	name, body string
	typ        byte // tar.TypeReg when 0
	link       string
	mode       int64
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: time.Unix(1700000000, 0)}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gzLayer is a gzip layer of the entries.
func gzLayer(t testing.TB, entries ...entry) v1.Layer {
	return layerFromTar(t, tarOf(t, entries...), compression.GZip)
}

func layerFromTar(t testing.TB, b []byte, c compression.Compression) v1.Layer {
	t.Helper()
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	mt := types.OCILayer
	if c == compression.ZStd {
		mt = types.OCILayerZStd
	}
	l, err := tarball.LayerFromOpener(opener, tarball.WithCompression(c), tarball.WithMediaType(mt), tarball.WithCompressedCaching)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf is an OCI image of the layers, with a config that tests can
// recognize.
func imageOf(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{
		Entrypoint: []string{"/bin/web"},
		Cmd:        []string{"--port", "8080"},
		Env:        []string{"PATH=/bin"},
		User:       "1000",
		WorkingDir: "/srv",
		Labels:     map[string]string{"atoll.test": "yes"},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	return withConfig(t, img, cfg)
}

// webImage is a two-layer image: the second deletes a file of the first and
// makes a directory opaque.
func webImage(t testing.TB) v1.Image {
	return imageOf(t,
		gzLayer(t,
			entry{name: "bin/", typ: tar.TypeDir},
			entry{name: "bin/web", body: "web v1\n", mode: 0o755},
			entry{name: "etc/", typ: tar.TypeDir},
			entry{name: "etc/old.conf", body: "old\n"},
			entry{name: "srv/", typ: tar.TypeDir},
			entry{name: "srv/a", body: "a\n"},
			entry{name: "srv/b", body: "b\n"},
		),
		gzLayer(t,
			entry{name: "etc/", typ: tar.TypeDir},
			entry{name: "etc/.wh.old.conf"},
			entry{name: "etc/new.conf", body: "new\n"},
			entry{name: "srv/", typ: tar.TypeDir},
			entry{name: "srv/.wh..wh..opq"},
			entry{name: "srv/c", body: "c\n"},
		),
	)
}

func digestOf(t testing.TB, img v1.Image) string {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// writeLayout writes img into a new OCI layout, with refName as its
// ref.name annotation when not empty.
func writeLayout(t testing.TB, img v1.Image, refName string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{annotationRefName: refName}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeArchive writes img as a docker-archive tagged tag.
func writeArchive(t testing.TB, img v1.Image, tag string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		t.Fatal(err)
	}
	return path
}

func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// diffIDs lists the DiffIDs of an image's layers.
func diffIDs(layers []Layer) []string {
	var out []string
	for _, l := range layers {
		out = append(out, l.DiffID)
	}
	return out
}

func wantDiffIDs(t testing.TB, img v1.Image) []string {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range cfg.RootFS.DiffIDs {
		out = append(out, h.String())
	}
	return out
}

// storeFiles lists the files under the store's dir/sub, relative.
func storeFiles(t testing.TB, s *Store, sub string) []string {
	t.Helper()
	var out []string
	root := s.path(sub)
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, rel)
		if d.IsDir() && sub != "blobs" {
			return filepath.SkipDir
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// fakeVerifier accepts or refuses every signature, recording what it saw.
type fakeVerifier struct {
	refuse error
	mu     sync.Mutex
	names  []string
	signed [][]byte
	sigs   []string
}

func (f *fakeVerifier) Verify(imageName string, signed, signature io.Reader) error {
	s, err := io.ReadAll(signed)
	if err != nil {
		return err
	}
	sig, err := io.ReadAll(signature)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names = append(f.names, imageName)
	f.signed = append(f.signed, s)
	f.sigs = append(f.sigs, string(sig))
	return f.refuse
}

var errBadSignature = errors.New("openpgp: signature made by unknown entity")

// wantErr fails unless err is not nil and its message holds every part.
func wantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// tarDir writes the files of dir into a tar at path.
func tarDir(dir, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		return err
	}
	return tw.Close()
}

// withConfig replaces an image's config file as it is, DiffIDs included.
func withConfig(t testing.TB, img v1.Image, cfg *v1.ConfigFile) v1.Image {
	t.Helper()
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
