package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// GCStats says what GC deleted.
type GCStats struct {
	Blobs     int   // blobs no image refers to
	BlobBytes int64 // their size
	Dirs      int   // unpacked layers and flattened rootfs no image refers to nor keep protects
	Temp      int   // leftovers of killed imports and unpacks, in tmp/
}

// GC deletes the blobs and unpacked directories that no image in the store
// refers to and that keep does not protect, and the leftovers of killed
// imports and unpacks. keep is asked about each unpacked directory by its
// DirKey ("sha256:<hex>": the DiffID of a layer, the ChainID of a flattened
// rootfs); pods keep those they use. GC waits for the imports and unpacks
// running in any process to end, and holds new ones off while it runs.
func (s *Store) GC(ctx context.Context, keep func(layerDiffID string) bool) (GCStats, error) {
	var st GCStats
	lk, err := lockFile(ctx, s.path("store.lock"), unix.LOCK_EX)
	if err != nil {
		return st, fmt.Errorf("image gc: %w", err)
	}
	defer lk.unlock()
	// Nothing runs now: everything in tmp/ and locks/ is left over.
	if st.Temp, err = s.clearDir("tmp"); err != nil {
		return st, err
	}
	if _, err := s.clearDir("locks"); err != nil {
		return st, err
	}
	blobs, dirs, err := s.live()
	if err != nil {
		return st, err
	}
	if err := s.sweepBlobs(ctx, blobs, &st); err != nil {
		return st, err
	}
	for _, sub := range []string{"layers", "rootfs"} {
		if err := s.sweepDirs(ctx, sub, dirs, keep, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// live returns the blobs and the unpacked directories the images refer to.
// A damaged image (a blob missing or bad) keeps what can still be known of
// it, and does not stop the collection of the rest.
func (s *Store) live() (blobs, dirs map[string]bool, err error) {
	refs, err := s.loadRefs()
	if err != nil {
		return nil, nil, err
	}
	blobs, dirs = map[string]bool{}, map[string]bool{}
	for _, e := range refs.Images {
		id, _ := v1.NewHash(e.ID)
		blobs[id.Hex] = true
		b, err := s.readBlob(id, maxManifestSize)
		if err != nil {
			continue
		}
		m, err := parseManifest(b)
		if err != nil {
			continue
		}
		blobs[m.Config.Digest.Hex] = true
		for _, l := range m.Layers {
			blobs[l.Digest.Hex] = true
		}
		config, err := s.readBlob(m.Config.Digest, maxConfigSize)
		if err != nil {
			continue
		}
		img, err := describe(m, config)
		if err != nil {
			continue
		}
		for _, l := range img.Layers {
			dirs[strings.TrimPrefix(l.DiffID, "sha256:")] = true
		}
		dirs[chainID(img.Layers).Hex] = true
	}
	return blobs, dirs, nil
}

func (s *Store) sweepBlobs(ctx context.Context, live map[string]bool, st *GCStats) error {
	dir := s.path("blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("image gc: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !isStoreName(e.Name()) || live[e.Name()] {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("image gc: %w", err)
		}
		st.Blobs++
		st.BlobBytes += fi.Size()
	}
	return nil
}

// sweepDirs deletes the unpacked directories of sub that are neither live
// nor kept. Each is first renamed into tmp/, so a GC killed while deleting
// leaves no half layer in sight; the next GC finishes the job.
func (s *Store) sweepDirs(ctx context.Context, sub string, live map[string]bool, keep func(string) bool, st *GCStats) error {
	entries, err := os.ReadDir(s.path(sub))
	if err != nil {
		return fmt.Errorf("image gc: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := e.Name()
		if !isStoreName(n) || live[n] || (keep != nil && keep("sha256:"+n)) {
			continue
		}
		doomed, err := os.MkdirTemp(s.path("tmp"), "del-")
		if err != nil {
			return fmt.Errorf("image gc: %w", err)
		}
		if err := os.Rename(s.path(sub, n), filepath.Join(doomed, n)); err != nil {
			return fmt.Errorf("image gc: %w", err)
		}
		if err := removeTree(doomed); err != nil {
			return fmt.Errorf("image gc: %w", err)
		}
		st.Dirs++
	}
	return nil
}

// clearDir empties a directory of the store, returning how many entries it
// held.
func (s *Store) clearDir(sub string) (int, error) {
	entries, err := os.ReadDir(s.path(sub))
	if err != nil {
		return 0, fmt.Errorf("image gc: %w", err)
	}
	for _, e := range entries {
		if err := removeTree(s.path(sub, e.Name())); err != nil {
			return 0, fmt.Errorf("image gc: %w", err)
		}
	}
	return len(entries), nil
}
