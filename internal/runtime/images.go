package runtime

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"atoll.dev/atoll/internal/runtime/image"
	"atoll.dev/atoll/internal/runtime/pod"
)

// podImages returns the image IDs and unpacked layer directory names used
// by the pods on disk, whatever their state: a pod keeps its images until
// it is removed.
func (rt *Runtime) podImages() (ids, layerDirs map[string][]string, err error) {
	entries, err := rt.Pods.List()
	if err != nil {
		return nil, nil, err
	}
	ids, layerDirs = map[string][]string{}, map[string][]string{}
	for _, e := range entries {
		m, err := pod.ReadManifest(e.Dir)
		if err != nil {
			continue
		}
		for _, a := range m.Apps {
			ids[a.Image.ID] = append(ids[a.Image.ID], e.UUID)
			for _, l := range a.Layers {
				// A directory, or a key (image.DirKey) while the pod
				// is prepared.
				base := strings.TrimPrefix(filepath.Base(l), "sha256:")
				layerDirs[base] = append(layerDirs[base], e.UUID)
			}
		}
	}
	return ids, layerDirs, nil
}

// RemoveImage removes an image name, or the image itself when given by ID
// or when its last name goes; an image a pod uses is refused, naming the
// pods.
func (rt *Runtime) RemoveImage(ref string) error {
	img, err := rt.Images.Get(ref)
	if err != nil {
		return err
	}
	ids, _, err := rt.podImages()
	if err != nil {
		return err
	}
	byID := strings.HasPrefix(img.ID, "sha256:"+strings.TrimPrefix(ref, "sha256:"))
	if pods := ids[img.ID]; len(pods) > 0 && (byID || len(img.Names) <= 1) {
		return fmt.Errorf("image %s: %w by pod(s) %s: remove them first (atoll pod rm)", ref, image.ErrInUse, strings.Join(pods, ", "))
	}
	return rt.Images.Remove(ref)
}

// GCImages removes what no image refers to, keeping the layers of every
// pod on disk.
func (rt *Runtime) GCImages(ctx context.Context) (image.GCStats, error) {
	_, dirs, err := rt.podImages()
	if err != nil {
		return image.GCStats{}, err
	}
	return rt.Images.GC(ctx, func(id string) bool {
		_, used := dirs[strings.TrimPrefix(id, "sha256:")]
		return used
	})
}
