package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RefNameAnnotation is the OCI annotation that names an image in a layout's
// index.json: the name users import it by.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// DefaultPath is the PATH of the images made here.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// File is one entry of a layer. The map key is its path in the image
// ("/bin/app" or "bin/app"); parent directories that are not listed are
// added with mode 0755, owned by root.
type File struct {
	// Data is a regular file's content.
	Data []byte
	// Mode holds the permission bits and os.ModeSetuid, os.ModeSetgid,
	// os.ModeSticky; zero means the default: 0644 for a file, 0755 for a
	// directory, 0777 for a symlink. (So a file of mode 0000 cannot be
	// asked for.)
	Mode os.FileMode
	// Link, if set, makes the entry a symlink to Link.
	Link string
	// Dir makes the entry a directory.
	Dir bool
	// UID and GID own the entry (default root).
	UID, GID int
}

// modTime is the time of every tar entry and of the image config, so that
// the same files always make the same digests.
func modTime() time.Time { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }

// Tar returns files as an uncompressed layer tar, in path order, with the
// missing parent directories. A whiteout is an ordinary entry named
// ".wh.NAME" (or ".wh..wh..opq" for an opaque directory).
func Tar(files map[string]File) ([]byte, error) {
	entries := make(map[string]File, len(files))
	for p, f := range files {
		clean, err := cleanPath(p)
		if err != nil {
			return nil, err
		}
		if f.Dir && (f.Link != "" || f.Data != nil) {
			return nil, fmt.Errorf("layer entry %q: a directory with data or a link target", p)
		}
		if f.Link != "" && f.Data != nil {
			return nil, fmt.Errorf("layer entry %q: a symlink with data", p)
		}
		if _, dup := entries[clean]; dup {
			return nil, fmt.Errorf("layer entry %q: given twice", clean)
		}
		entries[clean] = f
	}
	for p := range entries {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if f, ok := entries[dir]; ok {
				if !f.Dir {
					return nil, fmt.Errorf("layer entry %q: its parent %q is not a directory", p, dir)
				}
				continue
			}
			entries[dir] = File{Dir: true}
		}
	}
	names := make([]string, 0, len(entries))
	for p := range entries {
		names = append(names, p)
	}
	slices.Sort(names) // a parent sorts before its children

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range names {
		f := entries[p]
		hdr := &tar.Header{
			Name:    p,
			Mode:    tarMode(f),
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: modTime(),
			Format:  tar.FormatPAX,
		}
		switch {
		case f.Dir:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case f.Link != "":
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = f.Link
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(f.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer entry %q: %w", p, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, fmt.Errorf("layer entry %q: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

func cleanPath(p string) (string, error) {
	clean := path.Clean("/" + p)[1:]
	if clean == "" {
		return "", fmt.Errorf("layer entry %q: not a path below /", p)
	}
	for _, c := range strings.Split(strings.Trim(p, "/"), "/") {
		if c == ".." {
			return "", fmt.Errorf("layer entry %q: \"..\" in path", p)
		}
	}
	return clean, nil
}

func tarMode(f File) int64 {
	perm := f.Mode.Perm()
	if perm == 0 {
		switch {
		case f.Dir:
			perm = 0o755
		case f.Link != "":
			perm = 0o777
		default:
			perm = 0o644
		}
	}
	m := int64(perm)
	if f.Mode&os.ModeSetuid != 0 {
		m |= 0o4000
	}
	if f.Mode&os.ModeSetgid != 0 {
		m |= 0o2000
	}
	if f.Mode&os.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// Layer makes an OCI layer (gzip, deterministic) of files.
func Layer(files map[string]File) (v1.Layer, error) {
	raw, err := Tar(files)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress layer: %w", err)
	}
	compressed := gz.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("make layer: %w", err)
	}
	return layer, nil
}

// NewImage makes an OCI image for this machine's platform (linux and
// runtime.GOARCH) whose layers are the given file sets, bottom first, and
// whose config is cfg.
func NewImage(cfg v1.Config, layers ...map[string]File) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for i, files := range layers {
		l, err := Layer(files)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Created = v1.Time{Time: modTime()}
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return img, nil
}

// BaseFiles are the files every program image made here holds besides the
// program: /etc/passwd and /etc/group with root and a user and group "app"
// (uid and gid 1000), /root, /home/app (owned by app) and an empty /tmp of
// mode 1777.
func BaseFiles() map[string]File {
	return map[string]File{
		"/etc": {Dir: true},
		"/etc/passwd": {Data: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
			"app:x:1000:1000:app:/home/app:/sbin/nologin\n")},
		"/etc/group": {Data: []byte("root:x:0:\napp:x:1000:\n")},
		"/root":      {Dir: true, Mode: 0o700},
		"/home":      {Dir: true},
		"/home/app":  {Dir: true, UID: 1000, GID: 1000},
		"/tmp":       {Dir: true, Mode: os.ModeSticky | 0o777},
	}
}

// ProgramImage makes the one-layer image of a static binary: BaseFiles plus
// the binary at /bin/<base name of binary>. cfg is the image config; an
// empty Entrypoint becomes ["/bin/<name>"] and an empty Env holds only
// DefaultPath.
func ProgramImage(binary string, cfg v1.Config) (v1.Image, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("program image: %w", err)
	}
	target := "/bin/" + filepath.Base(binary)
	files := BaseFiles()
	files["/bin"] = File{Dir: true}
	files[target] = File{Data: data, Mode: 0o755}
	if len(cfg.Entrypoint) == 0 {
		cfg.Entrypoint = []string{target}
	}
	if len(cfg.Env) == 0 {
		cfg.Env = []string{DefaultPath}
	}
	return NewImage(cfg, files)
}

// SaveLayout writes img into a new OCI image layout at dir (created if
// needed; an index.json already there is replaced), its index entry
// annotated with RefNameAnnotation = ref unless ref is empty.
func SaveLayout(dir string, img v1.Image, ref string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	var opts []layout.Option
	if ref != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{RefNameAnnotation: ref}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	return nil
}

// SaveDockerArchive writes img to path as a docker-archive tar, the format
// of `docker save`, tagged ref (":latest" if ref has no tag).
func SaveDockerArchive(path string, img v1.Image, ref string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("docker archive %s: tag %q: %w", path, ref, err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return fmt.Errorf("docker archive %s: %w", path, err)
	}
	return nil
}
