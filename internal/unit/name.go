package unit

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidName is wrapped by every error about a malformed unit name or
// instance.
var ErrInvalidName = errors.New("unit: invalid name")

// maxNameLen is systemd's UNIT_NAME_MAX (256) less the terminating NUL.
const maxNameLen = 255

// unitTypes are the unit types systemd knows (src/basic/unit-def.c), which
// are the only suffixes a unit name may have.
var unitTypes = []string{"service", "socket", "device", "mount", "automount", "swap", "target", "path", "timer", "slice", "scope"}

// Name is a unit name split into its parts, following systemd's
// src/basic/unit-name.c: "web@1.service" is Prefix "web", Instance "1",
// Type "service"; "web@.service" is the template of it.
type Name struct {
	// Prefix is everything before the first "@" (or before the type
	// suffix when there is no "@"), in escaped form.
	Prefix string
	// Instance is everything between the first "@" and the type suffix,
	// in escaped form; it may itself contain "@". Empty for plain units and
	// templates.
	Instance string
	// Type is the suffix after the last ".": service, socket, device,
	// mount, automount, swap, target, path, timer, slice or scope.
	Type string
	// Template is true for a template such as "web@.service".
	Template bool
}

// ParseName splits s into a Name after checking it the way systemd's
// unit_name_is_valid does: at most 255 bytes, a known type suffix, a
// non-empty prefix, and only ASCII letters, digits and ":-_.\@" before the
// suffix. Errors wrap ErrInvalidName and quote s.
func ParseName(s string) (Name, error) {
	fail := func(format string, args ...any) (Name, error) {
		return Name{}, fmt.Errorf("%w %q: %s", ErrInvalidName, s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return fail("empty")
	}
	if len(s) > maxNameLen {
		return fail("%d bytes long, systemd allows %d", len(s), maxNameLen)
	}
	dot := strings.LastIndexByte(s, '.')
	if dot < 0 {
		return fail("no type suffix such as .service")
	}
	typ := s[dot+1:]
	if !knownType(typ) {
		return fail("unknown unit type %q", typ)
	}
	body := s[:dot]
	for i := 0; i < len(body); i++ {
		if c := body[i]; c != '@' && !validNameChar(c) {
			return fail("character %q is not allowed (escape it with unit.Escape)", rune(c))
		}
	}
	at := strings.IndexByte(body, '@')
	switch {
	case body == "" || at == 0:
		return fail("empty prefix")
	case at < 0:
		return Name{Prefix: body, Type: typ}, nil
	case at == len(body)-1:
		return Name{Prefix: body[:at], Type: typ, Template: true}, nil
	default:
		return Name{Prefix: body[:at], Instance: body[at+1:], Type: typ}, nil
	}
}

// String returns the unit name, such as "web@1.service".
func (n Name) String() string {
	switch {
	case n.Template:
		return n.Prefix + "@." + n.Type
	case n.Instance != "":
		return n.Prefix + "@" + n.Instance + "." + n.Type
	default:
		return n.Prefix + "." + n.Type
	}
}

// IsInstance reports whether n names an instance of a template, such as
// "web@1.service".
func (n Name) IsInstance() bool { return n.Instance != "" }

// TemplateName returns the name of the template n is an instance of, or n
// itself for a template: "web@1.service" and "web@.service" both give
// "web@.service". It returns "" for a plain unit.
func (n Name) TemplateName() string {
	if !n.Template && n.Instance == "" {
		return ""
	}
	return n.Prefix + "@." + n.Type
}

// Instantiate returns the instance of template (or of the template of
// instance) n named instance: "web@.service" with "1" gives
// "web@1.service". instance must already be in escaped form, as it appears
// in a unit name; Escape turns an arbitrary string into one. Instantiate
// does not escape by itself because an instance taken from a unit name
// would then be escaped twice.
func (n Name) Instantiate(instance string) (Name, error) {
	if !n.Template && n.Instance == "" {
		return Name{}, fmt.Errorf("%w %q: not a template, so it has no instances", ErrInvalidName, n.String())
	}
	in := Name{Prefix: n.Prefix, Instance: instance, Type: n.Type}
	if instance == "" {
		return Name{}, fmt.Errorf("%w: empty instance for %s", ErrInvalidName, n.TemplateName())
	}
	for i := 0; i < len(instance); i++ {
		if c := instance[i]; c != '@' && !validNameChar(c) {
			return Name{}, fmt.Errorf("%w: instance %q of %s: character %q is not allowed (escape it with unit.Escape)",
				ErrInvalidName, instance, n.TemplateName(), rune(c))
		}
	}
	if s := in.String(); len(s) > maxNameLen {
		return Name{}, fmt.Errorf("%w %q: %d bytes long, systemd allows %d", ErrInvalidName, s, len(s), maxNameLen)
	}
	return in, nil
}

// Escape turns s into a string that may appear in a unit name, as
// systemd-escape(1) and systemd's unit_name_escape do: "/" becomes "-";
// "-", "\", a leading "." and every byte that is not an ASCII letter,
// digit, ":", "_" or "." become \xNN. go-systemd's unit.UnitNameEscape is not used
// because it writes bytes below 0x10 with one hex digit, which systemd
// cannot read back.
func Escape(s string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c == '.' && i == 0, c == '-', c == '\\', !validNameChar(c):
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Unescape undoes Escape, as systemd's unit_name_unescape does: "-" becomes
// "/" and \xNN the byte NN. Any other backslash is an error.
func Unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '-':
			b.WriteByte('/')
		case '\\':
			if i+3 >= len(s) || s[i+1] != 'x' {
				return "", fmt.Errorf("%w: %q: \\ not followed by xNN", ErrInvalidName, s)
			}
			hi, lo := unhex(s[i+2]), unhex(s[i+3])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("%w: %q: \\x not followed by two hex digits", ErrInvalidName, s)
			}
			b.WriteByte(byte(hi<<4 | lo))
			i += 3
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// validNameChar reports whether c is in systemd's VALID_CHARS: the bytes a
// unit name may hold besides "@".
func validNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == ':' || c == '-' || c == '_' || c == '.' || c == '\\'
}

func knownType(t string) bool {
	for _, known := range unitTypes {
		if t == known {
			return true
		}
	}
	return false
}

// typeOf returns the type suffix of a unit name, or "" when name is not a
// valid unit name.
func typeOf(name string) string {
	n, err := ParseName(name)
	if err != nil {
		return ""
	}
	return n.Type
}
