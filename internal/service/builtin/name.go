package builtin

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadName is wrapped by the errors of names that are not unit names.
var ErrBadName = errors.New("invalid unit name")

// unitTypes are the suffixes systemd knows. The builtin manager runs
// services; other names are valid as targets of [Install] and
// dependencies.
var unitTypes = []string{"service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"}

// validNameChars is systemd's VALID_CHARS for unit names.
func validNameChar(c byte, at bool) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		strings.IndexByte(":-_.\\", c) >= 0 || (at && c == '@')
}

// checkName accepts what systemd's unit_name_is_valid accepts: PREFIX.TYPE,
// PREFIX@.TYPE (a template) or PREFIX@INSTANCE.TYPE, at most 255 bytes of
// letters, digits and ":-_.\", the instance '@' too. Such a name has no
// '/' and is neither "." nor "..", so it is safe as a file and cgroup
// name.
func checkName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrBadName, name, why) }
	if name == "" || len(name) > 255 {
		return bad("empty or longer than 255 bytes")
	}
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return bad("no type suffix")
	}
	typ := name[dot+1:]
	known := false
	for _, t := range unitTypes {
		known = known || t == typ
	}
	if !known {
		return bad("unknown unit type " + typ)
	}
	stem := name[:dot]
	prefix, instance, templ := strings.Cut(stem, "@")
	if prefix == "" {
		return bad("empty prefix")
	}
	for i := 0; i < len(prefix); i++ {
		if !validNameChar(prefix[i], false) {
			return bad("invalid character")
		}
	}
	if templ {
		for i := 0; i < len(instance); i++ {
			if !validNameChar(instance[i], true) {
				return bad("invalid character")
			}
		}
	}
	return nil
}

// isTemplate reports whether name is a template, web@.service.
func isTemplate(name string) bool {
	dot := strings.LastIndexByte(name, '.')
	return dot > 0 && strings.HasSuffix(name[:dot], "@") && strings.Count(name[:dot], "@") == 1
}

// templateOf is the template of an instance: web@.service for
// web@1.service.
func templateOf(name string) (string, bool) {
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return "", false
	}
	prefix, instance, ok := strings.Cut(name[:dot], "@")
	if !ok || instance == "" {
		return "", false
	}
	return prefix + "@" + name[dot:], true
}
