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

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations that name an image in an OCI layout's index.json.
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerName = "io.containerd.image.name"
)

// ociSource is an OCI image layout, as a directory or inside a tar.
type ociSource interface {
	what() string     // the path, for messages
	baseName() string // to name images whose ref.name is only a tag
	index() (*v1.IndexManifest, error)
	blob(h v1.Hash) (io.ReadCloser, error)
	// signedFile is the archive file that a signature covers, when it is
	// not the manifest (an OCI layout tar); PATH.asc is its signature.
	signedFile() (path string, ok bool)
}

// layoutDir is an OCI image layout directory, read with ggcr's layout.
type layoutDir struct {
	dir string
	p   layout.Path
}

func openLayoutDir(verb, dir string) (*layoutDir, error) {
	p, err := layout.FromPath(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s %s: %w: a directory without index.json (want an OCI image layout)", verb, dir, ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", verb, dir, err)
	}
	return &layoutDir{dir: dir, p: p}, nil
}

func (l *layoutDir) what() string     { return l.dir }
func (l *layoutDir) baseName() string { return baseName(l.dir) }

func (l *layoutDir) index() (*v1.IndexManifest, error) {
	f, err := os.Open(filepath.Join(l.dir, "index.json"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readAllLimit(f, maxManifestSize, "index.json")
	if err != nil {
		return nil, err
	}
	return v1.ParseIndexManifest(bytes.NewReader(b))
}

func (l *layoutDir) blob(h v1.Hash) (io.ReadCloser, error) {
	if err := checkDigest(h); err != nil {
		return nil, err
	}
	return l.p.Blob(h)
}

func (l *layoutDir) signedFile() (string, bool) { return "", false }

// importLayout imports the image of an OCI layout: the one tagged tag, or
// the only one, for platform plat when it is a multi-arch index.
func (s *Store) importLayout(ctx context.Context, src ociSource, verb, tag string, plat v1.Platform, opt ImportOptions) (*Image, error) {
	ref := src.what()
	if tag != "" {
		ref += ":" + tag
	}
	what := verb + " " + ref
	top, err := src.index()
	if err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", what, err)
	}
	sel := tag
	if sel == "" && len(top.Manifests) > 1 && opt.Name != "" {
		sel = opt.Name
	}
	desc, err := pickTop(top, sel, plat, what)
	if err != nil {
		return nil, err
	}
	manifest, err := resolveManifest(src, desc, plat, what, 0)
	if err != nil {
		return nil, err
	}
	c, err := readCandidate(src, what, manifest)
	if err != nil {
		return nil, err
	}
	c.names, err = imageNames(opt, namesFromAnnotations(desc.Annotations, src.baseName()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	c.openBlob = func(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) { return src.blob(d.Digest) }
	signed, defaultSig := bytesOpener(manifest), ""
	if path, ok := src.signedFile(); ok {
		signed, defaultSig = fileOpener(path), path+".asc"
	} else if d, ok := src.(*layoutDir); ok {
		defaultSig = filepath.Join(d.dir, "blobs", "sha256", sha256Of(manifest).Hex+".asc")
	}
	if err := verify(opt, c.names, ref, signed, defaultSig); err != nil {
		return nil, err
	}
	return s.store(ctx, c)
}

// readCandidate reads the config of a manifest from an OCI source.
func readCandidate(src ociSource, what string, manifest []byte) (*candidate, error) {
	m, err := parseManifest(manifest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	config, err := readVerified(src, m.Config, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", what, err)
	}
	return newCandidate(what, manifest, config)
}

// pickTop chooses the descriptor of index.json to import.
func pickTop(top *v1.IndexManifest, tag string, plat v1.Platform, what string) (v1.Descriptor, error) {
	ds := top.Manifests
	if tag != "" {
		ds = nil
		for _, d := range top.Manifests {
			if refNameMatches(d.Annotations, tag) {
				ds = append(ds, d)
			}
		}
		if len(ds) == 0 {
			return v1.Descriptor{}, fmt.Errorf("%s: %w: no image tagged %q (the layout has: %s)", what, ErrNotFound, tag, refNames(top.Manifests))
		}
	}
	switch {
	case len(ds) == 0:
		return v1.Descriptor{}, fmt.Errorf("%s: %w: index.json lists no image", what, ErrInvalid)
	case len(ds) == 1:
		return ds[0], nil
	case allHavePlatforms(ds):
		return pickPlatform(ds, plat, what)
	}
	return v1.Descriptor{}, fmt.Errorf("%s: the layout holds %d images (%s); name one with oci:PATH:TAG", what, len(ds), refNames(ds))
}

func allHavePlatforms(ds []v1.Descriptor) bool {
	for _, d := range ds {
		if d.Platform == nil {
			return false
		}
	}
	return true
}

// resolveManifest reads the image manifest desc points to, descending
// through indexes by platform.
func resolveManifest(src ociSource, desc v1.Descriptor, plat v1.Platform, what string, depth int) ([]byte, error) {
	if depth > maxIndexDepth {
		return nil, fmt.Errorf("%s: %w: indexes nested deeper than %d", what, ErrInvalid, maxIndexDepth)
	}
	b, err := readVerified(src, desc, maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("%s: manifest %s: %w", what, desc.Digest, err)
	}
	if !isIndex(desc.MediaType, b) {
		return b, nil
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: index %s: %w", what, desc.Digest, err)
	}
	child, err := pickPlatform(idx.Manifests, plat, what)
	if err != nil {
		return nil, err
	}
	return resolveManifest(src, child, plat, what, depth+1)
}

// isIndex tells an index from an image manifest, by the descriptor's media
// type or, when it has none, by the document's.
func isIndex(mt types.MediaType, b []byte) bool {
	if mt.IsIndex() {
		return true
	}
	if mt != "" {
		return false
	}
	p, err := probeManifest(b)
	return err == nil && p.isIndex()
}

// pickPlatform chooses the image for plat in a multi-arch index.
func pickPlatform(ds []v1.Descriptor, plat v1.Platform, what string) (v1.Descriptor, error) {
	var have []string
	for _, d := range ds {
		if d.Platform == nil {
			continue
		}
		if d.Platform.Satisfies(plat) {
			return d, nil
		}
		have = append(have, d.Platform.String())
	}
	if len(have) == 0 {
		have = []string{"no platforms"}
	}
	return v1.Descriptor{}, fmt.Errorf("%s: %w: the index has no image for %s (it has: %s)", what, ErrNotFound, plat.String(), strings.Join(have, ", "))
}

// readVerified reads a small blob of an OCI source and checks its digest and
// size against its descriptor.
func readVerified(src ociSource, d v1.Descriptor, limit int64) ([]byte, error) {
	if err := checkDigest(d.Digest); err != nil {
		return nil, err
	}
	rc, err := src.blob(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	b, err := readAllLimit(rc, limit, d.Digest.String())
	if err != nil {
		return nil, err
	}
	if got := sha256Of(b); got != d.Digest {
		return nil, fmt.Errorf("blob %s: content has digest %s (corrupt or truncated)", d.Digest, got)
	}
	if d.Size != 0 && int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s: size %d, want %d", d.Digest, len(b), d.Size)
	}
	return b, nil
}

// refNameMatches tells whether an index.json entry is the image tagged tag:
// its ref.name is the tag, or a full name with that tag or equal to it.
func refNameMatches(ann map[string]string, tag string) bool {
	for _, key := range []string{annotationRefName, annotationContainerName} {
		v := ann[key]
		if v == "" {
			continue
		}
		if v == tag {
			return true
		}
		cv, err1 := canonicalName(v)
		ct, err2 := canonicalName(tag)
		if err1 == nil && err2 == nil && cv == ct {
			return true
		}
		if err1 == nil && strings.HasSuffix(cv, ":"+tag) && isFullName(v) {
			return true
		}
	}
	return false
}

func refNames(ds []v1.Descriptor) string {
	var out []string
	for _, d := range ds {
		n := d.Annotations[annotationRefName]
		if n == "" {
			n = d.Annotations[annotationContainerName]
		}
		if n == "" {
			n = d.Digest.String()
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}

// isFullName tells a ref.name that names an image ("example.com/web:1.0",
// "web:1.0") from one that is only a tag ("1.0").
func isFullName(s string) bool { return strings.ContainsAny(s, "/:") }

// namesFromAnnotations names an image of an OCI layout (see the package doc).
func namesFromAnnotations(ann map[string]string, base string) []string {
	if n, err := canonicalName(ann[annotationContainerName]); err == nil {
		return []string{n}
	}
	rn := ann[annotationRefName]
	if rn == "" {
		return nil
	}
	if isFullName(rn) {
		if n, err := canonicalName(rn); err == nil {
			return []string{n}
		}
		return nil
	}
	if n, err := canonicalName("localhost/" + sanitizeRepo(base) + ":" + rn); err == nil {
		return []string{n}
	}
	return nil
}

// sanitizeRepo makes a repository name of a file name.
func sanitizeRepo(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "._-")
}
