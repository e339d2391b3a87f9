package builtin

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Word splitting as systemd's extract_first_word does it, for the
// settings that take quoted words: command lines (systemd.service(5),
// "Command lines"), Environment= and the values of $VAR expansions.

// whitespace is systemd's WHITESPACE.
const whitespace = " \t\n\r"

// wordFlags choose how extractWord reads a word, as systemd's ExtractFlags.
type wordFlags uint8

const (
	// unquote removes '...' and "..." quoting (EXTRACT_UNQUOTE).
	unquote wordFlags = 1 << iota
	// cunescape decodes C escapes, \n \x41 \u00e9... (EXTRACT_CUNESCAPE).
	cunescape
	// cunescapeRelax keeps unknown escapes and a trailing backslash as
	// written (EXTRACT_CUNESCAPE_RELAX).
	cunescapeRelax
	// relax accepts unbalanced quotes and a trailing backslash
	// (EXTRACT_RELAX).
	relax
)

var (
	errUnbalancedQuotes = errors.New("unbalanced quoting")
	errBadEscape        = errors.New("invalid escape sequence")
)

// extractWord returns the first word of s and what follows it, its
// leading whitespace removed; ok is false when s holds no word.
func extractWord(s string, flags wordFlags) (word, rest string, ok bool, err error) {
	s = strings.TrimLeft(s, whitespace)
	if s == "" {
		return "", "", false, nil
	}
	var b strings.Builder
	var quote byte
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i == len(s) {
				if flags&cunescapeRelax != 0 && (quote == 0 || flags&relax != 0) {
					b.WriteByte('\\')
					return b.String(), "", true, nil
				}
				if flags&relax != 0 {
					return b.String(), "", true, nil
				}
				return "", "", false, errBadEscape
			}
			if flags&cunescape == 0 {
				b.WriteByte(s[i])
				i++
				continue
			}
			n, err := cunescapeOne(s[i:], &b)
			if err != nil {
				if flags&cunescapeRelax == 0 {
					return "", "", false, err
				}
				b.WriteByte('\\')
				b.WriteByte(s[i])
				i++
				continue
			}
			i += n
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
			i++
		case (c == '\'' || c == '"') && flags&unquote != 0:
			quote = c
			i++
		case strings.IndexByte(whitespace, c) >= 0:
			return b.String(), strings.TrimLeft(s[i:], whitespace), true, nil
		default:
			b.WriteByte(c)
			i++
		}
	}
	if quote != 0 && flags&relax == 0 {
		return "", "", false, errUnbalancedQuotes
	}
	return b.String(), "", true, nil
}

// extractWordAndWarn is extractWord with systemd's second chance: a word
// with an unknown escape is read again keeping the escape as written, and
// warn is told.
func extractWordAndWarn(s string, flags wordFlags, warn func(string)) (word, rest string, ok bool, err error) {
	word, rest, ok, err = extractWord(s, flags)
	if errors.Is(err, errBadEscape) && flags&cunescapeRelax == 0 {
		word, rest, ok, err = extractWord(s, flags|cunescapeRelax)
		if err == nil && ok && warn != nil {
			warn("ignoring unknown escape sequences: " + strconv.Quote(word))
		}
	}
	return word, rest, ok, err
}

// splitWords splits all of s.
func splitWords(s string, flags wordFlags) ([]string, error) {
	var out []string
	for {
		word, rest, ok, err := extractWord(s, flags)
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		out = append(out, word)
		s = rest
	}
}

// cunescapeOne decodes the escape sequence s starts with (what follows the
// backslash) into b and returns its length, as systemd's cunescape_one
// without NUL bytes.
func cunescapeOne(s string, b *strings.Builder) (int, error) {
	simple := map[byte]byte{
		'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v',
		'\\': '\\', '"': '"', '\'': '\'', 's': ' ',
	}
	if c, ok := simple[s[0]]; ok {
		b.WriteByte(c)
		return 1, nil
	}
	switch s[0] {
	case 'x':
		if len(s) < 3 {
			return 0, errBadEscape
		}
		hi, ok1 := unhex(s[1])
		lo, ok2 := unhex(s[2])
		if !ok1 || !ok2 || hi|lo == 0 {
			return 0, errBadEscape
		}
		b.WriteByte(byte(hi<<4 | lo))
		return 3, nil
	case 'u', 'U':
		n := 4
		if s[0] == 'U' {
			n = 8
		}
		if len(s) < n+1 {
			return 0, errBadEscape
		}
		var r rune
		for i := 1; i <= n; i++ {
			v, ok := unhex(s[i])
			if !ok {
				return 0, errBadEscape
			}
			r = r<<4 | rune(v)
		}
		if r == 0 || !unicharValid(r) {
			return 0, errBadEscape
		}
		b.WriteRune(r)
		return n + 1, nil
	case '0', '1', '2', '3', '4', '5', '6', '7':
		if len(s) < 3 || !isOctal(s[1]) || !isOctal(s[2]) {
			return 0, errBadEscape
		}
		m := int(s[0]-'0')<<6 | int(s[1]-'0')<<3 | int(s[2]-'0')
		if m == 0 || m > 255 {
			return 0, errBadEscape
		}
		b.WriteByte(byte(m))
		return 3, nil
	}
	return 0, errBadEscape
}

func unhex(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// unicharValid is systemd's unichar_is_valid.
func unicharValid(r rune) bool {
	switch {
	case r >= 0x110000, r&^0x7ff == 0xd800, r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
		return false
	}
	return true
}

// quoteWord writes word so that extractWord with unquote|cunescape reads
// it back unchanged: as is when it needs no quoting, else in double quotes
// with C escapes.
func quoteWord(word string) string {
	plain := word != ""
	for i := 0; i < len(word); i++ {
		c := word[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"'\;$%`, c) >= 0 {
			plain = false
			break
		}
	}
	if plain {
		return word
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(word); {
		r, size := utf8.DecodeRuneInString(word[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteString(`\x`)
			b.WriteByte("0123456789abcdef"[word[i]>>4])
			b.WriteByte("0123456789abcdef"[word[i]&0xf])
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < ' ' || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&0xf])
		default:
			b.WriteString(word[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}
