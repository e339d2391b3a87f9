package runtime

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/image"
	"atoll.dev/atoll/internal/runtime/layer"
	"atoll.dev/atoll/internal/runtime/pod"
)

// throughOverlay mounts an exited app's root as stage1 does (its image's
// layers under its upper directory), lets change work on it, and unmounts
// it: the kernel records the changes in the upper directory exactly as it
// does for the app. testapp has no command that removes files, so this is
// how a test makes whiteouts and opaque directories.
func throughOverlay(t *testing.T, podDir string, a *pod.App, change func(root string)) {
	t.Helper()
	appDir := pod.AppDir(podDir, a.Name)
	lower := make([]string, len(a.Layers))
	for i, l := range a.Layers {
		lower[len(lower)-1-i] = l
	}
	root := filepath.Join(appDir, "rootfs")
	opts := "lowerdir=" + strings.Join(lower, ":") + ",upperdir=" + filepath.Join(appDir, "upper") + ",workdir=" + filepath.Join(appDir, "work")
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		t.Fatalf("mount the app's root: %v", err)
	}
	defer func() {
		if err := unix.Unmount(root, 0); err != nil {
			t.Fatalf("unmount the app's root: %v", err)
		}
	}()
	change(root)
}

// topLayer lists the entries of the top layer of the image in an OCI
// layout.
func topLayer(t *testing.T, dir string) []string {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("layout %s: %v, %d images; want one", dir, err, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
}

func TestExportRoundTrip(t *testing.T) {
	r := newTestRuntime(t, 20)
	ctx := context.Background()
	code, out, p := r.run(PodOptions{Apps: []AppOptions{app("write", "/hello", "hi")}, Net: []string{"none"}}, RunOptions{})
	if code != 0 {
		t.Fatalf("testapp write: exit %d, output %q", code, out)
	}
	in, err := r.Status(p.UUID)
	if err != nil {
		t.Fatal(err)
	}
	throughOverlay(t, in.Dir, &in.Manifest.Apps[0], func(root string) {
		if err := os.Remove(filepath.Join(root, "etc/group")); err != nil { // a whiteout
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(root, "tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(root, "tmp"), 0o1777); err != nil { // an opaque directory
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "tmp/x"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	})

	dir := t.TempDir()
	archive := filepath.Join(dir, "out.tar")
	got, err := r.Export(ctx, p.UUID[:8], archive, ExportOptions{})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if got.UUID != p.UUID || got.App != "app" || got.Changes.Whiteouts != 2 || got.Changes.Files != 2 {
		t.Errorf("export: got %+v, want pod %s, app app, 2 whiteouts (etc/group, tmp's opaque marker) and 2 files (hello, tmp/x)", got, p.UUID)
	}
	if _, err := r.Export(ctx, p.UUID, archive, ExportOptions{}); !errors.Is(err, os.ErrExist) {
		t.Errorf("export over an existing file: got %v, want an error matching os.ErrExist", err)
	}

	// The new layer holds the app's changes and nothing the runtime put
	// there (the mount points of /proc, /etc/hosts...).
	ociDir := filepath.Join(dir, "oci")
	if _, err := r.Export(ctx, p.UUID, ociDir, ExportOptions{Format: "oci", Overwrite: true}); err != nil {
		t.Fatalf("export as OCI: %v", err)
	}
	wantEntries := []string{"etc/", "etc/.wh.group", "hello", "tmp/", "tmp/.wh..wh..opq", "tmp/x"}
	if entries := topLayer(t, ociDir); !slices.Equal(entries, wantEntries) {
		t.Errorf("the exported layer: got %q, want %q", entries, wantEntries)
	}

	img, err := r.Images.Import(ctx, archive, image.ImportOptions{Name: "exported"})
	if err != nil {
		t.Fatalf("import the export: %v", err)
	}
	orig, err := r.Images.Get("test/app")
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != len(orig.Layers)+1 || img.Layers[len(img.Layers)-1].DiffID != got.DiffID {
		t.Errorf("exported image layers: got %+v, want the %d of test/app and %s", img.Layers, len(orig.Layers), got.DiffID)
	}
	if h := img.Config.History; len(h) == 0 || h[len(h)-1].CreatedBy != "atoll pod export "+p.UUID+" app app" {
		t.Errorf("exported image history: got %+v, want it to end with atoll pod export", h)
	}
	if !slices.Equal(img.Config.Config.Entrypoint, orig.Config.Config.Entrypoint) || !slices.Equal(img.Config.Config.Env, orig.Config.Config.Env) {
		t.Errorf("exported image config: got %+v, want test/app's %+v", img.Config.Config, orig.Config.Config)
	}

	run := func(args ...string) (int, string) {
		code, out, _ := r.run(PodOptions{Apps: []AppOptions{{Image: "exported", Args: args, ArgsSet: true}}, Net: []string{"none"}}, RunOptions{Remove: true})
		return code, out
	}
	if code, out := run("cat", "/hello"); code != 0 || out != "hi" {
		t.Errorf("cat /hello in the exported image: exit %d, output %q; want 0 and %q", code, out, "hi")
	}
	if code, out := run("cat", "/etc/group"); code == 0 || !strings.Contains(out, "no such file") {
		t.Errorf("cat /etc/group in the exported image: exit %d, output %q; want it gone", code, out)
	}
	if code, out := run("ls", "/tmp"); code != 0 || strings.TrimSpace(out) != "x" {
		t.Errorf("ls /tmp in the exported image: exit %d, output %q; want x", code, out)
	}
	if code, out := run("cat", "/etc/passwd"); code != 0 || !strings.Contains(out, "root:") {
		t.Errorf("cat /etc/passwd in the exported image: exit %d, output %q; want the image's file", code, out)
	}
}

func TestExportRefusesRunningPodsAndTakesPreparedOnes(t *testing.T) {
	r := newTestRuntime(t, 21)
	ctx := context.Background()
	p, err := r.Prepare(ctx, PodOptions{Apps: []AppOptions{app("sleep", "60")}, Net: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	uuid := p.UUID
	done := make(chan struct{})
	go func() {
		defer close(done)
		devNull, _ := os.Open(os.DevNull)
		defer devNull.Close()
		r.Run(ctx, p, RunOptions{StopTimeout: time.Second, Stdin: devNull, Stdout: devNull, Stderr: devNull})
	}()
	waitFor(t, func() bool {
		in, err := r.Status(uuid)
		return err == nil && in.State == "running"
	}, "the pod to run")
	dest := filepath.Join(t.TempDir(), "out.tar")
	_, err = r.Export(ctx, uuid, dest, ExportOptions{})
	if !errors.Is(err, pod.ErrLocked) || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("export of a running pod: got %v, want ErrLocked saying to stop it first", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused export left %s: %v", dest, err)
	}
	if err := r.Stop(uuid, true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the pod did not stop")
	}

	prepared, err := r.Prepare(ctx, PodOptions{Name: "later", Apps: []AppOptions{app("true")}, Net: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := prepared.MarkPrepared(); err != nil {
		t.Fatal(err)
	}
	got, err := r.Export(ctx, "later", dest, ExportOptions{Name: "example.com/later:1"})
	if err != nil {
		t.Fatalf("export of a prepared pod by name: %v", err)
	}
	if got.Changes != (layer.DiffStats{}) {
		t.Errorf("export of a prepared pod: changes %+v, want none", got.Changes)
	}
	img, err := r.Images.Import(ctx, dest, image.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.Names, []string{"example.com/later:1"}) {
		t.Errorf("names of the exported image: got %q, want example.com/later:1", img.Names)
	}
	// The prepared pod can still run.
	if _, err := r.RunPrepared(ctx, prepared.UUID, RunOptions{Remove: true}); err != nil {
		t.Errorf("run the prepared pod after its export: %v", err)
	}
	if _, err := r.Export(ctx, "later", dest, ExportOptions{Overwrite: true}); !errors.Is(err, pod.ErrNotFound) {
		t.Errorf("export of a removed pod: got %v, want ErrNotFound", err)
	}
	if _, err := r.Export(ctx, uuid, dest, ExportOptions{App: "nope", Overwrite: true}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("export of a missing app: got %v, want an error naming it", err)
	}
}
