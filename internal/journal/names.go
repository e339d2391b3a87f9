package journal

import (
	"fmt"
	"strings"
)

// maxDirName is the longest file name Linux file systems take (NAME_MAX).
const maxDirName = 255

// escapeUnit turns a unit name into the name of its directory. Letters,
// digits and "@_-:." stand for themselves, so web@1.service keeps its
// name on disk; every other byte, and a leading ".", becomes %XX. The
// mapping is one to one, so Units can give the names back.
func escapeUnit(unit string) (string, error) {
	if unit == "" {
		return "", fmt.Errorf("%w: empty name", ErrInvalidUnit)
	}
	var b strings.Builder
	for i := 0; i < len(unit); i++ {
		c := unit[i]
		if plainUnitByte(c) && (i > 0 || c != '.') {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	if b.Len() > maxDirName {
		return "", fmt.Errorf("%w: %q is longer than a file name can be", ErrInvalidUnit, unit)
	}
	return b.String(), nil
}

// unescapeUnit is the inverse of escapeUnit. It refuses names escapeUnit
// cannot have made, so a stray directory is not taken for a unit.
func unescapeUnit(dir string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(dir); i++ {
		c := dir[i]
		if c != '%' {
			if !plainUnitByte(c) || (i == 0 && c == '.') {
				return "", false
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(dir) {
			return "", false
		}
		hi, ok1 := upperHex(dir[i+1])
		lo, ok2 := upperHex(dir[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		raw := hi<<4 | lo
		if plainUnitByte(raw) && (i > 0 || raw != '.') {
			return "", false // escapeUnit writes this byte as itself
		}
		b.WriteByte(raw)
		i += 2
	}
	if b.Len() == 0 {
		return "", false
	}
	return b.String(), true
}

func plainUnitByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '@' || c == '_' || c == '-' || c == ':' || c == '.'
}

func upperHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
