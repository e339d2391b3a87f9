package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"atoll.dev/atoll/internal/runtime/layer"
)

// Errors to test with errors.Is.
var (
	ErrNotFound    = errors.New("not found")
	ErrAmbiguous   = errors.New("ambiguous: matches several images")
	ErrNoSignature = errors.New("no signature")
	ErrInvalid     = errors.New("not a valid image")
	// ErrInUse is for callers (pods) that refuse to remove an image they
	// use; this package never returns it.
	ErrInUse = errors.New("image in use")
)

// Store is the image store rooted at a directory (<root>/images on a
// machine). Its methods may be called from many goroutines and processes.
type Store struct {
	dir string
	// mode is how RootfsLayers unpacks: Overlay as root, Flatten otherwise.
	mode layer.Mode
	// chown applies the owners from the layer tars; only root can.
	chown bool
}

// Image is an image in the store.
type Image struct {
	ID       string        // manifest digest "sha256:<hex>" of the stored manifest
	Names    []string      // "example.com/web:1.0"
	Config   v1.ConfigFile // entrypoint, cmd, env, user, workdir, exposed ports, labels
	Layers   []Layer       // bottom first
	Size     int64         // compressed size of the layers
	Created  time.Time     // from the config
	Imported time.Time
}

// Layer is one layer of an image.
type Layer struct {
	Digest    string // of the blob as stored (compressed or not)
	DiffID    string // of the uncompressed tar
	Size      int64  // of the blob
	MediaType string
}

// Open opens the image store in dir, creating it if needed.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("image store %s: %w", dir, err)
	}
	s := &Store{dir: abs, mode: layer.Flatten}
	if os.Geteuid() == 0 {
		s.mode, s.chown = layer.Overlay, true
	}
	if err := os.MkdirAll(s.path("blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("image store %s: %w", dir, err)
	}
	for _, d := range []string{"layers", "rootfs", "tmp", "locks"} {
		if err := os.Mkdir(s.path(d), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("image store %s: %w", dir, err)
		}
	}
	return s, nil
}

// Dir is the directory the store is rooted at.
func (s *Store) Dir() string { return s.dir }

// UnpackMode says how RootfsLayers unpacks: layer.Overlay (one directory per
// layer) as root, layer.Flatten (one directory per image) otherwise.
func (s *Store) UnpackMode() layer.Mode { return s.mode }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

func (s *Store) blobPath(h v1.Hash) string {
	return s.path("blobs", h.Algorithm, h.Hex)
}

// List returns the images in the store, sorted by name (nameless ones last,
// by ID).
func (s *Store) List() ([]Image, error) {
	refs, err := s.loadRefs()
	if err != nil {
		return nil, err
	}
	images := make([]Image, 0, len(refs.Images))
	for _, e := range refs.Images {
		img, err := s.load(e)
		if err != nil {
			if s.removedMeanwhile(e.ID) {
				continue
			}
			return nil, err
		}
		images = append(images, *img)
	}
	sort.SliceStable(images, func(i, j int) bool { return imageLess(&images[i], &images[j]) })
	return images, nil
}

func imageLess(a, b *Image) bool {
	switch {
	case len(a.Names) > 0 && len(b.Names) > 0:
		return a.Names[0] < b.Names[0]
	case len(a.Names) > 0 || len(b.Names) > 0:
		return len(a.Names) > 0
	}
	return a.ID < b.ID
}

// removedMeanwhile tells whether an image that could not be loaded was
// removed (and its blobs collected) since refs.json was read.
func (s *Store) removedMeanwhile(id string) bool {
	refs, err := s.loadRefs()
	return err == nil && refs.find(id) == nil
}

// Get returns the image ref names: a name ("web", "example.com/web:1.0"), an
// ID or a unique ID prefix of at least 12 hex digits.
func (s *Store) Get(ref string) (*Image, error) {
	refs, err := s.loadRefs()
	if err != nil {
		return nil, err
	}
	e, _, err := refs.resolve(ref)
	if err != nil {
		return nil, err
	}
	return s.load(*e)
}

// load reads an image's manifest and config from the blobs.
func (s *Store) load(e refEntry) (*Image, error) {
	_, img, err := s.read(e.ID)
	if err != nil {
		return nil, err
	}
	img.Names = append([]string(nil), e.Names...)
	img.Imported = e.Imported
	return img, nil
}

// read reads and checks the manifest and config of the image id.
func (s *Store) read(id string) (*v1.Manifest, *Image, error) {
	h, err := v1.NewHash(id)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", id, err)
	}
	manifest, err := s.readBlob(h, maxManifestSize)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: manifest: %w", id, err)
	}
	m, err := parseManifest(manifest)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", id, err)
	}
	config, err := s.readBlob(m.Config.Digest, maxConfigSize)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: config: %w", id, err)
	}
	img, err := describe(m, config)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", id, err)
	}
	img.ID = id
	return m, img, nil
}

// readBlob reads a small blob (a manifest or a config) whole.
func (s *Store) readBlob(h v1.Hash, limit int64) ([]byte, error) {
	f, err := os.Open(s.blobPath(h))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllLimit(f, limit, h.String())
}

// readAllLimit reads r whole, refusing more than limit bytes: manifests and
// configs come from outside and must not exhaust memory.
func readAllLimit(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", what, limit)
	}
	return b, nil
}

// defaultPlatform is the platform images are chosen for in multi-arch
// indexes when the caller names none.
func defaultPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// Tag gives the image ref names the name name ("example.com/web:1.0"; no
// tag means ":latest"), taking it from the image that had it.
func (s *Store) Tag(ref, name string) error {
	n, err := canonicalName(name)
	if err != nil {
		return fmt.Errorf("tag %s: %w", ref, err)
	}
	return s.updateRefs(func(refs *refsFile) error {
		e, _, err := refs.resolve(ref)
		if err != nil {
			return err
		}
		refs.giveName(e, n)
		return nil
	})
}

// Remove removes a name from the store, and the image itself when it has no
// name left; ref given as an ID or ID prefix removes the image with all its
// names. The image's blobs and unpacked layers stay until GC. Whether a pod
// still uses the image (ErrInUse) is the caller's business.
func (s *Store) Remove(ref string) error {
	return s.updateRefs(func(refs *refsFile) error {
		e, byName, err := refs.resolve(ref)
		if err != nil {
			return err
		}
		if byName {
			n, _ := canonicalName(ref)
			e.Names = without(e.Names, n)
			if len(e.Names) > 0 {
				return nil
			}
		}
		refs.drop(e.ID)
		return nil
	})
}
