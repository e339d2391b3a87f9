package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestImportLayout(t *testing.T) {
	s := openStore(t)
	img := webImage(t)
	dir := writeLayout(t, img, "example.com/web:1.0")
	got, err := s.Import(context.Background(), dir, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkWebImage(t, got, img, []string{"example.com/web:1.0"})
	if got.Imported.IsZero() || time.Since(got.Imported) > time.Hour {
		t.Errorf("Imported = %v, want about now", got.Imported)
	}
	for _, ref := range []string{"example.com/web:1.0", got.ID, got.ID[:7+12], got.ID[7 : 7+12], got.ID[7:]} {
		g, err := s.Get(ref)
		if err != nil {
			t.Errorf("Get(%q): %v", ref, err)
			continue
		}
		if g.ID != got.ID {
			t.Errorf("Get(%q).ID = %s, want %s", ref, g.ID, got.ID)
		}
	}
	for _, ref := range []string{"example.com/web", "example.com/web:2.0", got.ID[7 : 7+11], "sha256:" + strings.Repeat("0", 64)} {
		if _, err := s.Get(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", ref, err)
		}
	}
}

// checkWebImage compares a stored image with the v1.Image it came from.
func checkWebImage(t *testing.T, got *Image, img v1.Image, names []string) {
	t.Helper()
	if want := digestOf(t, img); got.ID != want {
		t.Errorf("ID = %s, want the manifest digest %s", got.ID, want)
	}
	if !slices.Equal(got.Names, names) {
		t.Errorf("Names = %q, want %q", got.Names, names)
	}
	checkConfig(t, got, img)
}

// checkConfig compares the config and layers of a stored image with img's.
func checkConfig(t *testing.T, got *Image, img v1.Image) {
	t.Helper()
	if want := wantDiffIDs(t, img); !slices.Equal(diffIDs(got.Layers), want) {
		t.Errorf("layer DiffIDs = %q, want %q", diffIDs(got.Layers), want)
	}
	c := got.Config.Config
	if !slices.Equal(c.Entrypoint, []string{"/bin/web"}) || c.User != "1000" || c.WorkingDir != "/srv" || c.Labels["atoll.test"] != "yes" {
		t.Errorf("Config = %+v, want the test image's entrypoint, user, workdir and labels", c)
	}
	if want := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC); !got.Created.Equal(want) {
		t.Errorf("Created = %v, want %v", got.Created, want)
	}
	var size int64
	for _, l := range got.Layers {
		size += l.Size
		if l.Size <= 0 || !isID(l.Digest) || l.MediaType == "" {
			t.Errorf("layer %+v: want a size, a digest and a media type", l)
		}
	}
	if got.Size != size || size == 0 {
		t.Errorf("Size = %d, want the layers' %d", got.Size, size)
	}
}

func TestImportDockerArchive(t *testing.T) {
	s := openStore(t)
	img := webImage(t)
	path := writeArchive(t, img, "example.com/app:2.0")
	got, err := s.Import(context.Background(), path, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Names, []string{"example.com/app:2.0"}) {
		t.Errorf("Names = %q, want [example.com/app:2.0]", got.Names)
	}
	checkConfig(t, got, img)
	// The same archive imports as the same image.
	again, err := s.Import(context.Background(), path, ImportOptions{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != got.ID {
		t.Errorf("second import ID = %s, want %s", again.ID, got.ID)
	}
	if want := []string{"docker.io/library/app:latest", "example.com/app:2.0"}; !slices.Equal(again.Names, want) {
		t.Errorf("Names after a second import = %q, want %q", again.Names, want)
	}
	if !again.Imported.Equal(got.Imported) {
		t.Errorf("Imported changed on a second import: %v, want %v", again.Imported, got.Imported)
	}
}

// A docker-archive as older `docker save` writes it: uncompressed layers in
// <id>/layer.tar, reached through a symlink.
func TestImportLegacyDockerArchive(t *testing.T) {
	s := openStore(t)
	layerTar := tarOf(t, entry{name: "hello", body: "hello\n"})
	diff := sha256Of(layerTar)
	config := []byte(`{"architecture":"amd64","os":"linux","config":{"Cmd":["/hello"]},"rootfs":{"type":"layers","diff_ids":["` + diff.String() + `"]}}`)
	cfgName := sha256Of(config).Hex + ".json"
	manifest := `[{"Config":"` + cfgName + `","RepoTags":["hello:1"],"Layers":["link/layer.tar"]}]`
	archive := tarOf(t,
		entry{name: cfgName, body: string(config)},
		entry{name: "abc/", typ: '5'},
		entry{name: "abc/layer.tar", body: string(layerTar)},
		entry{name: "link", typ: '2', link: "abc"},
		entry{name: "manifest.json", body: manifest},
	)
	path := filepath.Join(t.TempDir(), "legacy.tar")
	if err := os.WriteFile(path, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := s.Import(context.Background(), path, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Layers) != 1 || got.Layers[0].Digest != diff.String() || got.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar" {
		t.Errorf("Layers = %+v, want one uncompressed layer with digest %s", got.Layers, diff)
	}
	if !slices.Equal(got.Names, []string{"docker.io/library/hello:1"}) {
		t.Errorf("Names = %q, want [docker.io/library/hello:1]", got.Names)
	}
	dirs, err := s.RootfsLayers(context.Background(), got)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(dirs[len(dirs)-1], "hello"), "hello\n")
}

func TestTagListRemove(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	web, err := s.Import(ctx, writeLayout(t, webImage(t), "example.com/web:1.0"), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Import(ctx, writeLayout(t, imageOf(t, gzLayer(t, entry{name: "x", body: "x"})), "example.com/other:1"), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("example.com/web:1.0", "example.com/web"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(web.ID[:19], "web:stable"); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("List holds %d images, want 2", len(list))
	}
	wantNames := []string{"docker.io/library/web:stable", "example.com/web:1.0", "example.com/web:latest"}
	if list[0].ID != web.ID || !slices.Equal(list[0].Names, wantNames) {
		t.Errorf("List()[0] = %s %q, want %s %q", list[0].ID, list[0].Names, web.ID, wantNames)
	}
	// A tag moves a name from the image that had it.
	if err := s.Tag("example.com/other:1", "example.com/web:latest"); err != nil {
		t.Fatal(err)
	}
	if g, err := s.Get("example.com/web"); err != nil || g.ID != other.ID {
		t.Errorf("Get(example.com/web) after re-tagging = %v, %v; want %s", g, err, other.ID)
	}
	// Removing a name keeps the image while it has others.
	if err := s.Remove("web:stable"); err != nil {
		t.Fatal(err)
	}
	if g, err := s.Get(web.ID); err != nil || !slices.Equal(g.Names, []string{"example.com/web:1.0"}) {
		t.Errorf("after rm of one name: %v, %v; want the image with [example.com/web:1.0]", g, err)
	}
	// ...and removes it with its last name.
	if err := s.Remove("example.com/web:1.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(web.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(ID) after rm of its last name = %v, want ErrNotFound", err)
	}
	// Removing by ID takes all names.
	if err := s.Tag(other.ID, "example.com/more:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(other.ID[7:20]); err != nil {
		t.Fatal(err)
	}
	list, err = s.List()
	if err != nil || len(list) != 0 {
		t.Errorf("List after rm by ID = %v, %v; want nothing", list, err)
	}
	if err := s.Remove("example.com/more:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove of a gone name = %v, want ErrNotFound", err)
	}
	if err := s.Tag(other.ID, "Bad Name"); err == nil {
		t.Errorf("Tag with an invalid name succeeded")
	}
}

func TestResolveAmbiguousPrefix(t *testing.T) {
	a := "sha256:" + strings.Repeat("ab", 6) + strings.Repeat("0", 52)
	b := "sha256:" + strings.Repeat("ab", 6) + strings.Repeat("1", 52)
	refs := &refsFile{Images: []refEntry{{ID: a}, {ID: b, Names: []string{"docker.io/library/" + strings.Repeat("ab", 6) + ":latest"}}}}
	if _, _, err := refs.resolve(strings.Repeat("ab", 6) + "0"); err != nil {
		t.Errorf("resolve of a unique 13-digit prefix: %v", err)
	}
	if _, _, err := refs.resolve("sha256:" + strings.Repeat("ab", 6)); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("resolve of a shared prefix = %v, want ErrAmbiguous", err)
	} else {
		wantErr(t, err, a, b)
	}
	// A name that looks like a prefix is a name first.
	e, byName, err := refs.resolve(strings.Repeat("ab", 6))
	if err != nil || e.ID != b || !byName {
		t.Errorf("resolve of a name that is also a prefix = %v, %v, %v; want %s by name", e, byName, err, b)
	}
}

func TestCanonicalName(t *testing.T) {
	for in, want := range map[string]string{
		"web":                         "docker.io/library/web:latest",
		"web:1.0":                     "docker.io/library/web:1.0",
		"docker.io/library/web:1.0":   "docker.io/library/web:1.0",
		"index.docker.io/me/web":      "docker.io/me/web:latest",
		"example.com/web:1.0":         "example.com/web:1.0",
		"localhost:5000/a/b/c":        "localhost:5000/a/b/c:latest",
		"127.0.0.1:5000/test/web:1.0": "127.0.0.1:5000/test/web:1.0",
	} {
		got, err := canonicalName(in)
		if err != nil || got != want {
			t.Errorf("canonicalName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Web", "web@sha256:" + strings.Repeat("0", 64), " web", "a//b", "web:"} {
		if got, err := canonicalName(bad); err == nil {
			t.Errorf("canonicalName(%q) = %q, want an error", bad, got)
		}
	}
}

func checkFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if string(got) != want {
		t.Errorf("%s = %q, want %q", path, got, want)
	}
}

func TestRefsFileRoundTrip(t *testing.T) {
	s := openStore(t)
	id := "sha256:" + strings.Repeat("a", 64)
	err := s.updateRefs(func(r *refsFile) error {
		r.Images = append(r.Images, refEntry{ID: id, Names: []string{"example.com/b:1", "example.com/a:1"}, Imported: time.Unix(1, 0).UTC()})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := s.loadRefs()
	if err != nil {
		t.Fatal(err)
	}
	want := []refEntry{{ID: id, Names: []string{"example.com/a:1", "example.com/b:1"}, Imported: time.Unix(1, 0).UTC()}}
	if !reflect.DeepEqual(refs.Images, want) {
		t.Errorf("refs = %+v, want %+v", refs.Images, want)
	}
	for _, bad := range []string{
		`{"images":[{"id":"sha256:abc"}]}`,
		`{"images":[{"id":"` + id + `","names":["web"]}]}`,
		`{"images":[{"id":"` + id + `"},{"id":"` + id + `"}]}`,
		`{"images":[],"extra":1}`,
		`[`,
	} {
		if _, err := parseRefs([]byte(bad)); err == nil {
			t.Errorf("parseRefs(%s) succeeded, want an error", bad)
		}
	}
}
