package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// sizeUnits lists the units a size may carry, with their multipliers.
func sizeUnits() map[string]Size {
	return map[string]Size{
		"":    1,
		"B":   1,
		"KB":  1000,
		"MB":  1000 * 1000,
		"GB":  1000 * 1000 * 1000,
		"KiB": kib,
		"MiB": mib,
		"GiB": gib,
	}
}

// parseSize reads "2147483648", "2GiB" or "2 GiB".
func parseSize(text string) (Size, error) {
	digits := strings.TrimLeft(text, "0123456789")
	number := text[:len(text)-len(digits)]
	unit := strings.TrimSpace(digits)
	if number == "" {
		return 0, fmt.Errorf("%q is not a size: want bytes, or a whole number with B, KB, MB, GB, KiB, MiB or GiB", text)
	}
	mult, ok := sizeUnits()[unit]
	if !ok {
		return 0, fmt.Errorf("%q is not a size: unknown unit %q, want B, KB, MB, GB, KiB, MiB or GiB", text, unit)
	}
	n, err := strconv.ParseInt(number, 10, 64)
	if err != nil || n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("%q is too large a size", text)
	}
	return Size(n) * mult, nil
}

// parseDuration reads a Go duration string.
func parseDuration(text string) (Duration, error) {
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: want a Go duration such as 100ms, 1s or 1h", text)
	}
	return Duration(d), nil
}

// MarshalYAML writes the size as a plain integer number of bytes.
func (s Size) MarshalYAML() (any, error) { return int64(s), nil }

// UnmarshalYAML reads a size written as bytes or with a unit, so that a
// Config may also be decoded with yaml.Unmarshal; Parse does not need it.
func (s *Size) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size, got %s", value.Line, describe(value))
	}
	v, err := parseSize(value.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", value.Line, err)
	}
	*s = v
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a Go duration string, so that a Config may also be
// decoded with yaml.Unmarshal; Parse does not need it.
func (d *Duration) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration, got %s", value.Line, describe(value))
	}
	v, err := parseDuration(value.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", value.Line, err)
	}
	*d = v
	return nil
}
