package cli

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// maxBraceExpansion bounds what one argument may expand to, so that a
// typo such as web@{1..1000000000} is refused instead of submitting
// units until the registry is full.
const maxBraceExpansion = 10000

// expandBraces expands the brace expressions of a unit argument the way
// bash does, so that `fleet start 'web@{1..3}'` (quoted, or from a
// script that never went through a shell) names web@1, web@2 and web@3:
// {a,b,c} gives each alternative (nested and empty ones included) and
// {x..y[..step]} a sequence of integers, zero-padded when an end is
// written with a leading zero, or of single letters. Braces that form
// neither, such as {1-3} or {}, are kept as written, as bash keeps them.
func expandBraces(arg string) ([]string, error) {
	out, err := expandFrom(arg, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	return out, nil
}

// expandFrom expands s, looking for the first brace expression at or
// after from (what is before it holds none).
func expandFrom(s string, from int) ([]string, error) {
	for i := from; i < len(s); i++ {
		if s[i] != '{' {
			continue
		}
		end := matchingBrace(s, i)
		if end < 0 {
			return []string{s}, nil
		}
		alts, ok, err := braceAlternatives(s[i+1 : end])
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		prefix := s[:i]
		rest, err := expandFrom(s[end+1:], 0)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, alt := range alts {
			for _, r := range rest {
				out = append(out, prefix+alt+r)
				if len(out) > maxBraceExpansion {
					return nil, fmt.Errorf("expands to more than %d names", maxBraceExpansion)
				}
			}
		}
		return out, nil
	}
	return []string{s}, nil
}

// matchingBrace is the index of the '}' that closes the '{' at open, or
// -1.
func matchingBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// braceAlternatives reads the inside of a brace expression; ok is false
// when it is not one (no top-level comma and not a sequence).
func braceAlternatives(body string) (alts []string, ok bool, err error) {
	parts := splitTopLevel(body)
	if len(parts) == 1 {
		seq, ok, err := braceSequence(body)
		return seq, ok, err
	}
	for _, p := range parts {
		expanded, err := expandFrom(p, 0)
		if err != nil {
			return nil, false, err
		}
		alts = append(alts, expanded...)
		if len(alts) > maxBraceExpansion {
			return nil, false, fmt.Errorf("expands to more than %d names", maxBraceExpansion)
		}
	}
	return alts, true, nil
}

// splitTopLevel splits at the commas that are not inside nested braces.
func splitTopLevel(body string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, body[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, body[start:])
}

// braceSequence reads x..y or x..y..step.
func braceSequence(body string) ([]string, bool, error) {
	f := strings.Split(body, "..")
	if len(f) != 2 && len(f) != 3 {
		return nil, false, nil
	}
	step := 1
	if len(f) == 3 {
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, false, nil
		}
		if n < 0 {
			n = -n
		}
		if n != 0 {
			step = n
		}
	}
	if a, b, ok := oneLetter(f[0], f[1]); ok {
		return letterSequence(a, b, step), true, nil
	}
	from, err1 := strconv.Atoi(f[0])
	to, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return nil, false, nil
	}
	if count := (abs(to-from) / step) + 1; count > maxBraceExpansion {
		return nil, false, fmt.Errorf("{%s} expands to %d names, more than %d", body, count, maxBraceExpansion)
	}
	width := 0
	if zeroPadded(f[0]) || zeroPadded(f[1]) {
		width = max(len(f[0]), len(f[1]))
	}
	var seq []string
	for n := from; ; {
		seq = append(seq, padInt(n, width))
		if from <= to {
			n += step
			if n > to {
				break
			}
		} else {
			n -= step
			if n < to {
				break
			}
		}
	}
	return seq, true, nil
}

func oneLetter(a, b string) (byte, byte, bool) {
	isLetter := func(s string) bool {
		return len(s) == 1 && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z')
	}
	if !isLetter(a) || !isLetter(b) {
		return 0, 0, false
	}
	return a[0], b[0], true
}

func letterSequence(from, to byte, step int) []string {
	var seq []string
	if from <= to {
		for c := int(from); c <= int(to); c += step {
			seq = append(seq, string(rune(c)))
		}
	} else {
		for c := int(from); c >= int(to); c -= step {
			seq = append(seq, string(rune(c)))
		}
	}
	return seq
}

// zeroPadded tells a number written with a leading zero ("01", "-01").
func zeroPadded(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return len(s) > 1 && s[0] == '0'
}

func padInt(n, width int) string {
	if n < 0 {
		return "-" + fmt.Sprintf("%0*d", max(width-1, 0), -n)
	}
	return fmt.Sprintf("%0*d", width, n)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// expandUnitArgs expands the brace expressions of every argument, in
// order.
func expandUnitArgs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		expanded, err := expandBraces(a)
		if err != nil {
			return nil, usagef("%w", err)
		}
		out = append(out, expanded...)
	}
	return out, nil
}

// unitTypes are the suffixes that make an argument a unit name as it is;
// others get ".service" (fleetctl's unitNameMangle, with every systemd
// unit type rather than fleet's seven).
var unitTypes = []string{"service", "socket", "device", "mount", "automount", "swap", "target", "path", "timer", "slice", "scope"}

// withDefaultType appends ".service" to an argument that does not end in
// a unit type: "web" and "web@1" are web.service and web@1.service, as
// fleetctl's maybeAppendDefaultUnitType makes them.
func withDefaultType(arg string) string {
	for _, t := range unitTypes {
		if strings.HasSuffix(arg, "."+t) {
			return arg
		}
	}
	return arg + ".service"
}

// unitNameOf is the unit an argument names: the base name of a path,
// with the default type (fleetctl's unitNameMangle).
func unitNameOf(arg string) string {
	return withDefaultType(path.Base(arg))
}
