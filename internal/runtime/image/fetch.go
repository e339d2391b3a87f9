package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// FetchOptions are the options of Fetch.
type FetchOptions struct {
	ImportOptions
	// Platform is the image chosen in a multi-arch index, "os/arch[/variant]";
	// "" means linux/<GOARCH>.
	Platform string
	// Insecure lets the registry be reached over plain HTTP.
	Insecure bool
}

// Fetch fetches an image into the store. ref is one of
//
//	docker://REGISTRY/NAME[:TAG|@DIGEST]   from a registry
//	REGISTRY/NAME[:TAG|@DIGEST]            the same
//	oci:PATH[:TAG]                         an OCI image layout, directory or tar
//	docker-archive:PATH[:NAME]             a docker-archive tar
//
// Registry credentials come from Keychain. Layers are downloaded four at a
// time, and only those the store does not have.
func (s *Store) Fetch(ctx context.Context, ref string, opt FetchOptions) (*Image, error) {
	plat := defaultPlatform()
	if opt.Platform != "" {
		p, err := v1.ParsePlatform(opt.Platform)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: platform %q: %w", ref, opt.Platform, err)
		}
		plat = *p
	}
	src, err := parseFetchRef(ref, opt.Insecure)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", ref, err)
	}
	switch src.kind {
	case "oci":
		return s.importPath(ctx, "fetch", src.path, src.tag, plat, opt.ImportOptions)
	case "docker-archive":
		return s.importPath(ctx, "fetch", src.path, src.tag, plat, opt.ImportOptions)
	}
	return s.fetchRegistry(ctx, ref, src.ref, plat, opt.ImportOptions)
}

// fetchRef is a parsed Fetch reference.
type fetchRef struct {
	kind      string // "registry", "oci", "docker-archive"
	path, tag string
	ref       name.Reference
}

func parseFetchRef(s string, insecure bool) (fetchRef, error) {
	if rest, ok := strings.CutPrefix(s, "oci:"); ok {
		path, tag := layoutTag(rest)
		if path == "" {
			return fetchRef{}, fmt.Errorf("%w: oci: needs a path", ErrInvalid)
		}
		return fetchRef{kind: "oci", path: path, tag: tag}, nil
	}
	if rest, ok := strings.CutPrefix(s, "docker-archive:"); ok {
		path, sel := archiveTag(rest)
		if path == "" {
			return fetchRef{}, fmt.Errorf("%w: docker-archive: needs a path", ErrInvalid)
		}
		return fetchRef{kind: "docker-archive", path: path, tag: sel}, nil
	}
	s = strings.TrimPrefix(s, "docker://")
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(s, opts...)
	if err != nil {
		return fetchRef{}, err
	}
	return fetchRef{kind: "registry", ref: r}, nil
}

// layoutTag splits "PATH[:TAG]". The tag may hold colons itself
// ("oci:/l:example.com/web:1.0"), so PATH is the shortest prefix before a
// colon that exists; when none does, the tag is what follows the last colon.
func layoutTag(s string) (path, tag string) {
	if p, t, ok := splitExisting(s); ok {
		return p, t
	}
	i := strings.LastIndex(s, ":")
	if i < 0 || strings.Contains(s[i+1:], "/") || s[i+1:] == "" {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// splitExisting splits s at the first colon before which s names an existing
// file, or not at all when s exists.
func splitExisting(s string) (path, rest string, ok bool) {
	if _, err := os.Stat(s); err == nil {
		return s, "", true
	}
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			continue
		}
		if _, err := os.Stat(s[:i]); err == nil {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// fetchRegistry fetches an image from a registry. The manifest is verified
// before anything else is downloaded.
func (s *Store) fetchRegistry(ctx context.Context, refStr string, ref name.Reference, plat v1.Platform, opt ImportOptions) (*Image, error) {
	what := "fetch " + refStr
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(Keychain()), remote.WithPlatform(plat)}
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	img, err := registryImage(desc, plat, what)
	if err != nil {
		return nil, err
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var found []string
	if t, ok := ref.(name.Tag); ok {
		if n, err := canonicalName(t.Name()); err == nil {
			found = append(found, n)
		}
	}
	names, err := imageNames(opt, found)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := verify(opt, names, refStr, bytesOpener(manifest), ""); err != nil {
		return nil, err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", what, err)
	}
	c, err := newCandidate(what, manifest, config)
	if err != nil {
		return nil, err
	}
	c.names = names
	c.jobs = 4
	c.openBlob = func(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, err
		}
		return l.Compressed()
	}
	return s.store(ctx, c)
}

// registryImage is the image a registry descriptor names: itself, or the
// one for plat in a multi-arch index.
func registryImage(desc *remote.Descriptor, plat v1.Platform, what string) (v1.Image, error) {
	switch {
	case desc.MediaType.IsSchema1():
		return nil, fmt.Errorf("%s: %w: docker schema 1 manifests are not supported", what, ErrInvalid)
	case !desc.MediaType.IsIndex():
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return img, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	child, err := pickPlatform(im.Manifests, plat, what)
	if err != nil {
		return nil, err
	}
	img, err := idx.Image(child.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return img, nil
}
