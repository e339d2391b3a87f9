package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/fsutil"
	"atoll.dev/atoll/internal/runtime/layer"
)

// RootfsLayers returns the unpacked layer directories of an image, bottom
// first, unpacking each missing one once, for use as overlayfs lower dirs
// (which overlayfs lists top first: reverse them). It is safe to call
// concurrently from many goroutines and processes.
//
// As root (UnpackMode Overlay), each layer is unpacked alone into
// layers/<DiffID>, whiteouts as overlayfs markers, several layers at once;
// an image that has the same layer twice gets its directory once, at its
// topmost place, which gives the same merged view (overlayfs refuses a lower
// dir given twice); an image without layers gets none. Otherwise (Flatten),
// all layers are applied in order into one directory, rootfs/<ChainID>, and
// that one is returned.
//
// The directories are shared by all images and pods that have the layer:
// never write into them. GC keeps them while keep(DirKey(dir)) is true;
// DirKeys gives those keys before the directories exist.
func (s *Store) RootfsLayers(ctx context.Context, img *Image) ([]string, error) {
	if img == nil {
		return nil, fmt.Errorf("rootfs layers: %w: no image", ErrInvalid)
	}
	for _, l := range img.Layers {
		if _, _, err := layerHashes(l); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.ID, err)
		}
	}
	lk, err := s.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	if s.mode == layer.Flatten {
		dir, err := s.flatten(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.ID, err)
		}
		return []string{dir}, nil
	}
	layers := topmost(img.Layers)
	dirs := make([]string, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, l := range layers {
		g.Go(func() (err error) {
			dirs[i], err = s.unpackLayer(gctx, l)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ID, err)
	}
	return dirs, nil
}

// DirKey is the key that GC's keep function is asked about for a directory
// RootfsLayers returned: "sha256:<hex>", the layer's DiffID for a layers/
// directory, the top layer's ChainID for a flattened rootfs/ one.
func DirKey(dir string) string { return "sha256:" + filepath.Base(dir) }

// DirKeys returns the DirKey of each directory RootfsLayers gives for img,
// without unpacking anything: a pod records them before it asks for the
// directories, so that a GC running in between cannot take them away.
func (s *Store) DirKeys(img *Image) []string {
	if s.mode == layer.Flatten {
		return []string{chainID(img.Layers).String()}
	}
	var keys []string
	for _, l := range topmost(img.Layers) {
		keys = append(keys, l.DiffID)
	}
	return keys
}

// topmost drops the lower occurrences of layers an image has twice.
func topmost(layers []Layer) []Layer {
	seen := map[string]bool{}
	var rev []Layer
	for i := len(layers) - 1; i >= 0; i-- {
		if !seen[layers[i].DiffID] {
			seen[layers[i].DiffID] = true
			rev = append(rev, layers[i])
		}
	}
	out := make([]Layer, len(rev))
	for i, l := range rev {
		out[len(rev)-1-i] = l
	}
	return out
}

func layerHashes(l Layer) (digest, diffID v1.Hash, err error) {
	if digest, err = v1.NewHash(l.Digest); err == nil {
		err = checkDigest(digest)
	}
	if err == nil {
		if diffID, err = v1.NewHash(l.DiffID); err == nil {
			err = checkDigest(diffID)
		}
	}
	if err != nil {
		return digest, diffID, fmt.Errorf("%w: layer %s: %v", ErrInvalid, l.Digest, err)
	}
	return digest, diffID, nil
}

// unpackLayer unpacks one layer alone into layers/<DiffID>, in Overlay mode.
func (s *Store) unpackLayer(ctx context.Context, l Layer) (string, error) {
	_, diffID, _ := layerHashes(l)
	return s.unpackOnce(ctx, "layers", diffID, func(tmp string) error {
		return s.apply(ctx, tmp, l, layer.Overlay)
	})
}

// flatten applies all layers of an image into rootfs/<ChainID>.
func (s *Store) flatten(ctx context.Context, img *Image) (string, error) {
	return s.unpackOnce(ctx, "rootfs", chainID(img.Layers), func(tmp string) error {
		for _, l := range img.Layers {
			if err := s.apply(ctx, tmp, l, layer.Flatten); err != nil {
				return err
			}
		}
		return nil
	})
}

// chainID is the OCI ChainID of a stack of layers: it names their flattened
// content. An empty stack gets the digest of nothing.
func chainID(layers []Layer) v1.Hash {
	if len(layers) == 0 {
		return sha256Of(nil)
	}
	id := layers[0].DiffID
	for _, l := range layers[1:] {
		id = sha256Of([]byte(id + " " + l.DiffID)).String()
	}
	h, _ := v1.NewHash(id)
	return h
}

// unpackOnce makes the directory <sub>/<key> with fill, once: under the
// key's lock, into a temporary directory renamed into place when complete
// and synced, so a reader sees it whole or not at all, and a second caller
// waits and reuses it.
func (s *Store) unpackOnce(ctx context.Context, sub string, key v1.Hash, fill func(tmp string) error) (string, error) {
	final := s.path(sub, key.Hex)
	if isDir(final) {
		return final, nil
	}
	lk, err := lockFile(ctx, s.path("locks", sub+"-"+key.Hex+".lock"), unix.LOCK_EX)
	if err != nil {
		return "", err
	}
	defer lk.unlock()
	if isDir(final) {
		return final, nil
	}
	tmp, err := os.MkdirTemp(s.path("tmp"), "unpack-")
	if err != nil {
		return "", err
	}
	// MkdirTemp makes 0700; a layer without a "./" entry must still let the
	// container's users through its root.
	err = os.Chmod(tmp, 0o755)
	if err == nil {
		err = fill(tmp)
	}
	if err == nil {
		err = layer.Sync(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		removeTree(tmp)
		return "", err
	}
	if err := fsutil.SyncDir(s.path(sub)); err != nil {
		return "", err
	}
	return final, nil
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

// apply streams a layer blob from disk through decompression and the
// DiffID hash into layer.Apply. The blob's digest was checked when it was
// stored; the DiffID is checked here, because unpacked layers are shared
// by DiffID: an image must not plant other content under a DiffID another
// image trusts.
func (s *Store) apply(ctx context.Context, dir string, l Layer, mode layer.Mode) error {
	digest, diffID, err := layerHashes(l)
	if err != nil {
		return err
	}
	f, err := os.Open(s.blobPath(digest))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("layer %s: blob %s missing (image removed and collected?): %w", l.DiffID, l.Digest, ErrNotFound)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, copyBufSize)
	magic, _ := br.Peek(4)
	dr, err := decompress(compressionOf(magic), ctxReader{ctx, br})
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	defer dr.Close()
	d := sha256.New()
	tr := io.TeeReader(dr, d)
	if _, err := layer.Apply(dir, tr, layer.Options{Mode: mode, Chown: s.chown}); err != nil {
		return fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	// The tar's end blocks and padding belong to the DiffID too.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	if got := sha256Hash(d); got != diffID {
		return fmt.Errorf("layer %s: %w: uncompressed content has digest %s", l.DiffID, ErrInvalid, got)
	}
	return nil
}

// removeTree deletes a directory tree. An unpacked layer may hold
// directories without write permission (0555), which only root can empty
// as they are: without root, they are made writable first.
func removeTree(p string) error {
	err := os.RemoveAll(p)
	if err == nil || os.Geteuid() == 0 {
		return err
	}
	filepath.WalkDir(p, func(q string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}

// isStoreName tells the names of entries the store made in blobs/, layers/
// and rootfs/ from anything else, which GC leaves alone.
func isStoreName(n string) bool { return isHex(n, 64) }
