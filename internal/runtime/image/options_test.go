package image

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Sources holding several images need to be told which.
func TestSeveralImages(t *testing.T) {
	ctx := context.Background()
	a := webImage(t)
	b := imageOf(t, gzLayer(t, entry{name: "b", body: "b"}))

	dir := filepath.Join(t.TempDir(), "two")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	p.AppendImage(a, layout.WithAnnotations(map[string]string{annotationRefName: "example.com/a:1"}))
	p.AppendImage(b, layout.WithAnnotations(map[string]string{annotationRefName: "example.com/b:1"}))
	s := openStore(t)
	_, err = s.Import(ctx, dir, ImportOptions{})
	wantErr(t, err, dir, "holds 2 images", "example.com/a:1", "example.com/b:1", "oci:PATH:TAG")
	got, err := s.Fetch(ctx, "oci:"+dir+":example.com/b:1", FetchOptions{})
	if err != nil || got.ID != digestOf(t, b) {
		t.Errorf("Fetch by ref.name = %v, %v; want %s", got, err, digestOf(t, b))
	}
	got, err = s.Import(ctx, dir, ImportOptions{Name: "example.com/a:1"})
	if err != nil || got.ID != digestOf(t, a) {
		t.Errorf("Import with a Name among the ref.names = %v, %v; want %s", got, err, digestOf(t, a))
	}

	archive := filepath.Join(t.TempDir(), "two.tar")
	ta, _ := name.NewTag("example.com/a:1")
	tb, _ := name.NewTag("example.com/b:1")
	if err := tarball.MultiWriteToFile(archive, map[name.Tag]v1.Image{ta: a, tb: b}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Import(ctx, archive, ImportOptions{})
	wantErr(t, err, archive, "holds 2 images", "say which")
	got, err = s.Import(ctx, archive, ImportOptions{Name: "example.com/a:1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := wantDiffIDs(t, a); !slices.Equal(diffIDs(got.Layers), want) {
		t.Errorf("imported %q, want the layers of example.com/a:1 %q", diffIDs(got.Layers), want)
	}
	_, err = s.Import(ctx, archive, ImportOptions{Name: "example.com/c:1"})
	wantErr(t, err, archive, `no image named "example.com/c:1"`)
}

func TestImportName(t *testing.T) {
	s := openStore(t)
	got, err := s.Import(context.Background(), writeLayout(t, webImage(t), "example.com/web:1.0"), ImportOptions{Name: "mine/web:dev"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"docker.io/mine/web:dev"}; !slices.Equal(got.Names, want) {
		t.Errorf("Names = %q, want %q: the given name replaces those found", got.Names, want)
	}
	_, err = s.Import(context.Background(), writeLayout(t, webImage(t), ""), ImportOptions{Name: "Not Valid"})
	wantErr(t, err, "Not Valid")
}

func TestCancelledImport(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := openStore(t)
	_, err := s.Import(ctx, writeLayout(t, webImage(t), "example.com/web:1"), ImportOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Import with a cancelled context = %v, want context.Canceled", err)
	}
	checkEmpty(t, s)
}

// GC waits for imports and unpacks: it cannot take store.lock while one
// holds it shared.
func TestGCWaitsForImports(t *testing.T) {
	s := openStore(t)
	lk, err := s.shared(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.GC(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GC while an import runs = %v, want it to wait (until the deadline)", err)
	}
	lk.unlock()
	if _, err := s.GC(context.Background(), nil); err != nil {
		t.Errorf("GC after the import: %v", err)
	}
}
