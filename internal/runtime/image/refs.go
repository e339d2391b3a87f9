package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/fsutil"
)

// refsFile is refs.json: the images of the store. An image exists for List
// and Get exactly when it is listed here.
type refsFile struct {
	Images []refEntry `json:"images"`
}

type refEntry struct {
	ID       string    `json:"id"`
	Names    []string  `json:"names,omitempty"`
	Imported time.Time `json:"imported"`
}

const minPrefix = 12 // hex digits of an ID prefix, as Docker shows them

// loadRefs reads refs.json. No lock is needed: it is replaced atomically.
func (s *Store) loadRefs() (*refsFile, error) {
	b, err := os.ReadFile(s.path("refs.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &refsFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	refs, err := parseRefs(b)
	if err != nil {
		return nil, fmt.Errorf("image store: %s: %w", s.path("refs.json"), err)
	}
	return refs, nil
}

// parseRefs parses and checks refs.json: IDs are sha256 digests, names are
// canonical and each belongs to one image.
func parseRefs(b []byte) (*refsFile, error) {
	var refs refsFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&refs); err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	names := map[string]bool{}
	for _, e := range refs.Images {
		if !isID(e.ID) {
			return nil, fmt.Errorf("image id %q: want sha256:<64 hex digits>", e.ID)
		}
		if ids[e.ID] {
			return nil, fmt.Errorf("image %s listed twice", e.ID)
		}
		ids[e.ID] = true
		for _, n := range e.Names {
			c, err := canonicalName(n)
			if err != nil {
				return nil, err
			}
			if c != n {
				return nil, fmt.Errorf("name %q: want its full form %q", n, c)
			}
			if names[n] {
				return nil, fmt.Errorf("name %q given to two images", n)
			}
			names[n] = true
		}
	}
	return &refs, nil
}

func isID(s string) bool {
	return strings.HasPrefix(s, "sha256:") && isHex(s[len("sha256:"):], 64)
}

// updateRefs runs change on refs.json under refs.lock and writes the result
// atomically: the one place where images appear, change names or disappear.
func (s *Store) updateRefs(change func(*refsFile) error) error {
	f, err := os.OpenFile(s.path("refs.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	defer f.Close() // releases the flock
	if err := flockRetry(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("image store: lock %s: %w", f.Name(), err)
	}
	refs, err := s.loadRefs()
	if err != nil {
		return err
	}
	if err := change(refs); err != nil {
		return err
	}
	refs.normalize()
	b, err := json.MarshalIndent(refs, "", "\t")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(s.path("refs.json"), append(b, '\n'), 0o644)
}

// normalize sorts refs so that refs.json changes only where it must.
func (r *refsFile) normalize() {
	for i := range r.Images {
		sort.Strings(r.Images[i].Names)
	}
	sort.Slice(r.Images, func(i, j int) bool { return r.Images[i].ID < r.Images[j].ID })
}

func (r *refsFile) find(id string) *refEntry {
	for i := range r.Images {
		if r.Images[i].ID == id {
			return &r.Images[i]
		}
	}
	return nil
}

// owner returns the image that has the canonical name n.
func (r *refsFile) owner(n string) *refEntry {
	for i := range r.Images {
		for _, have := range r.Images[i].Names {
			if have == n {
				return &r.Images[i]
			}
		}
	}
	return nil
}

// giveName moves the canonical name n to image e, from whichever image has it.
func (r *refsFile) giveName(e *refEntry, n string) {
	for i := range r.Images {
		r.Images[i].Names = without(r.Images[i].Names, n)
	}
	e.Names = append(e.Names, n)
}

func (r *refsFile) drop(id string) {
	out := r.Images[:0]
	for _, e := range r.Images {
		if e.ID != id {
			out = append(out, e)
		}
	}
	r.Images = out
}

func without(names []string, n string) []string {
	out := names[:0]
	for _, have := range names {
		if have != n {
			out = append(out, have)
		}
	}
	return out
}

// resolve finds the image ref names, and tells whether ref was a name (as
// opposed to an ID or an ID prefix). An exact name wins over an ID prefix, as
// "cafebabe1234" is both a valid name and a valid prefix.
func (r *refsFile) resolve(ref string) (*refEntry, bool, error) {
	if c, err := canonicalName(ref); err == nil {
		if e := r.owner(c); e != nil {
			return e, true, nil
		}
	}
	if _, dgst, ok := strings.Cut(ref, "@"); ok && isID(dgst) {
		ref = dgst // repository@sha256:<hex> is found by its digest
	}
	hex := strings.TrimPrefix(ref, "sha256:")
	if len(hex) < minPrefix || len(hex) > 64 || !isHex(hex, -1) {
		return nil, false, fmt.Errorf("image %q: %w", ref, ErrNotFound)
	}
	var found []*refEntry
	for i := range r.Images {
		if strings.HasPrefix(r.Images[i].ID, "sha256:"+hex) {
			found = append(found, &r.Images[i])
		}
	}
	switch len(found) {
	case 0:
		return nil, false, fmt.Errorf("image %q: %w", ref, ErrNotFound)
	case 1:
		return found[0], false, nil
	}
	ids := make([]string, len(found))
	for i, e := range found {
		ids[i] = e.ID
	}
	return nil, false, fmt.Errorf("image %q: %w: %s", ref, ErrAmbiguous, strings.Join(ids, ", "))
}

// canonicalName returns the full form of an image name as the store keeps
// it: registry/repository:tag, with Docker Hub's defaults spelled out
// ("web" is "docker.io/library/web:latest"). Digests are not names.
func canonicalName(s string) (string, error) {
	if strings.Contains(s, "@") {
		return "", fmt.Errorf("name %q: a name has a tag, not a digest", s)
	}
	if strings.TrimSpace(s) != s || s == "" {
		return "", fmt.Errorf("name %q: not an image name", s)
	}
	t, err := name.NewTag(s)
	if err != nil {
		return "", fmt.Errorf("name %q: %w", s, err)
	}
	repo := t.RepositoryStr()
	if strings.Contains(repo, "//") || strings.HasSuffix(repo, "/") {
		return "", fmt.Errorf("name %q: empty path component", s)
	}
	reg := t.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + repo + ":" + t.TagStr(), nil
}
