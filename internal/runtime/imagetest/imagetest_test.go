package imagetest

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// flatten returns the files of img's layers, applied in order, by path.
func flatten(t *testing.T, img v1.Image) map[string]extracted {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]extracted{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(hdr.Name, "/")] = extracted{hdr: hdr, data: data}
	}
}

type extracted struct {
	hdr  *tar.Header
	data []byte
}

// runExtracted writes the binary at path in img to a temp file and runs it.
func runExtracted(t *testing.T, img v1.Image, path string) func(args ...string) (string, int) {
	t.Helper()
	f, ok := flatten(t, img)[path]
	if !ok {
		t.Fatalf("no %s in the image", path)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(bin, f.data, 0o755); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) (string, int) {
		out, err := exec.Command(bin, args...).Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
}

func checkTestApp(t *testing.T, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/bin/testapp"}) || cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Fatalf("config: entrypoint %q, platform %s/%s", cf.Config.Entrypoint, cf.OS, cf.Architecture)
	}
	files := flatten(t, img)
	if f := files["etc/passwd"]; !strings.Contains(string(f.data), "app:x:1000:1000:") || !strings.HasPrefix(string(f.data), "root:x:0:0:") {
		t.Fatalf("/etc/passwd:\n%s", f.data)
	}
	if f := files["etc/group"]; !strings.Contains(string(f.data), "app:x:1000:") {
		t.Fatalf("/etc/group:\n%s", f.data)
	}
	if f, ok := files["tmp"]; !ok || f.hdr.Typeflag != tar.TypeDir || f.hdr.Mode != 0o1777 {
		t.Fatalf("/tmp: %+v", f.hdr)
	}
	if f := files["home/app"]; f.hdr == nil || f.hdr.Uid != 1000 || f.hdr.Gid != 1000 {
		t.Fatalf("/home/app not owned by app")
	}
	if f := files["bin/testapp"]; f.hdr == nil || f.hdr.Mode != 0o755 {
		t.Fatalf("/bin/testapp missing or not executable")
	}
	run := runExtracted(t, img, "bin/testapp")
	if out, code := run("true"); code != 0 {
		t.Fatalf("testapp true: exit %d, %q", code, out)
	}
	if out, code := run("exit", "3"); code != 3 {
		t.Fatalf("testapp exit 3: exit %d, %q", code, out)
	}
}

func TestTestAppRoundTrip(t *testing.T) {
	t.Parallel()
	img := TestApp(t)
	checkTestApp(t, img)
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Fatalf("media type %s, want OCI", mt)
	}

	t.Run("oci layout", func(t *testing.T) {
		dir := WriteLayout(t, filepath.Join(t.TempDir(), "layout"), img, "example.com/testapp:1.0")
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Manifests) != 1 || im.Manifests[0].Annotations[RefNameAnnotation] != "example.com/testapp:1.0" {
			t.Fatalf("index: %+v", im.Manifests)
		}
		if im.Manifests[0].Digest != want {
			t.Fatalf("layout digest %s, image %s", im.Manifests[0].Digest, want)
		}
		back, err := idx.Image(im.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkTestApp(t, back)
	})

	t.Run("docker archive", func(t *testing.T) {
		path := WriteDockerArchive(t, filepath.Join(t.TempDir(), "app.tar"), img, "example.com/testapp:1.0")
		tag, err := name.NewTag("example.com/testapp:1.0")
		if err != nil {
			t.Fatal(err)
		}
		back, err := tarball.ImageFromPath(path, &tag)
		if err != nil {
			t.Fatal(err)
		}
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{"example.com/testapp:1.0"}) {
			t.Fatalf("manifest.json: %+v", m)
		}
		checkTestApp(t, back)
	})
}

func TestProgramOncePerProcess(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	paths := make([]string, 4)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := program(TestAppPkg)
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		}()
	}
	wg.Wait()
	for _, p := range paths {
		if p != paths[0] || filepath.Base(p) != "testapp" {
			t.Fatalf("paths %q", paths)
		}
	}
	if got := Program(t, TestAppPkg); got != paths[0] {
		t.Fatalf("Program = %s, want the cached %s", got, paths[0])
	}
}

func TestProgramBuildError(t *testing.T) {
	t.Parallel()
	_, err := program("atoll.dev/atoll/internal/runtime/imagetest/no-such-package")
	if err == nil || !strings.Contains(err.Error(), "no-such-package") {
		t.Fatalf("program of a missing package = %v", err)
	}
	// The failure is cached like a success.
	_, again := program("atoll.dev/atoll/internal/runtime/imagetest/no-such-package")
	if again == nil || again.Error() != err.Error() {
		t.Fatalf("second build = %v", again)
	}
}

func TestTar(t *testing.T) {
	t.Parallel()
	img := Image(t, v1.Config{Cmd: []string{"x"}, WorkingDir: "/srv", User: "1000:1000", Env: []string{"A=1"}},
		map[string]File{
			"/srv/app/data.txt": {Data: []byte("one")},
			"/srv/bin/run":      {Data: []byte("#!"), Mode: 0o755 | os.ModeSetuid},
			"/srv/link":         {Link: "app/data.txt"},
			"/srv/empty":        {Dir: true, Mode: 0o700, UID: 5, GID: 6},
		},
		map[string]File{
			"srv/app/data.txt": {Data: []byte("two")},
			"/srv/.wh.link":    {},
		},
	)
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.WorkingDir != "/srv" || cf.Config.User != "1000:1000" || !slices.Equal(cf.Config.Cmd, []string{"x"}) || !slices.Equal(cf.Config.Env, []string{"A=1"}) {
		t.Fatalf("config %+v", cf.Config)
	}
	if len(cf.RootFS.DiffIDs) != 2 {
		t.Fatalf("diff IDs %v", cf.RootFS.DiffIDs)
	}
	files := flatten(t, img)
	if string(files["srv/app/data.txt"].data) != "two" {
		t.Fatalf("upper layer did not win: %q", files["srv/app/data.txt"].data)
	}
	if _, ok := files["srv/link"]; ok {
		t.Fatal("whiteout did not remove srv/link")
	}
	if h := files["srv/bin/run"].hdr; h.Mode != 0o4755 {
		t.Fatalf("setuid file mode %o", h.Mode)
	}
	if h := files["srv/empty"].hdr; h.Typeflag != tar.TypeDir || h.Mode != 0o700 || h.Uid != 5 || h.Gid != 6 {
		t.Fatalf("dir %+v", h)
	}
	if h := files["srv"].hdr; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o755 {
		t.Fatal("missing parent directory not added")
	}

	// The link, in the first layer alone.
	raw, err := Tar(map[string]File{"a/l": {Link: "../b"}})
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(strings.NewReader(string(raw)))
	var names []string
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
		if hdr.Name == "a/l" && (hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != "../b") {
			t.Fatalf("symlink %+v", hdr)
		}
	}
	if !slices.Equal(names, []string{"a/", "a/l"}) {
		t.Fatalf("entries %q", names)
	}

	// Same files, same digest.
	d1, _ := Image(t, v1.Config{}, map[string]File{"x": {Data: []byte("1")}}).Digest()
	d2, _ := Image(t, v1.Config{}, map[string]File{"/x": {Data: []byte("1")}}).Digest()
	if d1 != d2 {
		t.Fatalf("digests differ: %s %s", d1, d2)
	}

	for name, files := range map[string]map[string]File{
		"dot-dot":        {"a/../../etc/passwd": {}},
		"root":           {"/": {Dir: true}},
		"dir with data":  {"d": {Dir: true, Data: []byte("x")}},
		"link with data": {"l": {Link: "x", Data: []byte("x")}},
		"twice":          {"/a": {}, "a": {}},
		"file parent":    {"a": {Data: []byte("x")}, "a/b": {}},
	} {
		if _, err := Tar(files); err == nil {
			t.Errorf("%s: Tar accepted %v", name, files)
		}
	}
}

func TestMkimage(t *testing.T) {
	t.Parallel()
	mk := Program(t, "atoll.dev/atoll/internal/runtime/imagetest/mkimage")
	dir := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(mk, "-o", dir, "-name", "example.com/testapp:demo", TestAppPkg, "echo", "hi")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, out)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Annotations[RefNameAnnotation] != "example.com/testapp:demo" {
		t.Fatalf("index %+v, %v", im, err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkTestApp(t, img)
	cf, _ := img.ConfigFile()
	if !slices.Equal(cf.Config.Cmd, []string{"echo", "hi"}) {
		t.Fatalf("cmd %q", cf.Config.Cmd)
	}
	if out, err := exec.Command(mk).CombinedOutput(); err == nil || !strings.Contains(string(out), "usage") {
		t.Fatalf("mkimage with no arguments: %v\n%s", err, out)
	}
}
