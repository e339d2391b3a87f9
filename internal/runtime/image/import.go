package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"atoll.dev/atoll/internal/fsutil"
)

// ImportOptions are the options of Import and Fetch.
type ImportOptions struct {
	Name      string   // name to give the image (overrides the names found in the archive)
	Verify    Verifier // nil means: do not verify (the caller decided the image is insecure-allowed)
	Signature string   // path of a detached signature; "" means the default location (see the package doc)
}

// Verifier checks a detached OpenPGP signature for an image name; the trust
// package implements it.
type Verifier interface {
	Verify(imageName string, signed io.Reader, signature io.Reader) error
}

// Import imports the image at path: an OCI image layout directory, a
// docker-archive tar as `docker save` writes it, or an OCI image layout as a
// tar. From an archive or layout holding several images, opt.Name picks the
// one with that name (a RepoTag, a ref.name); Fetch "oci:PATH:TAG" picks a
// layout's image by tag. A multi-arch index gives its linux/<GOARCH> image.
func (s *Store) Import(ctx context.Context, path string, opt ImportOptions) (*Image, error) {
	return s.importPath(ctx, "import", path, "", defaultPlatform(), opt)
}

// importPath imports from a local path; verb ("import", "fetch") starts the
// error messages.
func (s *Store) importPath(ctx context.Context, verb, path, tag string, plat v1.Platform, opt ImportOptions) (*Image, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", verb, path, err)
	}
	switch {
	case fi.IsDir():
		src, err := openLayoutDir(verb, path)
		if err != nil {
			return nil, err
		}
		return s.importLayout(ctx, src, verb, tag, plat, opt)
	case fi.Mode().IsRegular():
		return s.importArchive(ctx, verb, path, tag, plat, opt)
	}
	return nil, fmt.Errorf("%s %s: %w: neither a directory nor a file", verb, path, ErrInvalid)
}

// candidate is an image whose manifest and config are read and checked but
// not yet stored.
type candidate struct {
	what     string   // "import PATH", "fetch REF": starts error messages
	names    []string // canonical
	manifest []byte
	m        *v1.Manifest
	config   []byte
	// openBlob opens a layer blob of the source.
	openBlob func(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error)
	jobs     int // layers copied at once
}

// newCandidate checks a manifest and its config.
func newCandidate(what string, manifest, config []byte) (*candidate, error) {
	m, err := parseManifest(manifest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if got := sha256Of(config); got != m.Config.Digest {
		return nil, fmt.Errorf("%s: config blob has digest %s, want %s", what, got, m.Config.Digest)
	}
	if _, err := describe(m, config); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &candidate{what: what, manifest: manifest, m: m, config: config, jobs: 1}, nil
}

// store writes the candidate's blobs, the manifest last, and commits the
// image. The caller has verified it.
func (s *Store) store(ctx context.Context, c *candidate) (*Image, error) {
	lk, err := s.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	if err := s.putBlob(ctx, bytes.NewReader(c.config), c.m.Config.Digest, int64(len(c.config))); err != nil {
		return nil, fmt.Errorf("%s: config: %w", c.what, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.jobs)
	for i, d := range c.m.Layers {
		if s.hasBlob(d.Digest) {
			continue
		}
		g.Go(func() error {
			if err := s.copyLayer(gctx, c, d); err != nil {
				return fmt.Errorf("%s: layer %d: %w", c.what, i, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	id := sha256Of(c.manifest)
	if err := s.putBlob(ctx, bytes.NewReader(c.manifest), id, int64(len(c.manifest))); err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", c.what, err)
	}
	return s.commit(id, c.names)
}

func (s *Store) copyLayer(ctx context.Context, c *candidate, d v1.Descriptor) error {
	rc, err := c.openBlob(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	return s.putBlob(ctx, rc, d.Digest, d.Size)
}

// commit makes an image whose blobs are all in the store visible, giving it
// names. Importing an image again adds its names and keeps its import time.
func (s *Store) commit(id v1.Hash, names []string) (*Image, error) {
	if err := fsutil.SyncDir(s.path("blobs", "sha256")); err != nil {
		return nil, err
	}
	var entry refEntry
	err := s.updateRefs(func(refs *refsFile) error {
		e := refs.find(id.String())
		if e == nil {
			refs.Images = append(refs.Images, refEntry{ID: id.String(), Imported: time.Now().UTC()})
			e = &refs.Images[len(refs.Images)-1]
		}
		for _, n := range names {
			refs.giveName(e, n)
		}
		entry = *e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.load(entry)
}

// imageNames is opt.Name when given, else the names found in the source.
func imageNames(opt ImportOptions, found []string) ([]string, error) {
	if opt.Name == "" {
		return found, nil
	}
	n, err := canonicalName(opt.Name)
	if err != nil {
		return nil, err
	}
	return []string{n}, nil
}

// verify checks the signature of an image before anything of it is stored.
// The verifier is asked for each name the image will get: a key trusted for
// one name must not let an image take another name.
func verify(opt ImportOptions, names []string, what string, signed func() (io.ReadCloser, error), defaultSig string) error {
	if opt.Verify == nil {
		return nil
	}
	display := what
	if len(names) > 0 {
		display = names[0]
	}
	sigPath := opt.Signature
	if sigPath == "" {
		sigPath = defaultSig
	}
	if sigPath == "" {
		return fmt.Errorf("image %s: %w given (a registry image has no default signature; use --signature, or --insecure-options=image to skip)", display, ErrNoSignature)
	}
	sig, err := os.ReadFile(sigPath)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("image %s: %w at %s (use --signature, or --insecure-options=image to skip)", display, ErrNoSignature, sigPath)
	}
	if err != nil {
		return fmt.Errorf("image %s: signature: %w", display, err)
	}
	if len(names) == 0 {
		names = []string{""}
	}
	for _, n := range names {
		if err := verifyOne(opt.Verify, n, signed, sig); err != nil {
			return fmt.Errorf("image %s: %w", display, err)
		}
	}
	return nil
}

func verifyOne(v Verifier, name string, signed func() (io.ReadCloser, error), sig []byte) error {
	r, err := signed()
	if err != nil {
		return err
	}
	defer r.Close()
	return v.Verify(name, r, bytes.NewReader(sig))
}

func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func fileOpener(path string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(path) }
}

func sha256Of(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}

// baseName is the last element of path without an archive extension, to
// name images of layouts whose ref.name is only a tag.
func baseName(path string) string {
	b := filepath.Base(filepath.Clean(path))
	for _, ext := range []string{".tar", ".oci"} {
		if t, ok := strings.CutSuffix(b, ext); ok && t != "" {
			return t
		}
	}
	return b
}
