package trust

import (
	"fmt"
	"strings"
)

// maxPrefixLen bounds a prefix (and the repository part of an image name
// that is matched against prefixes); each component is also bounded by the
// file-name limit of 255 bytes, since it becomes a directory.
const (
	maxPrefixLen    = 1024
	maxComponentLen = 255
)

// ValidatePrefix reports whether prefix may be trusted, with the rule it
// breaks. The prefix comes from a user and becomes a path under the store,
// so the rules are strict:
//
//   - "" is the root prefix: it covers every image;
//   - otherwise it is one or more components separated by single slashes,
//     with no leading or trailing slash and no empty component;
//   - each component starts with a letter or digit and holds only letters,
//     digits, '.', '_' and '-' (so "." and ".." are refused), at most 255
//     bytes; the whole prefix is at most 1024 bytes;
//   - the first component is a host (or a plain name) and is lowercase; it
//     may end in ":PORT" (digits), as in "localhost:5000/app".
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkPrefix(prefix); err != nil {
		return fmt.Errorf("%w %q: %s", ErrInvalidPrefix, prefix, err)
	}
	return nil
}

// checkPrefix returns the rule a non-empty prefix breaks, without the
// prefix itself, for ValidatePrefix to wrap.
func checkPrefix(prefix string) error {
	if len(prefix) > maxPrefixLen {
		return fmt.Errorf("longer than %d bytes", maxPrefixLen)
	}
	if strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("must not start with a slash")
	}
	if strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("must not end with a slash")
	}
	for i, c := range strings.Split(prefix, "/") {
		if err := checkComponent(c, i == 0); err != nil {
			return err
		}
	}
	return nil
}

func checkComponent(c string, host bool) error {
	if c == "" {
		return fmt.Errorf("empty component (two slashes in a row)")
	}
	if len(c) > maxComponentLen {
		return fmt.Errorf("component longer than %d bytes", maxComponentLen)
	}
	name := c
	if host {
		if h, port, ok := strings.Cut(c, ":"); ok {
			if port == "" || strings.Trim(port, "0123456789") != "" {
				return fmt.Errorf("component %q: a port after ':' must be digits", c)
			}
			name = h
		}
		if name != strings.ToLower(name) {
			return fmt.Errorf("component %q: the host part must be lowercase", c)
		}
	}
	if name == "" || !isAlnum(name[0]) {
		return fmt.Errorf("component %q: must start with a letter or digit", c)
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !isAlnum(b) && b != '.' && b != '_' && b != '-' {
			return fmt.Errorf("component %q: character %q not allowed (letters, digits, '.', '_', '-' only)", c, b)
		}
	}
	return nil
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// repository returns the repository part of an image name: the name
// without a digest ("@sha256:...") or tag (":1.0" in the last component),
// with its first component lowercased (hosts are case-insensitive and
// prefixes hold them lowercase). It refuses names whose path has empty,
// "." or ".." components, since a prefix match on such a name would not
// mean what it seems to.
func repository(imageName string) (string, error) {
	if imageName == "" {
		return "", fmt.Errorf("%w: empty image name", ErrInvalidImageName)
	}
	repo, _, _ := strings.Cut(imageName, "@")
	lastSlash := strings.LastIndex(repo, "/")
	if i := strings.LastIndex(repo, ":"); i > lastSlash {
		repo = repo[:i]
	}
	comps := strings.Split(repo, "/")
	for _, c := range comps {
		if c == "" || c == "." || c == ".." {
			return "", fmt.Errorf("%w %q: empty, \".\" or \"..\" component in its path", ErrInvalidImageName, imageName)
		}
	}
	comps[0] = strings.ToLower(comps[0])
	return strings.Join(comps, "/"), nil
}

// candidatePrefixes returns the prefixes that cover repo, most specific
// first: "a/b/c" gives "a/b/c", "a/b", "a". Those that could never be
// trusted (they break the prefix rules) are left out, so that an image name
// can never name a path outside the store.
func candidatePrefixes(repo string) []string {
	var out []string
	for p := repo; p != ""; {
		if checkPrefix(p) == nil {
			out = append(out, p)
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return out
}

// Covers reports whether prefix covers imageName: the root prefix ""
// covers every name; otherwise prefix must equal the name's repository
// (the name without tag or digest) or a leading run of its path
// components. "example.com/app" covers "example.com/app:1.0" and
// "example.com/app/web:1.0" but not "example.com/application".
//
// No prefix covers a name Verify refuses (see ErrInvalidImageName).
func Covers(prefix, imageName string) bool {
	repo, err := repository(imageName)
	if err != nil {
		return false
	}
	if prefix == "" {
		return true
	}
	for _, p := range candidatePrefixes(repo) {
		if p == prefix {
			return true
		}
	}
	return false
}
