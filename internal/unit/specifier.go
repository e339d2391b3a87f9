package unit

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	gsunit "github.com/coreos/go-systemd/v22/unit"
)

// ErrSpecifier is wrapped by every error about a %-specifier that cannot
// be expanded.
var ErrSpecifier = errors.New("unit: bad specifier")

// Context is what specifiers expand to.
type Context struct {
	// Name is the unit being expanded: %n %N %p %P %i %I.
	Name Name
	// Hostname is the machine's host name: %H, and %l up to its first dot.
	Hostname string
	// MachineID is the machine ID, 32 hex digits: %m.
	MachineID string
	// BootID is the ID of the current boot, 32 hex digits: %b.
	BootID string
}

// unsupportedSpecifiers are the specifiers systemd.unit(5) documents that
// need more of the system than a Context holds. Expand refuses them by
// name rather than calling them unknown.
var unsupportedSpecifiers = map[byte]string{
	'a': "architecture", 'A': "OS image version", 'B': "OS build ID",
	'C': "cache directory", 'd': "credentials directory", 'D': "shared data directory",
	'E': "configuration directory", 'f': "unescaped file name", 'g': "user group",
	'G': "user GID", 'h': "home directory", 'j': "final component of the prefix",
	'J': "unescaped final component of the prefix", 'L': "log directory",
	'M': "OS image identifier", 'o': "OS ID", 'q': "pretty host name", 's': "user shell",
	'S': "state directory", 't': "runtime directory", 'T': "temporary directory",
	'u': "user name", 'U': "user UID", 'v': "kernel release", 'V': "large temporary directory",
	'w': "OS version ID", 'W': "OS variant ID", 'y': "fragment path", 'Y': "fragment directory",
}

// Expand replaces the specifiers in s the way systemd does
// (src/core/unit-printf.c, systemd.unit(5) "Specifiers"):
//
//	%n  full unit name                          web@a-b.service
//	%N  full unit name without the type suffix  web@a-b
//	%p  prefix                                  web
//	%P  prefix, unescaped
//	%i  instance, escaped as in the name        a-b
//	%I  instance, unescaped                     a/b
//	%H  host name; %l the host name up to its first dot
//	%m  machine ID; %b boot ID
//	%%  a literal %
//
// %N is not unescaped: systemd's code has always expanded it to "the id of
// the unit without the suffix (foo@bar)" (specifier_prefix_and_instance),
// though older manuals called it the unescaped full name; the current
// manual and fleet's unitPrintf agree with the code.
// For a template %i and %I are empty. A % at the very end is kept, as
// systemd keeps it. Any other specifier is an error wrapping ErrSpecifier,
// as in current systemd, which refuses the directive; so is a specifier
// whose value Context does not hold.
func Expand(s string, ctx Context) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i == len(s)-1 {
			b.WriteByte('%')
			break
		}
		i++
		value, err := specifier(s[i:], ctx)
		if err != nil {
			return "", err
		}
		b.WriteString(value)
	}
	return b.String(), nil
}

// specifier returns the value of the specifier at the start of rest.
func specifier(rest string, ctx Context) (string, error) {
	needName := func() error {
		if ctx.Name.Type == "" {
			return fmt.Errorf("%w %%%c: no unit name given", ErrSpecifier, rest[0])
		}
		return nil
	}
	need := func(value, what string) (string, error) {
		if value == "" {
			return "", fmt.Errorf("%w %%%c: %s not known", ErrSpecifier, rest[0], what)
		}
		return value, nil
	}
	switch c := rest[0]; c {
	case '%':
		return "%", nil
	case 'n', 'N', 'p', 'P', 'i', 'I':
		if err := needName(); err != nil {
			return "", err
		}
		n := ctx.Name
		switch c {
		case 'n':
			return n.String(), nil
		case 'N':
			return strings.TrimSuffix(n.String(), "."+n.Type), nil
		case 'p':
			return n.Prefix, nil
		case 'P':
			return unescapeFor(c, n.Prefix)
		case 'i':
			return n.Instance, nil
		default:
			return unescapeFor(c, n.Instance)
		}
	case 'H':
		return need(ctx.Hostname, "host name")
	case 'l':
		host, _, _ := strings.Cut(ctx.Hostname, ".")
		return need(host, "host name")
	case 'm':
		return need(ctx.MachineID, "machine ID")
	case 'b':
		return need(ctx.BootID, "boot ID")
	default:
		if what, ok := unsupportedSpecifiers[c]; ok {
			return "", fmt.Errorf("%w %%%c (%s): not supported", ErrSpecifier, c, what)
		}
		r, _ := utf8.DecodeRuneInString(rest)
		return "", fmt.Errorf("%w %%%c: unknown to systemd (write %%%% for a literal %%)", ErrSpecifier, r)
	}
}

func unescapeFor(c byte, s string) (string, error) {
	u, err := Unescape(s)
	if err != nil {
		return "", fmt.Errorf("%w %%%c: %w", ErrSpecifier, c, err)
	}
	return u, nil
}

// Expand returns a copy of f with the specifiers in every value expanded
// for ctx; when ctx.Name is the zero Name, f.Name is used. Values are
// unfolded first (see Unfold), as systemd expands specifiers after joining
// continuation lines, so the options of the result hold values as systemd
// reads them, and its Hash is not fleet's: hash the file before expanding.
//
// systemd expands specifiers in most directives but not all; Expand
// expands them in every directive, which only differs for directives that
// take a literal %, where %% must be written. Sections starting with "X-"
// are left alone: systemd does not read them, and fleet expands its own
// subset in [X-Fleet] (see File.Fleet). A template cannot be expanded:
// instantiate it first with Instance. An expansion that would put a
// control character (such as a newline from an escaped instance) into a
// value is refused.
func (f *File) Expand(ctx Context) (*File, error) {
	if ctx.Name.Type == "" {
		name, err := ParseName(f.Name)
		if err != nil {
			return nil, err
		}
		ctx.Name = name
	}
	if ctx.Name.Template {
		return nil, fmt.Errorf("unit: %s is a template: instantiate it before expanding specifiers", ctx.Name)
	}
	c := &File{Name: f.Name}
	for _, opt := range f.Options {
		value := opt.Value
		if !strings.HasPrefix(opt.Section, "X-") {
			expanded, err := Expand(Unfold(value), ctx)
			if err == nil {
				err = checkExpanded(expanded)
			}
			if err != nil {
				pos, ok := f.Position(opt)
				if !ok {
					pos = Position{File: f.Name}
				}
				return nil, fmt.Errorf("%s: %s=: %w", pos, opt.Name, err)
			}
			value = expanded
		}
		c.add(&gsunit.UnitOption{Section: opt.Section, Name: opt.Name, Value: value}, f.pos[opt])
	}
	return c, nil
}

func checkExpanded(value string) error {
	for _, r := range value {
		if r < 0x20 && r != '\t' {
			return fmt.Errorf("%w: expands to a value with control character %U", ErrSpecifier, r)
		}
	}
	return nil
}
