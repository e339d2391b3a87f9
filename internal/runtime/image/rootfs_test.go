package image

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/layer"
)

// flattened makes a store unpack as it does without root.
func flattened(s *Store) *Store {
	s.mode, s.chown = layer.Flatten, false
	return s
}

func importWeb(t *testing.T, s *Store) *Image {
	t.Helper()
	img, err := s.Import(context.Background(), writeLayout(t, webImage(t), "example.com/web:1.0"), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// names lists a directory.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// checkMergedWeb checks the merged view of webImage rooted at root.
func checkMergedWeb(t *testing.T, root string) {
	t.Helper()
	checkFile(t, filepath.Join(root, "bin", "web"), "web v1\n")
	checkFile(t, filepath.Join(root, "etc", "new.conf"), "new\n")
	if _, err := os.Lstat(filepath.Join(root, "etc", "old.conf")); !os.IsNotExist(err) {
		t.Errorf("etc/old.conf: %v; want it deleted by the upper layer's whiteout", err)
	}
	if got := names(t, filepath.Join(root, "srv")); !slices.Equal(got, []string{"c"}) {
		t.Errorf("srv holds %q, want [c]: the upper layer made it opaque", got)
	}
	fi, err := os.Stat(root)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("root directory: %v %v, want mode 0755", fi.Mode(), err)
	}
}

func TestRootfsLayersFlatten(t *testing.T) {
	ctx := context.Background()
	s := flattened(openStore(t))
	img := importWeb(t, s)
	dirs, err := s.RootfsLayers(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{s.path("rootfs", chainID(img.Layers).Hex)}; !slices.Equal(dirs, want) {
		t.Fatalf("RootfsLayers = %q, want %q", dirs, want)
	}
	checkMergedWeb(t, dirs[0])
	again, err := s.RootfsLayers(ctx, img)
	if err != nil || !slices.Equal(again, dirs) {
		t.Errorf("second RootfsLayers = %q, %v; want %q", again, err, dirs)
	}
	if DirKey(dirs[0]) != chainID(img.Layers).String() {
		t.Errorf("DirKey = %s, want the ChainID %s", DirKey(dirs[0]), chainID(img.Layers))
	}
}

// Layers compressed with zstd, or not compressed, unpack too.
func TestRootfsLayersCompressions(t *testing.T) {
	ctx := context.Background()
	s := flattened(openStore(t))
	zst := layerFromTar(t, tarOf(t, entry{name: "z", body: "zstd\n"}), compression.ZStd)
	plain := static.NewLayer(tarOf(t, entry{name: "p", body: "plain\n"}), types.OCIUncompressedLayer)
	src := imageOf(t, zst, plain)
	img, err := s.Import(ctx, writeLayout(t, src, ""), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Names) != 0 {
		t.Errorf("Names = %q, want none (no ref.name)", img.Names)
	}
	dirs, err := s.RootfsLayers(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(dirs[0], "z"), "zstd\n")
	checkFile(t, filepath.Join(dirs[0], "p"), "plain\n")
}

func TestTopmost(t *testing.T) {
	a, b, c := Layer{DiffID: "a"}, Layer{DiffID: "b"}, Layer{DiffID: "c"}
	got := topmost([]Layer{a, b, a, c, b})
	if want := []Layer{a, c, b}; !slices.Equal(got, want) {
		t.Errorf("topmost = %v, want %v", got, want)
	}
}

func TestRootfsLayersOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: overlay whiteouts and mounts")
	}
	ctx := context.Background()
	s := openStore(t)
	if s.UnpackMode() != layer.Overlay {
		t.Fatalf("UnpackMode = %v as root, want Overlay", s.UnpackMode())
	}
	img := importWeb(t, s)
	dirs, err := s.RootfsLayers(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range img.Layers {
		want = append(want, s.path("layers", strings.TrimPrefix(l.DiffID, "sha256:")))
	}
	if !slices.Equal(dirs, want) {
		t.Fatalf("RootfsLayers = %q, want %q", dirs, want)
	}
	checkFile(t, filepath.Join(dirs[0], "etc", "old.conf"), "old\n")
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dirs[1], "etc", "old.conf"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout etc/old.conf: mode %o rdev %d, want a 0/0 character device", st.Mode, st.Rdev)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(dirs[1], "srv"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("srv trusted.overlay.opaque = %q, %v; want y", buf[:n], err)
	}
	// The same layer twice is given once, at its topmost place.
	dup := imageOf(t, gzLayer(t, entry{name: "x", body: "1"}), gzLayer(t, entry{name: "y", body: "2"}), gzLayer(t, entry{name: "x", body: "1"}))
	dimg, err := s.Import(ctx, writeLayout(t, dup, ""), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ddirs, err := s.RootfsLayers(ctx, dimg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ddirs) != 2 || filepath.Base(ddirs[1]) != strings.TrimPrefix(dimg.Layers[0].DiffID, "sha256:") {
		t.Errorf("RootfsLayers of [x y x] = %q, want [y x]", ddirs)
	}

	merged := filepath.Join(t.TempDir(), "merged")
	os.Mkdir(merged, 0o755)
	opts := "lowerdir=" + dirs[1] + ":" + dirs[0]
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount -t overlay -o %s: %v", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})
	checkMergedWeb(t, merged)
}

// As root, files keep the owners of the tar; set-user-ID bits stay.
func TestRootfsLayersOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: overlay whiteouts and mounts")
	}
	ctx := context.Background()
	s := openStore(t)
	src := imageOf(t, layerFromTar(t, tarOwned(t), compression.GZip))
	img, err := s.Import(ctx, writeLayout(t, src, ""), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := s.RootfsLayers(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(dirs[0], "su"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 1234 || st.Gid != 5678 || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("su: uid %d gid %d mode %v, want 1234 5678 and set-user-ID", st.Uid, st.Gid, fi.Mode())
	}
	if fi, err := os.Stat(s.path("layers")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("layers/: %v, %v; want mode 0700 so no user reaches set-user-ID files", fi.Mode(), err)
	}
}

func tarOwned(t *testing.T) []byte {
	t.Helper()
	var b strings.Builder
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "su", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 1234, Gid: 5678, Size: 3})
	tw.Write([]byte("su\n"))
	tw.Close()
	return []byte(b.String())
}
