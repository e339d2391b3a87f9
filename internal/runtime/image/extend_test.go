package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestExportExtended(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	orig, err := s.Import(ctx, writeLayout(t, webImage(t), "example.com/web:1.0"), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	layerTar := tarOf(t, entry{name: "added", body: "added\n"})
	created := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	ext := Extension{
		Layer:     func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil },
		CreatedBy: "atoll pod export 1234 app web",
		Created:   created,
	}
	wantDiffID := sha256Of(layerTar).String()

	// check imports dest into a new store and compares it with the
	// original plus the layer.
	check := func(t *testing.T, dest string, wantNames []string) *Image {
		t.Helper()
		back, err := openStore(t).Import(ctx, dest, ImportOptions{})
		if err != nil {
			t.Fatalf("import the exported image: %v", err)
		}
		if !slices.Equal(back.Names, wantNames) {
			t.Errorf("names: got %q, want %q", back.Names, wantNames)
		}
		if got, want := diffIDs(back.Layers), append(diffIDs(orig.Layers), wantDiffID); !slices.Equal(got, want) {
			t.Errorf("layers' DiffIDs: got %q, want %q", got, want)
		}
		gotCfg, wantCfg := back.Config.Config, orig.Config.Config
		if !slices.Equal(gotCfg.Entrypoint, wantCfg.Entrypoint) || !slices.Equal(gotCfg.Cmd, wantCfg.Cmd) ||
			!slices.Equal(gotCfg.Env, wantCfg.Env) || gotCfg.User != wantCfg.User || gotCfg.WorkingDir != wantCfg.WorkingDir ||
			gotCfg.Labels["atoll.test"] != "yes" {
			t.Errorf("config: got %+v, want the original's %+v", gotCfg, wantCfg)
		}
		h := back.Config.History
		if len(h) == 0 || h[len(h)-1].CreatedBy != ext.CreatedBy || !h[len(h)-1].Created.Equal(created) {
			t.Errorf("history: got %+v, want it to end with %q at %v", h, ext.CreatedBy, created)
		}
		if !back.Created.Equal(created) {
			t.Errorf("created: got %v, want %v", back.Created, created)
		}
		return back
	}

	dir := t.TempDir()
	archive := filepath.Join(dir, "out.tar")
	got, err := s.ExportExtended(ctx, orig.ID, ext, archive, ExtendOptions{Format: "docker-archive", Name: "example.com/web:exported"})
	if err != nil {
		t.Fatal(err)
	}
	if got.DiffID != wantDiffID {
		t.Errorf("DiffID: got %s, want %s", got.DiffID, wantDiffID)
	}
	check(t, archive, []string{"example.com/web:exported"})

	t.Run("existing dest refused", func(t *testing.T) {
		before, _ := os.ReadFile(archive)
		_, err := s.ExportExtended(ctx, orig.ID, ext, archive, ExtendOptions{Format: "docker-archive"})
		if !errors.Is(err, os.ErrExist) {
			t.Errorf("export over an existing file: got %v, want an error matching os.ErrExist", err)
		}
		if after, _ := os.ReadFile(archive); !bytes.Equal(before, after) {
			t.Errorf("the refused export changed %s", archive)
		}
	})

	t.Run("overwrite a file with a layout, then the layout", func(t *testing.T) {
		dest := filepath.Join(dir, "replaced")
		if err := os.WriteFile(dest, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			got, err := s.ExportExtended(ctx, orig.ID, ext, dest, ExtendOptions{Format: "oci", Overwrite: true})
			if err != nil {
				t.Fatal(err)
			}
			back := check(t, dest, nil)
			if back.ID != got.ID {
				t.Errorf("the layout imports as %s, want the ID export gave, %s", back.ID, got.ID)
			}
		}
	})

	t.Run("nameless archive", func(t *testing.T) {
		dest := filepath.Join(dir, "nameless.tar")
		if _, err := s.ExportExtended(ctx, orig.ID, ext, dest, ExtendOptions{Format: "docker-archive"}); err != nil {
			t.Fatal(err)
		}
		check(t, dest, nil)
	})

	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{"nameless.tar", "out.tar", "replaced"}; !slices.Equal(left, want) {
		t.Errorf("files next to the exports: got %q, want %q (no staging left)", left, want)
	}

	for _, o := range []ExtendOptions{{Format: "aci"}, {Format: "oci", Name: "Bad Name"}} {
		if _, err := s.ExportExtended(ctx, orig.ID, ext, filepath.Join(dir, "bad"), o); err == nil {
			t.Errorf("ExportExtended(%+v): got no error, want one", o)
		}
	}
	if _, err := s.ExportExtended(ctx, "example.com/missing:1", ext, filepath.Join(dir, "bad"), ExtendOptions{Format: "oci"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ExportExtended of a missing image: got %v, want ErrNotFound", err)
	}
}

// The added layer takes the media type family of the image's manifest.
func TestExportExtendedKeepsMediaTypes(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	opener := func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarOf(t, entry{name: "base", body: "base\n"}))), nil
	}
	base, err := tarball.LayerFromOpener(opener) // a Docker layer, gzip
	if err != nil {
		t.Fatal(err)
	}
	docker, err := mutate.AppendLayers(empty.Image, base) // a Docker schema 2 manifest
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := docker.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	orig, err := s.Import(ctx, writeLayout(t, withConfig(t, docker, cfg), "example.com/docker:1.0"), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if orig.Layers[0].MediaType != string(types.DockerLayer) {
		t.Fatalf("the test image's layer is %s, want %s", orig.Layers[0].MediaType, types.DockerLayer)
	}
	layerTar := tarOf(t, entry{name: "added", body: "added\n"})
	ext := Extension{Layer: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil }, Created: time.Now()}
	dest := filepath.Join(t.TempDir(), "out")
	if _, err := s.ExportExtended(ctx, orig.ID, ext, dest, ExtendOptions{Format: "oci"}); err != nil {
		t.Fatal(err)
	}
	back, err := openStore(t).Import(ctx, dest, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Layers) != 2 {
		t.Fatalf("layers: got %d, want 2", len(back.Layers))
	}
	if got := back.Layers[1].MediaType; got != string(types.DockerLayer) {
		t.Errorf("added layer's media type: got %s, want %s like the image's manifest", got, types.DockerLayer)
	}
	if got := back.Layers[1].DiffID; got != sha256Of(layerTar).String() {
		t.Errorf("added layer's DiffID: got %s, want %s", got, sha256Of(layerTar))
	}
}
