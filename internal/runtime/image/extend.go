package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/layer"
)

// Extension is one layer to put on top of a stored image.
type Extension struct {
	// Layer opens the layer, an uncompressed tar. It is called more than
	// once (to hash, then to write) and must give the same bytes each
	// time.
	Layer func() (io.ReadCloser, error)
	// CreatedBy is the layer's history entry, what made it.
	CreatedBy string
	// Created is the time of the history entry and the new image's
	// creation time.
	Created time.Time
}

// ExtendOptions say how ExportExtended writes the new image.
type ExtendOptions struct {
	// Format is "docker-archive" or "oci", as for Export.
	Format string
	// Name is the name the written image carries (a RepoTag, a ref.name);
	// "" writes it nameless.
	Name string
	// Overwrite replaces dest when it exists; otherwise an existing dest
	// is refused with an error matching os.ErrExist.
	Overwrite bool
}

// Extended describes an image ExportExtended wrote.
type Extended struct {
	// ID is the digest of the written manifest: an OCI layout imports
	// under this ID (a docker-archive does not: its manifest is made at
	// import).
	ID string
	// DiffID is the added layer's.
	DiffID string
}

// ExportExtended writes the stored image ref with one more layer on top to
// dest, in the formats Export writes, without storing the new image. The
// config is the image's (entrypoint, command, environment, user, working
// directory, labels...) with the layer's DiffID appended to its rootfs and a
// history entry for it; the layer is stored gzip-compressed, in the media
// type family (OCI or Docker) of the image's manifest.
//
// Unlike Export, dest is always written whole: staged next to dest, then
// renamed into place (with Overwrite, exchanged atomically with what was
// there, which is then removed), so a reader sees the old dest or the new
// one, never a mix, and an OCI layout at dest is replaced, not added to.
func (s *Store) ExportExtended(ctx context.Context, ref string, ext Extension, dest string, o ExtendOptions) (Extended, error) {
	what := "export " + ref + " with a new layer"
	var out Extended
	if o.Format != "docker-archive" && o.Format != "oci" {
		return out, fmt.Errorf("%s: format %q: want docker-archive or oci", what, o.Format)
	}
	var names []string
	if o.Name != "" {
		n, err := canonicalName(o.Name)
		if err != nil {
			return out, fmt.Errorf("%s: %w", what, err)
		}
		names = []string{n}
	}
	if !o.Overwrite {
		if _, err := os.Lstat(dest); err == nil {
			return out, fmt.Errorf("%s: %s: %w", what, dest, os.ErrExist)
		}
	}
	lk, err := s.shared(ctx) // GC must not take the blobs away while we read them
	if err != nil {
		return out, err
	}
	defer lk.unlock()
	refs, err := s.loadRefs()
	if err != nil {
		return out, err
	}
	e, _, err := refs.resolve(ref)
	if err != nil {
		return out, err
	}
	base, err := s.v1Image(e.ID)
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	img, err := extend(ctx, base, ext)
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	diffID, err := layers[len(layers)-1].DiffID()
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	out = Extended{ID: digest.String(), DiffID: diffID.String()}

	staging, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".export-")
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	defer os.RemoveAll(staging)
	staged := filepath.Join(staging, "image")
	if o.Format == "oci" {
		err = exportLayout(img, names, staged)
		if err == nil {
			err = layer.Sync(staged)
		}
	} else {
		err = exportArchive(img, out.ID, names, staged)
	}
	if err == nil {
		err = place(staged, dest, o.Overwrite)
	}
	if err != nil {
		return out, fmt.Errorf("%s to %s: %w", what, dest, err)
	}
	return out, nil
}

// extend is base with ext's layer on top.
func extend(ctx context.Context, base v1.Image, ext Extension) (v1.Image, error) {
	mt, err := base.MediaType()
	if err != nil {
		return nil, err
	}
	layerType := types.OCILayer
	if mt == types.DockerManifestSchema2 {
		layerType = types.DockerLayer
	}
	opener := func() (io.ReadCloser, error) {
		rc, err := ext.Layer()
		if err != nil {
			return nil, err
		}
		return ctxReadCloser{ctxReader{ctx, rc}, rc}, nil
	}
	l, err := tarball.LayerFromOpener(opener, tarball.WithMediaType(layerType))
	if err != nil {
		return nil, fmt.Errorf("new layer: %w", err)
	}
	created := v1.Time{Time: ext.Created.UTC()}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   l,
		History: v1.History{Created: created, CreatedBy: ext.CreatedBy},
	})
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, created)
}

type ctxReadCloser struct {
	io.Reader
	io.Closer
}

// place moves staged to dest: refusing an existing dest unless overwrite,
// and then swapping the two atomically and removing the old one.
func place(staged, dest string, overwrite bool) error {
	if !overwrite {
		err := unix.Renameat2(unix.AT_FDCWD, staged, unix.AT_FDCWD, dest, unix.RENAME_NOREPLACE)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EEXIST):
			return fmt.Errorf("%s: %w", dest, os.ErrExist)
		case !errors.Is(err, unix.EINVAL):
			return &os.LinkError{Op: "rename", Old: staged, New: dest, Err: err}
		}
		// A filesystem without RENAME_NOREPLACE: check, then rename.
		if _, err := os.Lstat(dest); err == nil {
			return fmt.Errorf("%s: %w", dest, os.ErrExist)
		}
		return os.Rename(staged, dest)
	}
	err := unix.Renameat2(unix.AT_FDCWD, staged, unix.AT_FDCWD, dest, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		// staged now holds what dest held.
		return os.RemoveAll(staged)
	case errors.Is(err, unix.ENOENT):
		return os.Rename(staged, dest) // nothing to replace
	case !errors.Is(err, unix.EINVAL):
		return &os.LinkError{Op: "exchange", Old: staged, New: dest, Err: err}
	}
	// A filesystem without RENAME_EXCHANGE: rename replaces a file
	// atomically; a directory must be moved aside first.
	if err := os.Rename(staged, dest); err == nil {
		return nil
	}
	old := staged + ".old"
	if err := os.Rename(dest, old); err != nil {
		return err
	}
	if err := os.Rename(staged, dest); err != nil {
		os.Rename(old, dest)
		return err
	}
	return os.RemoveAll(old)
}
