package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"atoll.dev/atoll/internal/runtime/image"
	"atoll.dev/atoll/internal/runtime/layer"
	"atoll.dev/atoll/internal/runtime/pod"
	"atoll.dev/atoll/internal/runtime/stage1"
)

// ExportOptions say what Export writes.
type ExportOptions struct {
	// App is the app whose root is exported; "" for a pod's only app.
	App string
	// Format is "docker-archive" (the default) or "oci".
	Format string
	// Name is the name the written image carries; "" writes it nameless.
	Name string
	// Overwrite replaces dest when it exists.
	Overwrite bool
}

// Exported says what Export wrote.
type Exported struct {
	UUID, App string
	image.Extended
	// Changes counts what the new layer holds.
	Changes layer.DiffStats
}

// Export writes an app's root filesystem, as the app left it, as a new
// image at dest (rkt's `rkt export`): the app's image with one more layer
// on top holding what the app changed, made from the app's overlayfs upper
// directory by layer.Diff, with the image's config and a history entry
// "atoll pod export <uuid> app <name>". A prepared pod exports its image
// with an empty top layer.
//
// A running pod is refused (stop it first), as are pods still being
// prepared or removed. The pod stays locked while it is exported, so that
// it can neither start nor be removed meanwhile. dest is written whole and
// atomically; an existing dest is refused (os.ErrExist) unless Overwrite.
func (rt *Runtime) Export(ctx context.Context, ref, dest string, o ExportOptions) (Exported, error) {
	var out Exported
	if o.Format == "" {
		o.Format = "docker-archive"
	}
	if !o.Overwrite {
		if _, err := os.Lstat(dest); err == nil {
			return out, fmt.Errorf("export to %s: %w", dest, os.ErrExist)
		}
	}
	e, err := rt.find(ref)
	if err != nil {
		return out, err
	}
	out.UUID = e.UUID
	p, err := rt.Pods.Lock(e.UUID)
	if errors.Is(err, pod.ErrLocked) {
		// err names the pod.
		if e.State() == "running" {
			return out, fmt.Errorf("%w: it is running (stop it first)", err)
		}
		return out, fmt.Errorf("%w: it is %s", err, e.State())
	}
	if err != nil {
		return out, err
	}
	defer p.Close()
	switch p.Phase {
	case pod.PhasePrepared, pod.PhaseRun, pod.PhaseExitedGarbage:
	default:
		return out, fmt.Errorf("pod %s: %w: it is in %s, want prepared or exited", e.UUID, pod.ErrPhase, p.Phase)
	}
	m, err := pod.ReadManifest(p.Dir())
	if err != nil {
		return out, fmt.Errorf("pod %s: %w", e.UUID, err)
	}
	app, err := exportedApp(m, o.App)
	if err != nil {
		return out, err
	}
	out.App = app.Name
	upper := filepath.Join(pod.AppDir(p.Dir(), app.Name), "upper")
	if fi, err := os.Lstat(upper); err != nil || !fi.IsDir() {
		return out, fmt.Errorf("pod %s: app %s has no overlay upper directory, so no changes to export", e.UUID, app.Name)
	}

	// The layer is staged next to dest, where the image will go: the
	// space is the user's choice, and /tmp is often a small tmpfs.
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".layer-")
	if err != nil {
		return out, fmt.Errorf("export pod %s: %w", e.UUID, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	// Where stage1 mounts something over the app's root, creating what the
	// image lacks in the upper directory: those placeholders are no change
	// of the app's.
	mounts := stage1.MountPoints(app)
	if out.Changes, err = layer.Diff(upper, tmp, layer.DiffOptions{MountPoints: mounts}); err != nil {
		return out, fmt.Errorf("export pod %s app %s: %w", e.UUID, app.Name, err)
	}
	if err := tmp.Close(); err != nil {
		return out, fmt.Errorf("export pod %s: %w", e.UUID, err)
	}
	ext := image.Extension{
		Layer:     func() (io.ReadCloser, error) { return os.Open(tmp.Name()) },
		CreatedBy: fmt.Sprintf("atoll pod export %s app %s", e.UUID, app.Name),
		Created:   time.Now(),
	}
	out.Extended, err = rt.Images.ExportExtended(ctx, app.Image.ID, ext, dest, image.ExtendOptions{Format: o.Format, Name: o.Name, Overwrite: o.Overwrite})
	if err != nil {
		return out, fmt.Errorf("export pod %s app %s: %w", e.UUID, app.Name, err)
	}
	return out, nil
}

// exportedApp is the app named name, or the pod's only app.
func exportedApp(m *pod.Manifest, name string) (*pod.App, error) {
	if name != "" {
		a, ok := m.App(name)
		if !ok {
			return nil, fmt.Errorf("pod %s: no app named %q", m.UUID, name)
		}
		return a, nil
	}
	if len(m.Apps) != 1 {
		return nil, fmt.Errorf("pod %s has %d apps: say which to export", m.UUID, len(m.Apps))
	}
	return &m.Apps[0], nil
}
