package unit

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	gsunit "github.com/coreos/go-systemd/v22/unit"
)

// File is one unit file or drop-in: its name and its options in the order
// they were written. Options hold values the way go-systemd (and so fleet
// and its API) represents them, continuation lines included; Value and
// Values return them the way systemd reads them. The methods that change a
// file return a new File and leave the receiver as it was.
type File struct {
	// Name is the unit name, such as "web@1.service" (or the drop-in's
	// file name, such as "10-limits.conf").
	Name string
	// Options are the directives in file order.
	Options []*gsunit.UnitOption

	pos map[*gsunit.UnitOption]Position
}

// FromOptions builds the File of unit name from options that did not come
// from a file, such as those of a fleet API request, and checks them the
// way Parse checks a file: each option must survive being written out and
// read back unchanged (fleet's API makes the same check with go-systemd's
// deserializer), and sections and directives that systemd would ignore are
// reported as warnings. The options are kept in the order given, so Hash
// matches fleet's hash of them.
func FromOptions(name string, options []*gsunit.UnitOption) (*File, []Warning, error) {
	f := &File{Name: name}
	for i, opt := range options {
		if opt == nil {
			return nil, nil, fmt.Errorf("unit: %s: option %d is missing", name, i+1)
		}
		one := []*gsunit.UnitOption{opt}
		back, _, err := parse(name, name, "", serialize(one))
		if err == nil && !sameOptions(back.Options, one) {
			err = fmt.Errorf("it reads back as %s", describeOptions(back.Options))
		}
		if err != nil {
			return nil, nil, fmt.Errorf("unit: %s: option %d [%s] %s=%q cannot be written to a unit file: %w",
				name, i+1, opt.Section, opt.Name, opt.Value, stripPosition(err))
		}
		f.add(&gsunit.UnitOption{Section: opt.Section, Name: opt.Name, Value: opt.Value}, Position{File: name})
	}
	return f, checkDirectives(name, typeOf(name), nil, f), nil
}

// add appends opt, read at pos.
func (f *File) add(opt *gsunit.UnitOption, pos Position) {
	if f.pos == nil {
		f.pos = make(map[*gsunit.UnitOption]Position)
	}
	f.Options = append(f.Options, opt)
	f.pos[opt] = pos
}

// Position returns where opt, one of f.Options, was read. It reports false
// for an option that f did not read or copy from a file.
func (f *File) Position(opt *gsunit.UnitOption) (Position, bool) {
	pos, ok := f.pos[opt]
	return pos, ok && pos.Line > 0
}

// clone returns a copy of f whose options can be changed without changing
// f's, with their positions.
func (f *File) clone() *File {
	c := &File{Name: f.Name}
	for _, opt := range f.Options {
		c.add(&gsunit.UnitOption{Section: opt.Section, Name: opt.Name, Value: opt.Value}, f.pos[opt])
	}
	return c
}

// Sections returns the sections that have options, in the order they first
// appear.
func (f *File) Sections() []string {
	var sections []string
	seen := make(map[string]bool)
	for _, opt := range f.Options {
		if !seen[opt.Section] {
			seen[opt.Section] = true
			sections = append(sections, opt.Section)
		}
	}
	return sections
}

// Values returns the values of every name= in section, in order and as
// systemd reads them (continuation lines joined; see Unfold). An empty
// assignment resets the list, as systemd does for list directives such as
// ExecStart= or Environment=, so only the values after the last empty one
// are returned; for dependencies (After=, Requires=, …), which systemd
// cannot reset, and in sections starting with "X-", which systemd does not
// read, empty values are skipped instead. (An empty Condition…= or
// Assert…= resets every condition or assertion in systemd, not only its
// own kind; whoever evaluates conditions applies that.)
func (f *File) Values(section, name string) []string {
	noReset := strings.HasPrefix(section, "X-") || section == "Unit" && dependencyDirectives[name]
	var values []string
	for _, opt := range f.Options {
		if opt.Section != section || opt.Name != name {
			continue
		}
		value := Unfold(opt.Value)
		switch {
		case value != "":
			values = append(values, value)
		case !noReset:
			values = nil
		}
	}
	return values
}

// Value returns the last value of name= in section as systemd reads it (see
// Unfold), and whether the file sets it at all. An empty value with true
// means the directive was reset to its default.
func (f *File) Value(section, name string) (string, bool) {
	for i := len(f.Options) - 1; i >= 0; i-- {
		if opt := f.Options[i]; opt.Section == section && opt.Name == name {
			return Unfold(opt.Value), true
		}
	}
	return "", false
}

// Unfold turns a value as go-systemd and fleet hold it into the value
// systemd reads (src/shared/conf-parser.c): each line that ends with an
// unescaped backslash is joined to the next with the backslash replaced by
// a space, comment lines inside the value are skipped, and white space
// around the result is trimmed.
func Unfold(raw string) string {
	if !strings.Contains(raw, "\n") {
		return raw
	}
	var b strings.Builder
	for i, line := range strings.Split(raw, "\n") {
		if i > 0 && isComment(line) {
			continue
		}
		trailing := len(line) - len(strings.TrimRight(line, `\`))
		if trailing%2 == 0 {
			b.WriteString(line)
			break
		}
		b.WriteString(line[:len(line)-1])
		b.WriteByte(' ')
	}
	return strings.Trim(b.String(), " \t\n\r")
}

// Bytes writes f as a unit file with go-systemd's serializer, as fleet
// does: options are grouped by section in the order sections first appear,
// each section is followed by a blank line but the last, and comments and
// layout are not kept.
func (f *File) Bytes() []byte {
	return serialize(f.Options)
}

func serialize(options []*gsunit.UnitOption) []byte {
	// Serialize returns a *bytes.Buffer, so ReadAll cannot fail.
	b, _ := io.ReadAll(gsunit.Serialize(options))
	return b
}

// Hash is the SHA-1 of a serialized unit, the content address fleet uses
// for unit files in its registry and API.
type Hash [sha1.Size]byte

// String returns the hash in lower-case hex, as fleet shows and stores it.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 7 hex digits, as fleetctl list-unit-files shows.
func (h Hash) Short() string { return h.String()[:7] }

// ParseHash reads a hash written by Hash.String.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("unit: %q is not a hex SHA-1 hash", s)
	}
	copy(h[:], b)
	return h, nil
}

// IsZero reports whether h is the zero hash (no file).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText writes the hash in hex, so JSON holds it as a string.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads a hash written by MarshalText.
func (h *Hash) UnmarshalText(b []byte) error {
	parsed, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = parsed
	return nil
}

// Hash returns fleet's hash of f: the SHA-1 of Bytes, as fleet's
// unit.UnitFile.Hash computes it (coreos/fleet unit/unit.go). Hash the
// file as submitted, before Instance or Expand, to match fleet.
func (f *File) Hash() Hash {
	return sha1.Sum(f.Bytes())
}

// Instance returns the file of the named instance of template f: the same
// options under the instance's name, for example "web@1.service" from
// "web@.service" and "1". instance is in escaped form (see
// Name.Instantiate). Specifiers are left for Expand.
func (f *File) Instance(instance string) (*File, error) {
	name, err := ParseName(f.Name)
	if err != nil {
		return nil, err
	}
	if !name.Template {
		return nil, fmt.Errorf("%w %q: not a template, so it has no instances", ErrInvalidName, f.Name)
	}
	in, err := name.Instantiate(instance)
	if err != nil {
		return nil, err
	}
	c := f.clone()
	c.Name = in.String()
	return c, nil
}

// sameOptions reports whether a and b hold the same options in order.
func sameOptions(a, b []*gsunit.UnitOption) bool {
	return gsunit.AllMatch(a, b)
}

// groupBySection orders options the way Bytes writes them.
func groupBySection(options []*gsunit.UnitOption) []*gsunit.UnitOption {
	order := make(map[string]int)
	for _, opt := range options {
		if _, ok := order[opt.Section]; !ok {
			order[opt.Section] = len(order)
		}
	}
	grouped := append([]*gsunit.UnitOption(nil), options...)
	sort.SliceStable(grouped, func(i, j int) bool { return order[grouped[i].Section] < order[grouped[j].Section] })
	return grouped
}

func describeOptions(options []*gsunit.UnitOption) string {
	if len(options) == 0 {
		return "nothing"
	}
	var b bytes.Buffer
	for i, opt := range options {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "[%s] %s=%q", opt.Section, opt.Name, opt.Value)
	}
	return b.String()
}

// stripPosition drops the file and line from a SyntaxError about a
// serialized option, which would point into text the caller never saw.
func stripPosition(err error) error {
	var se *SyntaxError
	if errors.As(err, &se) {
		return errors.New(se.Msg)
	}
	return err
}

// sortWarnings orders the warnings about one file by line.
func sortWarnings(warnings []Warning) {
	sort.SliceStable(warnings, func(i, j int) bool { return warnings[i].Line < warnings[j].Line })
}
