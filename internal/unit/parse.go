package unit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	gsunit "github.com/coreos/go-systemd/v22/unit"
)

// lineMax is the longest line, newline included, that go-systemd's
// deserializer (and the systemd of fleet's time, which read lines into
// LINE_MAX buffers) accepts.
const lineMax = gsunit.SYSTEMD_LINE_MAX

// Position is where an option was read: the file as it was named to Parse
// and a 1-based line number (0 when the option did not come from a file).
type Position struct {
	File string
	Line int
}

// String returns "file:line", or "file" when the line is not known.
func (p Position) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return p.File
}

// SyntaxError is a malformed unit file: Parse refuses the whole file.
type SyntaxError struct {
	File string // as named to Parse
	Line int    // 1-based
	Msg  string
}

// Error returns "file:line: message".
func (e *SyntaxError) Error() string {
	return Position{e.File, e.Line}.String() + ": " + e.Msg
}

// Warning is something systemd would ignore (an unknown section or
// directive) or fleet would ignore (an unknown [X-Fleet] key): the file is
// still used.
type Warning struct {
	File      string // as named to Parse; the unit name for options without a file
	Line      int    // 1-based; 0 when not known
	Section   string // without brackets
	Directive string // without "="; "" for a warning about a whole section
	Msg       string // says what systemd or fleet does about it
}

// String returns "file:line: message", as in
// "web.service:12: unknown directive Foo= in [Service]".
func (w Warning) String() string {
	return Position{w.File, w.Line}.String() + ": " + w.Msg
}

// Parse reads one unit file (or drop-in) from r. name is how the file is
// named in errors and warnings, usually its path; its base name becomes
// File.Name and, when it is a unit name, its type decides which sections
// belong in it. Parse refuses a malformed file with a *SyntaxError, and
// reports sections and directives that systemd would ignore as warnings.
// See the package documentation for the syntax it accepts.
func Parse(name string, r io.Reader) (*File, []Warning, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("unit: reading %s: %w", name, err)
	}
	base := filepath.Base(name)
	return parse(name, base, typeOf(base), data)
}

// ReadFile parses the unit file at path, naming it by its path in errors
// and warnings.
func ReadFile(path string) (*File, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("unit: %w", err)
	}
	base := filepath.Base(path)
	return parse(path, base, typeOf(base), data)
}

// header is a section header line, kept for its warning.
type header struct {
	section string
	line    int
}

// parse is Parse with the unit type given, so that drop-ins (named
// "10-foo.conf") are checked against the type of the unit they extend.
func parse(source, name, unitType string, data []byte) (*File, []Warning, error) {
	lines, finalNewline, err := splitLines(source, data)
	if err != nil {
		return nil, nil, err
	}
	p := parser{source: source, lines: lines, finalNewline: finalNewline, file: &File{Name: name}}
	if err := p.run(); err != nil {
		return nil, nil, err
	}
	return p.file, checkDirectives(source, unitType, p.headers, p.file), nil
}

type parser struct {
	source       string
	lines        []string
	finalNewline bool // the last line ends with "\n"
	file         *File
	headers      []header
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &SyntaxError{File: p.source, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// run follows go-systemd's lexer (deserialize.go) line by line, so that
// every file it accepts yields exactly the options go-systemd would give,
// and refuses what go-systemd would read differently from systemd
// (src/shared/conf-parser.c).
func (p *parser) run() error {
	section := ""
	for i := 0; i < len(p.lines); i++ {
		line := p.lines[i]
		body := strings.TrimLeft(line, " \t")
		switch {
		case isBlank(body):
		case body[0] == '#' || body[0] == ';':
			end, err := p.comment(i)
			if err != nil {
				return err
			}
			i = end
		case body[0] == '[':
			end := strings.IndexByte(body, ']')
			if end < 0 {
				return p.errorf(i+1, "section header %s has no closing ]", quoteLine(body))
			}
			if rest := body[end+1:]; !isBlank(rest) {
				return p.errorf(i+1, "unexpected %s after section header %s", quoteLine(rest), body[:end+1])
			}
			section = body[1:end]
			if section == "" {
				return p.errorf(i+1, "empty section name []")
			}
			p.headers = append(p.headers, header{section, i + 1})
		default:
			end, err := p.option(i, section)
			if err != nil {
				return err
			}
			i = end
		}
	}
	return nil
}

// comment skips the comment on line i and returns the index of its last
// line. go-systemd treats a comment that ends with a backslash (after one
// trailing space is trimmed) as continued onto the next line, which it
// then skips too; systemd never continues a comment. The two agree only
// when the skipped line is blank or a comment itself.
func (p *parser) comment(i int) (int, error) {
	j := i
	for j+1 < len(p.lines) && continuesComment(p.lines[j]) {
		if next := p.lines[j+1]; !isBlank(next) && !isComment(next) {
			return 0, p.errorf(j+1, "comment ends with a backslash, so fleet's parser would skip line %d as part of it while systemd reads that line: remove the backslash", j+2)
		}
		j++
	}
	return j, nil
}

// option reads the directive starting on line i (and its continuation
// lines) into p.file and returns the index of its last line.
func (p *parser) option(i int, section string) (int, error) {
	line := p.lines[i]
	eq := strings.IndexByte(line, '=')
	if section == "" {
		if eq < 0 {
			return 0, p.errorf(i+1, "expected a [Section] header, a comment or a Key=Value directive, got %s", quoteLine(line))
		}
		return 0, p.errorf(i+1, "directive %s outside of any section: add a [Section] header above it", quoteLine(line))
	}
	if eq < 0 {
		return 0, p.errorf(i+1, "expected Key=Value, got %s", quoteLine(line))
	}
	key := strings.Trim(line[:eq], " \t")
	if key == "" {
		return 0, p.errorf(i+1, "missing directive name before =")
	}
	if r, _ := utf8.DecodeLastRuneInString(key); unicode.IsSpace(r) {
		return 0, p.errorf(i+1, "directive name %q ends with %U, which systemd keeps and fleet's parser trims", key, r)
	}
	first := line[eq+1:]
	if r, _ := utf8.DecodeRuneInString(strings.TrimLeft(first, " \t")); unicode.IsSpace(r) {
		return 0, p.errorf(i+1, "value of %s= starts with %U, which systemd keeps and fleet's parser trims", key, r)
	}
	value, end, err := p.value(i, first)
	if err != nil {
		return 0, err
	}
	p.file.add(&gsunit.UnitOption{Section: section, Name: key, Value: value}, Position{p.source, i + 1})
	return end, nil
}

// value reads a value whose first line (after "=") is first and returns it
// as go-systemd does: its continuation lines are kept, each after a "\n",
// backslashes included; leading and trailing white space is trimmed; and a
// value whose last line ended with a backslash keeps a final "\n".
// Value and Values unfold this form the way systemd does.
func (p *parser) value(i int, first string) (string, int, error) {
	if isBlank(first) {
		return "", i, nil
	}
	var b strings.Builder
	b.WriteString(first)
	j, current := i, first
	for strings.HasSuffix(current, `\`) {
		if j == len(p.lines)-1 {
			if !p.finalNewline {
				return "", 0, p.errorf(j+1, "file ends in the middle of a continued value: add a newline after the last backslash")
			}
			b.WriteByte('\n')
			return strings.TrimSpace(b.String()) + "\n", j, nil
		}
		next := p.lines[j+1]
		// An even run of backslashes is an escaped backslash to systemd,
		// which ends the value, but a continuation to go-systemd.
		if j == i || !isComment(current) {
			if n := len(current) - len(strings.TrimRight(current, `\`)); n%2 == 0 && !isBlank(next) {
				return "", 0, p.errorf(j+1, `line ends with an escaped backslash (\\): systemd ends the value here while fleet's parser continues it on line %d`, j+2)
			}
		}
		b.WriteByte('\n')
		if isBlank(next) {
			return strings.TrimSpace(b.String()) + "\n", j + 1, nil
		}
		// systemd skips comment lines inside a continued value and keeps
		// the value open; go-systemd keeps them, and ends the value unless
		// the comment itself ends with a backslash.
		if isComment(next) && !strings.HasSuffix(next, `\`) {
			return "", 0, p.errorf(j+2, "comment inside a continued value: systemd skips it and keeps the value open, fleet's parser ends the value here")
		}
		b.WriteString(next)
		j, current = j+1, next
	}
	value := strings.TrimSpace(b.String())
	// "A=b\ " is no continuation, but trimmed to "b\" and written back it
	// would continue onto the next line, for fleet and systemd alike.
	if strings.HasSuffix(value, `\`) {
		return "", 0, p.errorf(j+1, "value ends with a backslash followed by white space, which would become a line continuation when the unit is written back: remove the white space after the backslash")
	}
	return value, j, nil
}

// splitLines checks the bytes of a unit file and splits them into lines
// without their "\n" (or "\r\n"). It reports whether the last line ended
// with a newline.
func splitLines(source string, data []byte) ([]string, bool, error) {
	text := strings.TrimPrefix(string(data), "\uFEFF") // systemd skips a UTF-8 byte order mark
	finalNewline := strings.HasSuffix(text, "\n")
	text = strings.TrimSuffix(text, "\n")
	if text == "" && !finalNewline {
		return nil, false, nil
	}
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		lines[i] = line
		fail := func(format string, args ...any) ([]string, bool, error) {
			return nil, false, &SyntaxError{File: source, Line: i + 1, Msg: fmt.Sprintf(format, args...)}
		}
		if len(line) >= lineMax {
			return fail("line is %d bytes long; systemd's LINE_MAX allows %d", len(line), lineMax-1)
		}
		if !utf8.ValidString(line) {
			return fail("invalid UTF-8")
		}
		for _, r := range line {
			switch {
			case r == 0:
				return fail("NUL byte")
			case r == '\r':
				return fail("carriage return inside a line (systemd takes it for a line break, fleet's parser does not)")
			case r < 0x20 && r != '\t':
				return fail("control character %U", r)
			}
		}
		// go-systemd trims all Unicode white space around sections,
		// names and values; systemd trims only ASCII white space.
		inner := strings.Trim(line, " \t")
		if r, _ := utf8.DecodeRuneInString(inner); unicode.IsSpace(r) {
			return fail("line starts with %U, which systemd keeps and fleet's parser trims", r)
		}
		if r, _ := utf8.DecodeLastRuneInString(inner); unicode.IsSpace(r) {
			return fail("line ends with %U, which systemd keeps and fleet's parser trims", r)
		}
	}
	return lines, finalNewline, nil
}

// continuesComment reports whether go-systemd's lexer (ignoreLineFunc)
// continues a comment line onto the next line.
func continuesComment(line string) bool {
	return strings.HasSuffix(strings.TrimSuffix(line, " "), `\`)
}

func isBlank(s string) bool { return strings.Trim(s, " \t") == "" }

func isComment(line string) bool {
	body := strings.TrimLeft(line, " \t")
	return body != "" && (body[0] == '#' || body[0] == ';')
}

// quoteLine quotes a line for an error message, shortened to stay readable.
func quoteLine(s string) string {
	const max = 60
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

// checkDirectives returns the warnings for the sections and directives of
// f that systemd would ignore in a unit of unitType ("" when not known).
// headers are the section header lines; when nil (options that did not
// come from a file) each section is checked at its first option.
func checkDirectives(source, unitType string, headers []header, f *File) []Warning {
	var warnings []Warning
	if headers == nil {
		seen := make(map[string]bool)
		for _, opt := range f.Options {
			if !seen[opt.Section] {
				seen[opt.Section] = true
				pos, _ := f.Position(opt)
				headers = append(headers, header{opt.Section, pos.Line})
			}
		}
	}
	ignored := make(map[string]bool)
	for _, h := range headers {
		if msg := sectionWarning(unitType, h.section); msg != "" {
			ignored[h.section] = true
			warnings = append(warnings, Warning{File: source, Line: h.line, Section: h.section, Msg: msg})
		}
	}
	for _, opt := range f.Options {
		if ignored[opt.Section] || strings.HasPrefix(opt.Section, "X-") {
			continue
		}
		if msg := directiveWarning(opt.Section, opt.Name); msg != "" {
			pos, ok := f.Position(opt)
			if !ok {
				pos = Position{File: source}
			}
			warnings = append(warnings, Warning{File: pos.File, Line: pos.Line, Section: opt.Section, Directive: opt.Name, Msg: msg})
		}
	}
	sortWarnings(warnings)
	return warnings
}
