package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tarIndex is what a first pass over an archive learns: which entry holds
// each file, and the small files that describe the image. Later passes seek
// past the entries they do not need, so a pass costs little more than
// reading the headers.
type tarIndex struct {
	path    string
	entries map[string]int    // cleaned name → ordinal of its last regular entry
	links   map[string]string // cleaned name → cleaned name of its target
	small   map[string][]byte // manifest.json, index.json, oci-layout
}

var smallFiles = map[string]bool{"manifest.json": true, "index.json": true, "oci-layout": true}

func indexTar(ctx context.Context, file string) (*tarIndex, error) {
	t := &tarIndex{path: file, entries: map[string]int{}, links: map[string]string{}, small: map[string][]byte{}}
	err := t.scan(ctx, func(ord int, hdr *tar.Header, r io.Reader) error {
		n := cleanName(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg:
			t.entries[n] = ord
			delete(t.links, n)
			if smallFiles[n] {
				b, err := readAllLimit(r, maxManifestSize, n)
				if err != nil {
					return err
				}
				t.small[n] = b
			}
		case tar.TypeSymlink:
			// A symlink's target is relative to its directory.
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(n), target)
			}
			t.links[n] = cleanName(target)
			delete(t.entries, n)
		case tar.TypeLink:
			t.links[n] = cleanName(hdr.Linkname)
			delete(t.entries, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// cleanName is the name of a tar entry as the archive's JSON refers to it:
// "./manifest.json" and "/manifest.json" are "manifest.json".
func cleanName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

// scan calls fn for each entry of the archive, in order, with the entry's
// content; fn need not read it all.
func (t *tarIndex) scan(ctx context.Context, fn func(ord int, hdr *tar.Header, r io.Reader) error) error {
	f, err := os.Open(t.path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f) // *os.File: the reader seeks over unread content
	for ord := 0; ; ord++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			if ord == 0 {
				return errors.New("empty archive")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a tar archive, or a truncated one: %w", err)
		}
		if err := fn(ord, hdr, tr); err != nil {
			return err
		}
	}
}

// lookup returns the ordinal of the regular entry that name is, following
// links, also those met on the way ("link/layer.tar" with link -> abc).
func (t *tarIndex) lookup(name string) (int, error) {
	n := cleanName(name)
	for range 32 {
		if ord, ok := t.entries[n]; ok {
			return ord, nil
		}
		next, ok := t.followLink(n)
		if !ok {
			return 0, fmt.Errorf("%s: %w in the archive", name, ErrNotFound)
		}
		n = next
	}
	return 0, fmt.Errorf("%s: too many levels of links", name)
}

// followLink replaces the first link among n's leading components by its
// target.
func (t *tarIndex) followLink(n string) (string, bool) {
	parts := strings.Split(n, "/")
	for i := 1; i <= len(parts); i++ {
		if target, ok := t.links[strings.Join(parts[:i], "/")]; ok {
			return cleanName(path.Join(append([]string{target}, parts[i:]...)...)), true
		}
	}
	return "", false
}

// open returns the content of the file name in the archive.
func (t *tarIndex) open(ctx context.Context, name string) (io.ReadCloser, error) {
	want, err := t.lookup(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(t.path)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(f)
	for ord := 0; ; ord++ {
		if err := ctx.Err(); err != nil {
			f.Close()
			return nil, err
		}
		if _, err := tr.Next(); err != nil {
			f.Close()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the archive changed since indexTar
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if ord == want {
			return readCloser{tr, f}, nil
		}
	}
}

func (t *tarIndex) readSmall(ctx context.Context, name string, limit int64) ([]byte, error) {
	rc, err := t.open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readAllLimit(rc, limit, name)
}

type readCloser struct {
	io.Reader
	io.Closer
}

// importArchive imports a docker-archive, or an OCI image layout as a tar.
func (s *Store) importArchive(ctx context.Context, verb, file, tag string, plat v1.Platform, opt ImportOptions) (*Image, error) {
	what := verb + " " + file
	t, err := indexTar(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, ErrInvalid, err)
	}
	switch {
	case t.small["manifest.json"] != nil:
		return s.importDockerArchive(ctx, t, what, tag, opt)
	case t.small["index.json"] != nil:
		return s.importLayout(ctx, &layoutTar{t: t, ctx: ctx}, verb, tag, plat, opt)
	}
	return nil, fmt.Errorf("%s: %w: no manifest.json (docker-archive) nor index.json (OCI layout) in the archive", what, ErrInvalid)
}

// layoutTar is an OCI image layout inside a tar.
type layoutTar struct {
	t   *tarIndex
	ctx context.Context
}

func (l *layoutTar) what() string     { return l.t.path }
func (l *layoutTar) baseName() string { return baseName(l.t.path) }

func (l *layoutTar) index() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(l.t.small["index.json"]))
}

func (l *layoutTar) blob(h v1.Hash) (io.ReadCloser, error) {
	if err := checkDigest(h); err != nil {
		return nil, err
	}
	return l.t.open(l.ctx, "blobs/"+h.Algorithm+"/"+h.Hex)
}

func (l *layoutTar) signedFile() (string, bool) { return l.t.path, true }

// importDockerArchive imports the image of a docker-archive (`docker save`,
// ggcr's tarball.Write). Its layers are stored as they are in the archive,
// compressed or not, and described by a manifest made here, always the same
// for the same archive content, whose digest is the image ID.
func (s *Store) importDockerArchive(ctx context.Context, t *tarIndex, what, selector string, opt ImportOptions) (*Image, error) {
	var m tarball.Manifest
	if err := json.Unmarshal(t.small["manifest.json"], &m); err != nil {
		return nil, fmt.Errorf("%s: %w: manifest.json: %v", what, ErrInvalid, err)
	}
	if selector == "" {
		selector = opt.Name
	}
	desc, err := pickArchiveImage(m, selector, what)
	if err != nil {
		return nil, err
	}
	names, err := imageNames(opt, repoTagNames(desc.RepoTags))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := verify(opt, names, t.path, fileOpener(t.path), t.path+".asc"); err != nil {
		return nil, err
	}
	config, err := t.readSmall(ctx, desc.Config, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: config: %w", what, ErrInvalid, err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(config))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: config %s: %v", what, ErrInvalid, desc.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(desc.Layers) {
		return nil, fmt.Errorf("%s: %w: config lists %d diff_ids, manifest.json %d layers", what, ErrInvalid, len(cfg.RootFS.DiffIDs), len(desc.Layers))
	}
	lk, err := s.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	layers, err := s.archiveLayers(ctx, t, desc.Layers, cfg.RootFS.DiffIDs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	manifest, err := json.Marshal(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(config)), Digest: sha256Of(config)},
		Layers:        layers,
	})
	if err != nil {
		return nil, err
	}
	c, err := newCandidate(what, manifest, config)
	if err != nil {
		return nil, err
	}
	if err := s.putBlob(ctx, bytes.NewReader(config), c.m.Config.Digest, int64(len(config))); err != nil {
		return nil, fmt.Errorf("%s: config: %w", what, err)
	}
	id := sha256Of(manifest)
	if err := s.putBlob(ctx, bytes.NewReader(manifest), id, int64(len(manifest))); err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", what, err)
	}
	return s.commit(id, names)
}

// pickArchiveImage chooses the image of a docker-archive: the only one, or
// the one that has selector among its RepoTags.
func pickArchiveImage(m tarball.Manifest, selector, what string) (*tarball.Descriptor, error) {
	if len(m) == 0 {
		return nil, fmt.Errorf("%s: %w: manifest.json lists no image", what, ErrInvalid)
	}
	if len(m) == 1 {
		return &m[0], nil
	}
	var all []string
	for i := range m {
		all = append(all, m[i].RepoTags...)
		if selector == "" {
			continue
		}
		for _, n := range repoTagNames(m[i].RepoTags) {
			if c, err := canonicalName(selector); err == nil && c == n {
				return &m[i], nil
			}
		}
	}
	if selector != "" {
		return nil, fmt.Errorf("%s: %w: no image named %q in the archive (it has: %s)", what, ErrNotFound, selector, strings.Join(all, ", "))
	}
	return nil, fmt.Errorf("%s: the archive holds %d images (%s); say which with a name", what, len(m), strings.Join(all, ", "))
}

// repoTagNames are the valid names among a docker-archive's RepoTags.
func repoTagNames(tags []string) []string {
	var out []string
	for _, tag := range tags {
		if n, err := canonicalName(tag); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// archiveLayers stores the layers of a docker-archive in one pass over it.
func (s *Store) archiveLayers(ctx context.Context, t *tarIndex, paths []string, diffIDs []v1.Hash) ([]v1.Descriptor, error) {
	byEntry := map[int][]int{} // entry ordinal → indexes of the layers it is
	for i, p := range paths {
		if err := checkDigest(diffIDs[i]); err != nil {
			return nil, fmt.Errorf("%w: diff_id %d: %v", ErrInvalid, i, err)
		}
		ord, err := t.lookup(p)
		if err != nil {
			return nil, fmt.Errorf("%w: layer %d: %w", ErrInvalid, i, err)
		}
		byEntry[ord] = append(byEntry[ord], i)
	}
	out := make([]v1.Descriptor, len(paths))
	err := t.scan(ctx, func(ord int, hdr *tar.Header, r io.Reader) error {
		idx, ok := byEntry[ord]
		if !ok {
			return nil
		}
		delete(byEntry, ord)
		d, err := s.archiveLayer(ctx, r, hdr, diffIDs[idx[0]])
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", idx[0], hdr.Name, err)
		}
		for _, i := range idx {
			if d.MediaType == types.OCIUncompressedLayer && d.Digest != diffIDs[i] {
				return fmt.Errorf("%w: layer %d (%s): content has digest %s, config diff_id %s", ErrInvalid, i, hdr.Name, d.Digest, diffIDs[i])
			}
			out[i] = d
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(byEntry) > 0 {
		return nil, fmt.Errorf("%w: the archive changed while it was read", ErrInvalid)
	}
	return out, nil
}

// archiveLayer stores one layer file of a docker-archive as it is, and
// describes it by the compression its first bytes show. An uncompressed
// layer whose blob (its diff_id) is in the store already is not copied.
func (s *Store) archiveLayer(ctx context.Context, r io.Reader, hdr *tar.Header, diffID v1.Hash) (v1.Descriptor, error) {
	br := bufio.NewReaderSize(r, copyBufSize)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return v1.Descriptor{}, err
	}
	mt := compressionOf(magic).mediaType()
	if mt == types.OCIUncompressedLayer {
		if fi, err := os.Stat(s.blobPath(diffID)); err == nil {
			return v1.Descriptor{MediaType: mt, Digest: diffID, Size: fi.Size()}, nil
		}
	}
	h, n, err := s.putBlobAny(ctx, br)
	if err != nil {
		return v1.Descriptor{}, err
	}
	// Archives with an OCI layout inside name blobs by their digest.
	if want, ok := strings.CutPrefix(cleanName(hdr.Name), "blobs/sha256/"); ok && want != h.Hex {
		return v1.Descriptor{}, fmt.Errorf("%w: content has digest %s, its name says sha256:%s", ErrInvalid, h, want)
	}
	return v1.Descriptor{MediaType: mt, Digest: h, Size: n}, nil
}

// archiveTag parses "PATH[:NAME]" of Fetch's docker-archive: form: the name
// picks one image of an archive that holds several.
func archiveTag(ref string) (file, selector string) {
	if p, sel, ok := splitExisting(ref); ok {
		return p, sel
	}
	return ref, ""
}
