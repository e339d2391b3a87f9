package builtin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Command is one command line of an Exec*= setting, as systemd.service(5)
// describes them under "Command lines".
type Command struct {
	// Path is the program to run: an absolute path, or a bare name looked
	// up in SearchPath when the command starts.
	Path string
	// Argv is the argument vector, argv[0] included, before $VAR
	// expansion (see Expand).
	Argv []string
	// IgnoreFailure is the "-" prefix: the command's failure (an exit
	// status other than success, a signal, a program that is missing)
	// is recorded but does not fail the unit.
	IgnoreFailure bool
	// Privileged is the "+" prefix, and "!" too: the builtin supervisor
	// has no sandboxing, so both mean the same thing here, running the
	// command as root whatever User= and Group= say. "!!" has an effect
	// only on kernels without ambient capabilities, which Linux has had
	// since 4.3, so it is accepted and changes nothing, as in systemd.
	Privileged bool
	// NoEnvExpand is the ":" prefix: $VAR and ${VAR} stay as written.
	NoEnvExpand bool
}

// SearchPath is where a command given by a bare name is looked up, in
// order: systemd's fixed search path for system services.
var SearchPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// String writes the command back as a command line.
func (c Command) String() string {
	var b strings.Builder
	if c.IgnoreFailure {
		b.WriteByte('-')
	}
	if c.Privileged {
		b.WriteByte('+')
	}
	if c.NoEnvExpand {
		b.WriteByte(':')
	}
	argv0 := len(c.Argv) == 0 || c.Argv[0] != c.Path
	if argv0 {
		b.WriteByte('@')
	}
	b.WriteString(quoteWord(c.Path))
	for i, a := range c.Argv {
		if i == 0 && !argv0 {
			continue
		}
		b.WriteByte(' ')
		if a == ";" {
			b.WriteString(`\;`)
			continue
		}
		b.WriteString(quoteWord(a))
	}
	return b.String()
}

// ParseCommandLines reads the value of an Exec*= setting: one command
// line, or several separated by lone ";" words (systemd still accepts
// them, undocumented; "\;" is a literal ";" argument). Words are unquoted
// and unescaped as systemd's config_parse_exec does; unknown escapes are
// kept as written, with a warning. A line whose first word carries the
// "-" prefix turns its own syntax errors into warnings and yields no
// command, as in systemd.
func ParseCommandLines(value string, warn func(string)) ([]Command, error) {
	var cmds []Command
	p := value
	for {
		first, rest, ok, err := extractWordAndWarn(p, unquote|cunescape, warn)
		if err != nil {
			return nil, fmt.Errorf("command line %q: %w", value, err)
		}
		if !ok {
			return cmds, nil
		}
		p = rest
		if first == ";" {
			continue
		}
		var cmd Command
		separateArgv0 := false
		f := first
	prefixes:
		for f != "" {
			switch {
			case f[0] == '-' && !cmd.IgnoreFailure:
				cmd.IgnoreFailure = true
			case f[0] == '@' && !separateArgv0:
				separateArgv0 = true
			case f[0] == ':' && !cmd.NoEnvExpand:
				cmd.NoEnvExpand = true
			case f[0] == '+' && !cmd.Privileged:
				cmd.Privileged = true
			case strings.HasPrefix(f, "!!"):
				f = f[1:] // no effect with ambient capabilities
			case f[0] == '!' && !cmd.Privileged:
				cmd.Privileged = true
			default:
				break prefixes
			}
			f = f[1:]
		}
		fail := func(format string, args ...any) ([]Command, error) {
			msg := fmt.Sprintf(format, args...)
			if cmd.IgnoreFailure {
				if warn != nil {
					warn(msg + ", ignoring")
				}
				return cmds, nil
			}
			return nil, errors.New(msg)
		}
		switch {
		case f == "":
			return fail("empty path in command line %q", value)
		case !safeString(f):
			return fail("executable name contains special characters: %q", f)
		case strings.HasSuffix(f, "/"):
			return fail("executable path specifies a directory: %q", f)
		case !filepath.IsAbs(f) && (strings.Contains(f, "/") || f == "." || f == ".." || len(f) > 255):
			return fail("neither a valid executable name nor an absolute path: %q", f)
		}
		if !separateArgv0 {
			cmd.Argv = append(cmd.Argv, f)
		}
		cmd.Path = f
		if filepath.IsAbs(f) {
			cmd.Path = filepath.Clean(f)
		}
		semicolon := false
		for p != "" {
			if p[0] == ';' && (len(p) == 1 || strings.IndexByte(whitespace, p[1]) >= 0) {
				p = strings.TrimLeft(p[1:], whitespace)
				semicolon = true
				break
			}
			if strings.HasPrefix(p, `\;`) && (len(p) == 2 || strings.IndexByte(whitespace, p[2]) >= 0) {
				p = strings.TrimLeft(p[2:], whitespace)
				cmd.Argv = append(cmd.Argv, ";")
				continue
			}
			word, rest, ok, err := extractWordAndWarn(p, unquote|cunescape, warn)
			if err != nil {
				return fail("command line %q: %v", value, err)
			}
			if !ok {
				break
			}
			cmd.Argv = append(cmd.Argv, word)
			p = rest
		}
		if len(cmd.Argv) == 0 {
			return fail("empty executable name or zeroeth argument: %q", value)
		}
		cmds = append(cmds, cmd)
		if !semicolon {
			return cmds, nil
		}
	}
}

// safeString is systemd's string_is_safe: no control characters, quotes
// or backslashes.
func safeString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == 0x7f || c == '\\' || c == '"' || c == '\'' {
			return false
		}
	}
	return true
}

// Expand is the command's argument vector with $VAR and ${VAR} replaced
// from env (KEY=VALUE entries, the last of a key winning), as systemd's
// replace_env_argv does: a word that is exactly $VAR becomes the
// variable's value split at whitespace (quotes in the value group words),
// zero words when unset; ${VAR} anywhere in a word is replaced by the
// value as it is; $$ is a literal $. With the ":" prefix argv is returned
// as written.
func (c Command) Expand(env []string) []string {
	if c.NoEnvExpand {
		return append([]string(nil), c.Argv...)
	}
	lookup := envLookup(env)
	var out []string
	for _, word := range c.Argv {
		if len(word) >= 1 && word[0] == '$' && (len(word) == 1 || (word[1] != '{' && word[1] != '$')) {
			name := word[1:]
			if !validEnvName(name) {
				continue
			}
			value, ok := lookup(name)
			if !ok {
				continue
			}
			words, err := splitWords(value, unquote|relax)
			if err != nil { // relax accepts anything; keep the value whole if not
				words = []string{value}
			}
			out = append(out, words...)
			continue
		}
		out = append(out, replaceEnv(word, lookup))
	}
	return out
}

// replaceEnv replaces ${VAR} in s with its value (empty when unset) and $$
// with $, as systemd's replace_env without extensions: ${VAR:-default}
// and $VAR within a word stay as written.
func replaceEnv(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			end := strings.IndexAny(s[i+2:], "}:")
			if end < 0 || s[i+2+end] == ':' {
				// Unterminated, or an extension this setting does not
				// take: systemd copies the rest as written.
				b.WriteString(s[i : i+2])
				i += 2
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok && validEnvName(name) {
				b.WriteString(v)
			}
			i += 2 + end + 1
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String()
}

// resolveCommandPath is where the command's program is: Path when
// absolute, else the first executable of that name in SearchPath.
func resolveCommandPath(path string) (string, error) {
	if filepath.IsAbs(path) {
		return path, nil
	}
	for _, dir := range SearchPath {
		p := filepath.Join(dir, path)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w in %s", path, os.ErrNotExist, strings.Join(SearchPath, ":"))
}
