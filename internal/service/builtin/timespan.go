package builtin

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Infinity is the time span "infinity": no timeout, no limit.
const Infinity = time.Duration(math.MaxInt64)

// errTimespan is the error of every span ParseTimespan refuses.
var errTimespan = errors.New("invalid time span")

// timeUnits are systemd.time(7)'s unit suffixes, tried in this order: a
// longer suffix before its prefixes ("msec" before "ms" before "m"), as
// systemd's parse_time does, so "5min" is five minutes and "5ms" five
// milliseconds.
var timeUnits = []struct {
	suffix string
	unit   time.Duration
}{
	{"seconds", time.Second},
	{"second", time.Second},
	{"sec", time.Second},
	{"s", time.Second},
	{"minutes", time.Minute},
	{"minute", time.Minute},
	{"min", time.Minute},
	{"months", month},
	{"month", month},
	{"M", month},
	{"msec", time.Millisecond},
	{"ms", time.Millisecond},
	{"m", time.Minute},
	{"hours", time.Hour},
	{"hour", time.Hour},
	{"hr", time.Hour},
	{"h", time.Hour},
	{"days", day},
	{"day", day},
	{"d", day},
	{"weeks", 7 * day},
	{"week", 7 * day},
	{"w", 7 * day},
	{"years", year},
	{"year", year},
	{"y", year},
	{"usec", time.Microsecond},
	{"us", time.Microsecond},
	{"μs", time.Microsecond}, // U+03BC GREEK SMALL LETTER MU
	{"µs", time.Microsecond}, // U+00B5 MICRO SIGN
}

const (
	day   = 24 * time.Hour
	month = 2629800 * time.Second  // 30.44 days, as systemd's USEC_PER_MONTH
	year  = 31557600 * time.Second // 365.25 days, as systemd's USEC_PER_YEAR
)

// ParseTimespan parses a time span as systemd.time(7) writes them: a sum
// of numbers with units ("1min 30s", "1min30s", "1.5h", "2 weeks"), a bare
// number counting defaultUnit (seconds for the *Sec= settings), or
// "infinity". Spans too long for a time.Duration (about 292 years) read as
// Infinity.
func ParseTimespan(s string, defaultUnit time.Duration) (time.Duration, error) {
	p := strings.TrimLeft(s, " \t\n\r")
	if rest, ok := strings.CutPrefix(p, "infinity"); ok {
		if strings.TrimLeft(rest, " \t\n\r") != "" {
			return 0, fmt.Errorf("%w %q", errTimespan, s)
		}
		return Infinity, nil
	}
	var total time.Duration
	something := false
	for {
		p = strings.TrimLeft(p, " \t\n\r")
		if p == "" {
			if !something {
				return 0, fmt.Errorf("%w %q", errTimespan, s)
			}
			return total, nil
		}
		// An integer part, then an optional fraction: "5", "1.5"; ".5"
		// is refused and "+5" read as 5, as systemd's strtoll does.
		if len(p) > 1 && p[0] == '+' && isDigit(p[1]) {
			p = p[1:]
		}
		i := 0
		for i < len(p) && isDigit(p[i]) {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("%w %q", errTimespan, s)
		}
		whole, frac := p[:i], ""
		p = p[i:]
		if strings.HasPrefix(p, ".") {
			j := 1
			for j < len(p) && isDigit(p[j]) {
				j++
			}
			frac = p[1:j]
			if frac == "" { // "3." and "3.sec" are refused
				return 0, fmt.Errorf("%w %q", errTimespan, s)
			}
			p = p[j:]
		}
		unit := defaultUnit
		q := strings.TrimLeft(p, " \t\n\r")
		matched := false
		for _, u := range timeUnits {
			if rest, ok := strings.CutPrefix(q, u.suffix); ok {
				unit, q, matched = u.unit, rest, true
				break
			}
		}
		if !matched && q == p && q != "" {
			// "12x" and "12.34.56"; "12 34" (two bare numbers) is a sum.
			return 0, fmt.Errorf("%w %q", errTimespan, s)
		}
		p = q
		d, ok := spanValue(whole, frac, unit)
		if !ok || d > Infinity-total {
			return Infinity, nil
		}
		total += d
		something = true
	}
}

// spanValue is whole.frac times unit, false when it overflows.
func spanValue(whole, frac string, unit time.Duration) (time.Duration, bool) {
	var n time.Duration
	for _, c := range []byte(whole) {
		if n > (Infinity-9)/10 {
			return 0, false
		}
		n = n*10 + time.Duration(c-'0')
	}
	if unit != 0 && n > Infinity/unit {
		return 0, false
	}
	d := n * unit
	// The fraction, digit by digit as systemd adds it: 1.5s is 1s and
	// five tenths of a second.
	m := unit / 10
	for _, c := range []byte(frac) {
		if m == 0 {
			break
		}
		k := time.Duration(c-'0') * m
		if d > Infinity-k {
			return 0, false
		}
		d += k
		m /= 10
	}
	return d, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// FormatTimespan writes d as systemd does ("1min 30s", "100ms",
// "infinity"), so that it parses back to d (to the microsecond).
func FormatTimespan(d time.Duration) string {
	if d == Infinity {
		return "infinity"
	}
	d = d.Truncate(time.Microsecond)
	if d <= 0 {
		return "0"
	}
	parts := []struct {
		suffix string
		unit   time.Duration
	}{
		{"y", year}, {"month", month}, {"w", 7 * day}, {"d", day}, {"h", time.Hour},
		{"min", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond},
	}
	var out []string
	for _, p := range parts {
		if d >= p.unit {
			out = append(out, fmt.Sprintf("%d%s", d/p.unit, p.suffix))
			d %= p.unit
		}
	}
	return strings.Join(out, " ")
}
