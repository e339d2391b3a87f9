package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Export writes the image ref to dest, in format "docker-archive" (a tar as
// `docker save` writes it, with the image's names as RepoTags; written to a
// temporary file renamed into place) or "oci" (an OCI image layout
// directory, created, or added to when it is one already, with the names as
// ref.name annotations). The stored manifest is written as it is, so an
// exported layout imports again as the same image ID.
func (s *Store) Export(ctx context.Context, ref string, dest string, format string) error {
	what := "export " + ref
	if format != "docker-archive" && format != "oci" {
		return fmt.Errorf("%s: format %q: want docker-archive or oci", what, format)
	}
	lk, err := s.shared(ctx) // GC must not take the blobs away while we read them
	if err != nil {
		return err
	}
	defer lk.unlock()
	refs, err := s.loadRefs()
	if err != nil {
		return err
	}
	e, _, err := refs.resolve(ref)
	if err != nil {
		return err
	}
	img, err := s.v1Image(e.ID)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if format == "oci" {
		err = exportLayout(img, e.Names, dest)
	} else {
		err = exportArchive(img, e.ID, e.Names, dest)
	}
	if err != nil {
		return fmt.Errorf("%s to %s: %w", what, dest, err)
	}
	return nil
}

func exportArchive(img v1.Image, id string, names []string, dest string) error {
	refs := map[name.Reference]v1.Image{}
	for _, n := range names {
		t, err := name.NewTag(n)
		if err != nil {
			return err
		}
		refs[t] = img
	}
	if len(refs) == 0 {
		// A nameless image is written without RepoTags; ggcr wants a
		// reference all the same.
		d, err := name.NewDigest("localhost/image@" + id)
		if err != nil {
			return err
		}
		refs[d] = img
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = tarball.MultiRefWrite(refs, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dest)
}

func exportLayout(img v1.Image, names []string, dest string) error {
	p, err := layout.FromPath(dest)
	if errors.Is(err, os.ErrNotExist) {
		if err := checkEmptyOrMissing(dest); err != nil {
			return err
		}
		p, err = layout.Write(dest, empty.Index)
	}
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return p.AppendImage(img)
	}
	for _, n := range names {
		ann := map[string]string{annotationRefName: n}
		if err := p.ReplaceImage(img, match.Annotation(annotationRefName, n), layout.WithAnnotations(ann)); err != nil {
			return err
		}
	}
	return nil
}

// checkEmptyOrMissing refuses to turn a directory that holds something
// other than a layout into one.
func checkEmptyOrMissing(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is neither empty nor an OCI image layout", dir)
	}
	return nil
}

// v1Image is a stored image as ggcr sees it: its manifest bytes as stored,
// its blobs read from the store.
func (s *Store) v1Image(id string) (v1.Image, error) {
	h, err := v1.NewHash(id)
	if err != nil {
		return nil, err
	}
	raw, err := s.readBlob(h, maxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(raw)
	if err != nil {
		return nil, err
	}
	config, err := s.readBlob(m.Config.Digest, maxConfigSize)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&storedImage{s: s, raw: raw, m: m, config: config})
}

type storedImage struct {
	s      *Store
	raw    []byte
	m      *v1.Manifest
	config []byte
}

func (i *storedImage) RawManifest() ([]byte, error)   { return i.raw, nil }
func (i *storedImage) RawConfigFile() ([]byte, error) { return i.config, nil }

func (i *storedImage) MediaType() (types.MediaType, error) {
	if i.m.MediaType == "" {
		return types.OCIManifestSchema1, nil
	}
	return i.m.MediaType, nil
}

func (i *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, d := range i.m.Layers {
		if d.Digest == h {
			return &storedLayer{s: i.s, d: d}, nil
		}
	}
	return nil, fmt.Errorf("layer %s: %w in the image", h, ErrNotFound)
}

type storedLayer struct {
	s *Store
	d v1.Descriptor
}

func (l *storedLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *storedLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *storedLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }
func (l *storedLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.s.blobPath(l.d.Digest)) }
