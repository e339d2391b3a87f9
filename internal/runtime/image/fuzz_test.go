package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReference feeds the parsers of names and references typed by users.
func FuzzReference(f *testing.F) {
	for _, s := range []string{
		"web", "example.com/web:1.0", "localhost:5000/a/b@sha256:" + strings.Repeat("a", 64),
		"docker://example.com/web", "oci:/tmp/x:1.0", "oci:/tmp/x:example.com/web:1", "docker-archive:/x.tar:web",
		"sha256:0123456789ab", "0123456789ab", "WEB", "a//b", ":", "oci:", "docker://",
	} {
		f.Add(s)
	}
	id := "sha256:" + strings.Repeat("0", 64)
	refs := &refsFile{Images: []refEntry{{ID: id, Names: []string{"docker.io/library/web:latest"}}}}
	f.Fuzz(func(t *testing.T, s string) {
		if c, err := canonicalName(s); err == nil {
			again, err := canonicalName(c)
			if err != nil || again != c {
				t.Errorf("canonicalName(%q) = %q, whose canonical form is %q, %v; want it unchanged", s, c, again, err)
			}
			if _, err := parseRefs([]byte(`{"images":[{"id":"` + id + `","names":["` + jsonEscape(c) + `"]}]}`)); err != nil {
				t.Errorf("refs.json with canonical name %q refused: %v", c, err)
			}
		}
		if e, _, err := refs.resolve(s); err == nil && e.ID != id {
			t.Errorf("resolve(%q) = %s, want %s", s, e.ID, id)
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			t.Errorf("resolve(%q) = %v, want ErrNotFound or the image", s, err)
		}
		parseFetchRef(s, false)
	})
}

func jsonEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// FuzzParseRefs feeds refs.json loading: whatever it accepts, it writes
// back and reads again the same.
func FuzzParseRefs(f *testing.F) {
	id := "sha256:" + strings.Repeat("ab", 32)
	f.Add([]byte(`{"images":[{"id":"` + id + `","names":["docker.io/library/web:latest"],"imported":"2024-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"images":[]}`))
	f.Add([]byte(`{"images":[{"id":"` + id + `"},{"id":"` + id + `"}]}`))
	f.Add([]byte(`{"images":[{"id":"` + id + `","names":["web"]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		refs, err := parseRefs(b)
		if err != nil {
			return
		}
		for _, e := range refs.Images {
			if _, _, err := refs.resolve(e.ID); err != nil {
				t.Errorf("image %s of an accepted refs.json cannot be resolved: %v", e.ID, err)
			}
			for _, n := range e.Names {
				if got, _, err := refs.resolve(n); err != nil || got.ID != e.ID {
					t.Errorf("name %q resolves to %v, %v; want %s", n, got, err, e.ID)
				}
			}
		}
	})
}

// FuzzImportArchive imports arbitrary bytes as an archive: an error, or an
// image that Get and List show whole; never a panic nor a half image.
func FuzzImportArchive(f *testing.F) {
	img := imageOf(f, gzLayer(f, entry{name: "a", body: "a\n"}))
	good, err := os.ReadFile(writeArchive(f, img, "example.com/fuzz:1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	layoutTar := filepath.Join(f.TempDir(), "layout.tar")
	if err := tarDir(writeLayout(f, img, "1"), layoutTar); err != nil {
		f.Fatal(err)
	}
	lt, _ := os.ReadFile(layoutTar)
	f.Add(lt)
	f.Add(tarOf(f, entry{name: "manifest.json", body: `[{"Config":"c","Layers":["l"]}]`}, entry{name: "c", body: `{"rootfs":{"diff_ids":[]}}`}))
	f.Add([]byte("not a tar"))
	s, err := Open(filepath.Join(f.TempDir(), "store"))
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "in.tar")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := s.Import(context.Background(), path, ImportOptions{})
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			return
		}
		back, err := s.Get(got.ID)
		if err != nil || back.ID != got.ID || len(back.Layers) != len(got.Layers) {
			t.Errorf("Get(%s) = %+v, %v; want the imported image", got.ID, back, err)
		}
	})
}
