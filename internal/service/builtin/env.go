package builtin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// EnvFile is one EnvironmentFile= entry.
type EnvFile struct {
	// Path is an absolute path or glob.
	Path string
	// Optional is the "-" prefix: a missing file is no error.
	Optional bool
}

// parseEnvironment reads an Environment= value: assignments as quoted
// words, several on a line ("A=1" "B=two words" C=3). As in systemd, a
// line that does not split is ignored whole and an assignment that is
// not valid alone.
func parseEnvironment(value string, warn func(string)) []string {
	words, err := splitWords(value, unquote|cunescape)
	if err != nil {
		warn(fmt.Sprintf("invalid syntax, ignoring: %s", value))
		return nil
	}
	var out []string
	for _, w := range words {
		if !validEnvAssignment(w) {
			warn(fmt.Sprintf("invalid environment assignment, ignoring: %s", w))
			continue
		}
		out = append(out, w)
	}
	return out
}

// validEnvName is systemd's env_name_is_valid: letters, digits and
// underscores, not starting with a digit.
func validEnvName(name string) bool {
	if name == "" || len(name) > 4096 || isDigit(name[0]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			return false
		}
	}
	return true
}

// validEnvValue is systemd's env_value_is_valid: UTF-8 without control
// characters other than tab and newline.
func validEnvValue(value string) bool {
	if !utf8.ValidString(value) {
		return false
	}
	for _, r := range value {
		if (r < ' ' && r != '\t' && r != '\n') || r == 0x7f {
			return false
		}
	}
	return true
}

func validEnvAssignment(a string) bool {
	name, value, ok := strings.Cut(a, "=")
	return ok && validEnvName(name) && validEnvValue(value)
}

// mergeEnv is env with each of more set, a later assignment of a name
// replacing an earlier one in place.
func mergeEnv(env []string, more ...string) []string {
	out := append([]string(nil), env...)
	index := map[string]int{}
	for i, a := range out {
		name, _, _ := strings.Cut(a, "=")
		index[name] = i
	}
	for _, a := range more {
		name, _, _ := strings.Cut(a, "=")
		if i, ok := index[name]; ok {
			out[i] = a
			continue
		}
		index[name] = len(out)
		out = append(out, a)
	}
	return out
}

// envLookup looks names up in env, the last assignment of a name winning.
func envLookup(env []string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], name+"="); ok {
				return v, true
			}
		}
		return "", false
	}
}

// readEnvFiles reads the environment files in order, a later assignment
// replacing an earlier one, as systemd does when a unit starts. A glob
// matching nothing, or a missing file, is an error unless the entry is
// optional.
func readEnvFiles(files []EnvFile, warn func(string)) ([]string, error) {
	var env []string
	for _, f := range files {
		paths, err := filepath.Glob(f.Path)
		if err != nil {
			return nil, fmt.Errorf("environment file %s: %w", f.Path, err)
		}
		if len(paths) == 0 {
			if f.Optional {
				continue
			}
			return nil, fmt.Errorf("environment file %s: %w", f.Path, os.ErrNotExist)
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				if f.Optional && os.IsNotExist(err) {
					continue
				}
				return nil, fmt.Errorf("environment file: %w", err)
			}
			env = mergeEnv(env, parseEnvFile(string(data), func(msg string) { warn(p + ": " + msg) })...)
		}
	}
	return env, nil
}

// parseEnvFile reads an environment file as systemd's load_env_file
// does: KEY=VALUE lines, comments from # or ; at the start of a line,
// values in single quotes (as written) or double quotes (backslash
// escapes \" \\ \` \$ and a line continuation), unquoted values with
// backslash escapes and continuations, trailing unescaped whitespace
// dropped.
func parseEnvFile(data string, warn func(string)) []string {
	const (
		preKey = iota
		key
		preValue
		value
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
		commentEscape
	)
	var out []string
	state := preKey
	var k, v strings.Builder
	lastValueWhitespace := -1 // where trailing whitespace of an unquoted value starts
	push := func() {
		val := v.String()
		if lastValueWhitespace >= 0 {
			val = val[:lastValueWhitespace]
		}
		name := strings.TrimRight(k.String(), whitespace)
		switch {
		case !validEnvName(name):
			warn(fmt.Sprintf("invalid variable name %q, ignoring", name))
		case !validEnvValue(val):
			warn(fmt.Sprintf("invalid value for %s, ignoring", name))
		default:
			out = append(out, name+"="+val)
		}
		k.Reset()
		v.Reset()
		lastValueWhitespace = -1
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch state {
		case preKey:
			switch {
			case c == '#' || c == ';':
				state = comment
			case strings.IndexByte(whitespace, c) < 0:
				state = key
				k.WriteByte(c)
			}
		case key:
			switch {
			case c == '\n' || c == '\r':
				warn(fmt.Sprintf("line without '=' ignored: %q", k.String()))
				k.Reset()
				state = preKey
			case c == '=':
				state = preValue
				lastValueWhitespace = -1
			default:
				k.WriteByte(c)
			}
		case preValue:
			switch {
			case c == '\n' || c == '\r':
				state = preKey
				push()
			case c == '\'':
				state = singleQuote
			case c == '"':
				state = doubleQuote
			case c == '\\':
				state = valueEscape
			case strings.IndexByte(whitespace, c) < 0:
				state = value
				v.WriteByte(c)
			}
		case value:
			switch {
			case c == '\n' || c == '\r':
				state = preKey
				push()
			case c == '\\':
				state = valueEscape
				lastValueWhitespace = -1
			default:
				if strings.IndexByte(whitespace, c) >= 0 {
					if lastValueWhitespace < 0 {
						lastValueWhitespace = v.Len()
					}
				} else {
					lastValueWhitespace = -1
				}
				v.WriteByte(c)
			}
		case valueEscape:
			state = value
			if c != '\n' { // a continuation adds nothing
				v.WriteByte(c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				v.WriteByte(c)
			}
		case doubleQuote:
			switch c {
			case '"':
				state = preValue
			case '\\':
				state = doubleQuoteEscape
			default:
				v.WriteByte(c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			switch {
			case strings.IndexByte("\"\\`$", c) >= 0:
				v.WriteByte(c)
			case c == '\n':
			default:
				v.WriteByte('\\')
				v.WriteByte(c)
			}
		case comment:
			switch c {
			case '\\':
				state = commentEscape
			case '\n', '\r':
				state = preKey
			}
		case commentEscape:
			state = comment
		}
	}
	switch state {
	case preValue, value, valueEscape, singleQuote, doubleQuote, doubleQuoteEscape:
		push()
	case key:
		if strings.TrimSpace(k.String()) != "" {
			warn(fmt.Sprintf("line without '=' ignored: %q", k.String()))
		}
	}
	return out
}
