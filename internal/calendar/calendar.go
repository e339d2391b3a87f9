// Package calendar reads systemd's calendar events (systemd.time(7),
// "Calendar Events"), the OnCalendar= of timer units, and computes when
// they elapse.
//
// An event is an optional list of weekdays, a date and a time, and an
// optional time zone:
//
//	Mon..Fri,Sun *-*-* 00:00:00 Europe/Berlin
//	*-*-~1 12:00              the last day of each month, at noon
//	2024-*-01/2 *:0/15:30.5   every 15 minutes at 30.5 seconds, every other day from the 1st
//	daily, weekly, monthly, quarterly, semiannually, yearly (or annually),
//	hourly, minutely
//	@1700000000               one moment, in seconds since the epoch
//
// Each of year, month, day, hour, minute and second is "*" or a
// comma-separated list of values, ranges (A..B) and repetitions (A/N,
// A..B/N); seconds may have up to six decimals; a year of two digits is
// 19xx from 70 and 20xx below; "~" before the day counts days from the
// month's end. The date may be left out (every day), or the year alone,
// and the seconds (:00). The time zone is UTC, an IANA zone name, or one
// of the local zone's abbreviations (CET or CEST when the local zone is
// Europe/Berlin, standing for standard or daylight saving time); without
// one the event is in the local zone.
//
// Parsing, the normalized form (Spec.String) and the computation of the
// next elapse (Spec.Next) follow systemd 252's src/shared/calendarspec.c
// step by step, and the arithmetic over broken-down times follows glibc's
// mktime, which that file relies on (mktime.go), down to the guess glibc
// carries between calls: a time that the zone's clocks skip on a change
// to daylight saving time, or show twice on the change back, is settled
// as systemd settles it. The tests compare normalized forms, next
// elapses and refusals with systemd-analyze calendar itself, in zones
// with daylight saving time, from times next to their changes.
//
// The package imports nothing from atoll and does no I/O but reading
// time zone files through package time.
package calendar

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	minYear = 1970
	maxYear = 2199
	// maxComponents bounds a comma-separated list, as systemd does.
	maxComponents = 240
	usecPerSec    = 1000000
	// maxIterations is systemd's safety valve for find_next.
	maxIterations = 1000
	// allWeekdays is the bit set of every day, Monday in bit 0.
	allWeekdays = 127
)

// ErrSyntax is wrapped by every error of Parse.
var ErrSyntax = errors.New("invalid calendar event")

// component is one element of a list: start, start..stop, start/repeat
// or start..stop/repeat; stop is -1 when there is none. Seconds are in
// microseconds.
type component struct {
	start, stop, repeat int
}

// Spec is a parsed calendar event.
type Spec struct {
	// weekdays has bit 0 for Monday to bit 6 for Sunday; -1 is every day.
	weekdays int
	// Lists of values; nil is "*". second is in microseconds and never
	// nil ("*" is 0/1s).
	year, month, day, hour, minute, second []component
	endOfMonth                             bool

	utc bool
	// dst is -1, or 0 or 1 when the event named the local zone's
	// standard or daylight saving time abbreviation.
	dst      int
	timezone string         // an IANA name, or ""
	loc      *time.Location // where the event is computed
	tzNames  [2]string      // the local zone's abbreviations, as C's tzname
}

// Parse reads a calendar event in the local time zone (time.Local).
func Parse(expr string) (*Spec, error) { return ParseInLocation(expr, time.Local) }

// ParseInLocation reads a calendar event; local is the zone of an event
// that names none, and the zone whose abbreviations it may name.
func ParseInLocation(expr string, local *time.Location) (*Spec, error) {
	if local == nil {
		local = time.UTC
	}
	c := &Spec{dst: -1, loc: local, tzNames: zoneNames(local)}
	if err := c.parse(expr); err != nil {
		return nil, fmt.Errorf("%w %q: %s", ErrSyntax, expr, err.Error())
	}
	return c, nil
}

// zoneNames are C's tzname for loc: the abbreviations of its standard
// and daylight saving time this year ("" when it has none).
func zoneNames(loc *time.Location) [2]string {
	var names [2]string
	year := time.Now().In(loc).Year()
	for _, m := range []time.Month{time.January, time.July} {
		t := time.Date(year, m, 1, 12, 0, 0, 0, loc)
		name, _ := t.Zone()
		if t.IsDST() {
			names[1] = name
		} else if names[0] == "" {
			names[0] = name
		}
	}
	if names[1] == "" {
		names[1] = names[0]
	}
	return names
}

// parse is calendar_spec_from_string.
func (c *Spec) parse(p string) error {
	if rest, ok := cutSuffixFold(p, " UTC"); ok {
		c.utc, p = true, rest
	} else {
		j := 0
		for ; j <= 1; j++ {
			name := c.tzNames[j]
			if name == "" || len(p) <= len(name) || !strings.EqualFold(p[len(p)-len(name):], name) || p[len(p)-len(name)-1] != ' ' {
				continue
			}
			break
		}
		if j <= 1 {
			c.dst = j
			p = p[:len(p)-len(c.tzNames[j])-1]
		} else if i := strings.LastIndexByte(p, ' '); i >= 0 {
			if loc, ok := loadZone(p[i+1:]); ok {
				c.timezone, c.loc = p[i+1:], loc
				p = p[:i]
			}
		}
	}
	if p == "" {
		return errors.New("no event")
	}
	zero := []component{{0, -1, 0}}
	switch strings.ToLower(p) {
	case "minutely":
		c.second = zero
	case "hourly":
		c.minute, c.second = zero, zero
	case "daily":
		c.hour, c.minute, c.second = zero, zero, zero
	case "monthly":
		c.day, c.hour, c.minute, c.second = []component{{1, -1, 0}}, zero, zero, zero
	case "annually", "yearly", "anually":
		c.month, c.day = []component{{1, -1, 0}}, []component{{1, -1, 0}}
		c.hour, c.minute, c.second = zero, zero, zero
	case "weekly":
		c.weekdays = 1
		c.hour, c.minute, c.second = zero, zero, zero
	case "quarterly":
		c.month = []component{{1, -1, 0}, {4, -1, 0}, {7, -1, 0}, {10, -1, 0}}
		c.day, c.hour, c.minute, c.second = []component{{1, -1, 0}}, zero, zero, zero
	case "biannually", "bi-annually", "semiannually", "semi-annually":
		c.month = []component{{1, -1, 0}, {7, -1, 0}}
		c.day, c.hour, c.minute, c.second = []component{{1, -1, 0}}, zero, zero, zero
	default:
		if err := c.parseWeekdays(&p); err != nil {
			return err
		}
		done, err := c.parseDate(&p)
		if err != nil {
			return err
		}
		if !done {
			if err := c.parseTime(&p); err != nil {
				return err
			}
		}
		if p != "" {
			return fmt.Errorf("unexpected %q", p)
		}
	}
	c.normalize()
	return c.valid()
}

// loadZone is systemd's timezone_is_valid and the zone it names.
func loadZone(name string) (*time.Location, bool) {
	if name == "UTC" {
		return time.UTC, true
	}
	if name == "" || name[0] == '/' || len(name) >= 4096 {
		return nil, false
	}
	slash := false
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !isDigit(ch) && !(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && !strings.ContainsRune("-_+/", rune(ch)) {
			return nil, false
		}
		if ch == '/' && slash {
			return nil, false
		}
		slash = ch == '/'
	}
	if slash || name == "Local" {
		return nil, false
	}
	loc, err := time.LoadLocation(name)
	return loc, err == nil
}

var weekdayNames = []struct {
	name string
	nr   int
}{
	{"Monday", 0}, {"Mon", 0}, {"Tuesday", 1}, {"Tue", 1}, {"Wednesday", 2}, {"Wed", 2},
	{"Thursday", 3}, {"Thu", 3}, {"Friday", 4}, {"Fri", 4}, {"Saturday", 5}, {"Sat", 5},
	{"Sunday", 6}, {"Sun", 6},
}

// at is s[i], or 0 past its end, as C reads a string's terminator.
func at(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

func isDigit(ch byte) bool { return ch >= '0' && ch <= '9' }

func trimSpaces(s string) string { return strings.TrimLeft(s, " ") }

// parseWeekdays is parse_weekdays: a list of weekdays and ranges of them
// (Mon..Fri, or Mon-Fri of old), or nothing.
func (c *Spec) parseWeekdays(p *string) error {
	last := -1
	for first := true; ; first = false {
		found := -1
		for _, d := range weekdayNames {
			if len(*p) < len(d.name) || !strings.EqualFold((*p)[:len(d.name)], d.name) {
				continue
			}
			if !strings.ContainsRune("\x00-., ", rune(at(*p, len(d.name)))) {
				return fmt.Errorf("weekday %s followed by %q", d.name, (*p)[len(d.name):])
			}
			c.weekdays |= 1 << d.nr
			if last >= 0 {
				if last > d.nr {
					return fmt.Errorf("weekday range ends at %s, before it starts", d.name)
				}
				for j := last + 1; j < d.nr; j++ {
					c.weekdays |= 1 << j
				}
			}
			*p = (*p)[len(d.name):]
			found = d.nr
			break
		}
		if found < 0 {
			if first {
				return nil
			}
			return fmt.Errorf("expected a weekday at %q", *p)
		}
		if *p == "" {
			return nil
		}
		if (*p)[0] == ' ' {
			*p = trimSpaces(*p)
			return nil
		}
		switch (*p)[0] {
		case '.':
			if last >= 0 {
				return errors.New("a weekday range cannot go on")
			}
			if at(*p, 1) != '.' {
				return fmt.Errorf("expected .. after a weekday at %q", *p)
			}
			last = found
			*p = (*p)[2:]
		case '-':
			if last >= 0 {
				return errors.New("a weekday range cannot go on")
			}
			last = found
			*p = (*p)[1:]
		case ',':
			last = -1
			*p = (*p)[1:]
		}
		if *p == "" || (*p)[0] == ' ' {
			*p = trimSpaces(*p)
			if last >= 0 {
				return errors.New("weekday range without an end")
			}
			return nil
		}
	}
}

// strtoul is C's strtoul in base 10: leading white space, a sign, the
// digits; ok is false when there are none, overflow when the value does
// not fit 64 bits.
func strtoul(s string) (value uint64, rest string, ok, overflow bool) {
	i := 0
	for i < len(s) && strings.IndexByte(" \t\n\v\f\r", s[i]) >= 0 {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	j := i
	for j < len(s) && isDigit(s[j]) {
		d := uint64(s[j] - '0')
		if value > (math.MaxUint64-d)/10 {
			overflow = true
		}
		value = value*10 + d
		j++
	}
	if j == i {
		return 0, s, false, false
	}
	if overflow {
		return math.MaxUint64, s[j:], true, true
	}
	if neg {
		value = -value
	}
	return value, s[j:], true, false
}

// parseFraction is parse_fractional_part_u for six digits: the digits
// after a decimal point as microseconds, the seventh rounding, further
// ones skipped.
func parseFraction(s string) (int, string, error) {
	val, i := 0, 0
	for ; i < 6 && i < len(s) && isDigit(s[i]); i++ {
		val = val*10 + int(s[i]-'0')
	}
	if i == 0 {
		return 0, s, fmt.Errorf("expected digits after the decimal point at %q", s)
	}
	for pad := i; pad < 6; pad++ {
		val *= 10
	}
	if i == 6 && i < len(s) && s[i] >= '5' && s[i] <= '9' {
		val++
	}
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return val, s[i:], nil
}

// parseDecimal is parse_component_decimal: a number, in microseconds
// with an optional fraction for seconds.
func parseDecimal(p *string, usec bool) (int, error) {
	if !isDigit(at(*p, 0)) {
		if *p == "" {
			return 0, errors.New("expected a number at the end")
		}
		return 0, fmt.Errorf("expected a number at %q", *p)
	}
	value, e, _, overflow := strtoul(*p)
	number := (*p)[:len(*p)-len(e)]
	if overflow {
		return 0, fmt.Errorf("number %s out of range", number)
	}
	if usec {
		if value*usecPerSec/usecPerSec != value {
			return 0, fmt.Errorf("number %s out of range", number)
		}
		value *= usecPerSec
		if at(e, 0) == '.' && at(e, 1) != '.' {
			add, rest, err := parseFraction(e[1:])
			if err != nil {
				return 0, err
			}
			e = rest
			if uint64(add)+value < value {
				return 0, fmt.Errorf("number %s out of range", number)
			}
			value += uint64(add)
		}
	}
	if value > math.MaxInt32 {
		return 0, fmt.Errorf("number %s out of range", (*p)[:len(*p)-len(e)])
	}
	*p = e
	return int(value), nil
}

// parseChain is parse_chain and prepend_component: "*" or a
// comma-separated list of components, for seconds in microseconds.
func parseChain(p *string, usec bool) ([]component, error) {
	if at(*p, 0) == '*' {
		*p = (*p)[1:]
		if usec {
			return []component{{0, -1, usecPerSec}}, nil
		}
		return nil, nil
	}
	var chain []component
	e := *p
	for nesting := 0; ; nesting++ {
		if nesting > maxComponents {
			return nil, fmt.Errorf("more than %d values in a list", maxComponents)
		}
		start, err := parseDecimal(&e, usec)
		if err != nil {
			return nil, err
		}
		stop, repeat := -1, 0
		if strings.HasPrefix(e, "..") {
			e = e[2:]
			if stop, err = parseDecimal(&e, usec); err != nil {
				return nil, err
			}
			repeat = 1
			if usec {
				repeat = usecPerSec
			}
		}
		if at(e, 0) == '/' {
			e = e[1:]
			if repeat, err = parseDecimal(&e, usec); err != nil {
				return nil, err
			}
			if repeat == 0 {
				return nil, errors.New("repetition of 0")
			}
		} else {
			if start > math.MaxInt32-repeat {
				return nil, errors.New("number out of range")
			}
			if usec && stop >= 0 && start+repeat > stop {
				return nil, errors.New("range of seconds shorter than a second without a repetition")
			}
		}
		if !strings.ContainsRune("\x00 ,-~:", rune(at(e, 0))) {
			return nil, fmt.Errorf("unexpected %q", e)
		}
		// Prepended, as systemd builds its lists; normalize sorts them.
		chain = append([]component{{start, stop, repeat}}, chain...)
		if at(e, 0) != ',' {
			break
		}
		e = e[1:]
	}
	*p = e
	return chain, nil
}

// parseDate is parse_date: nothing, @SECONDS, MONTH-DAY or
// YEAR-MONTH-DAY, "~" for "-" before the day counting from the month's
// end. done says that @SECONDS gave the time too.
func (c *Spec) parseDate(p *string) (done bool, err error) {
	t := *p
	if t == "" {
		return false, nil
	}
	if t[0] == '@' {
		value, rest, ok, overflow := strtoul(t[1:])
		switch {
		case !ok:
			return false, fmt.Errorf("expected seconds since the epoch at %q", t[1:])
		case overflow || int64(value) < -1e12 || int64(value) > 1e12:
			return false, fmt.Errorf("%s out of range", t[1:len(t)-len(rest)])
		}
		tm := time.Unix(int64(value), 0).UTC()
		c.year = []component{{tm.Year(), -1, 0}}
		c.month = []component{{int(tm.Month()), -1, 0}}
		c.day = []component{{tm.Day(), -1, 0}}
		c.hour = []component{{tm.Hour(), -1, 0}}
		c.minute = []component{{tm.Minute(), -1, 0}}
		c.second = []component{{tm.Second() * usecPerSec, -1, 0}}
		c.utc = true
		*p = rest
		return true, nil
	}
	first, err := parseChain(&t, false)
	if err != nil {
		return false, err
	}
	if t == "" || t[0] == ':' {
		return false, nil // a time, not a date
	}
	switch t[0] {
	case '~':
		c.endOfMonth = true
	case '-':
	default:
		return false, fmt.Errorf("unexpected %q in the date", t)
	}
	t = t[1:]
	second, err := parseChain(&t, false)
	if err != nil {
		return false, err
	}
	if t == "" || t[0] == ' ' {
		*p = trimSpaces(t)
		c.month, c.day = first, second
		return false, nil
	}
	if c.endOfMonth {
		return false, fmt.Errorf("unexpected %q after the day", t)
	}
	switch t[0] {
	case '~':
		c.endOfMonth = true
	case '-':
	default:
		return false, fmt.Errorf("unexpected %q in the date", t)
	}
	t = t[1:]
	third, err := parseChain(&t, false)
	if err != nil {
		return false, err
	}
	if t != "" && t[0] != ' ' {
		return false, fmt.Errorf("unexpected %q after the date", t)
	}
	*p = trimSpaces(t)
	c.year, c.month, c.day = first, second, third
	return false, nil
}

// parseTime is parse_calendar_time: HOUR:MINUTE[:SECOND], or nothing for
// 00:00:00.
func (c *Spec) parseTime(p *string) error {
	zero := []component{{0, -1, 0}}
	t := *p
	if t == "" {
		c.hour, c.minute, c.second = zero, zero, zero
		return nil
	}
	h, err := parseChain(&t, false)
	if err != nil {
		return err
	}
	if at(t, 0) != ':' {
		return fmt.Errorf("expected : after the hour at %q", t)
	}
	t = t[1:]
	m, err := parseChain(&t, false)
	if err != nil {
		return err
	}
	s := zero
	if t != "" {
		if t[0] != ':' {
			return fmt.Errorf("expected : after the minute at %q", t)
		}
		t = t[1:]
		if s, err = parseChain(&t, true); err != nil {
			return err
		}
		if t != "" {
			return fmt.Errorf("unexpected %q after the time", t)
		}
	}
	*p = t
	c.hour, c.minute, c.second = h, m, s
	return nil
}

// normalize is calendar_spec_normalize.
func (c *Spec) normalize() {
	if c.timezone == "UTC" {
		c.utc, c.timezone = true, ""
	}
	if c.weekdays <= 0 || c.weekdays >= allWeekdays {
		c.weekdays = -1
	}
	if c.endOfMonth && c.day == nil {
		c.endOfMonth = false
	}
	for i := range c.year {
		y := &c.year[i]
		for _, v := range []*int{&y.start, &y.stop} {
			switch {
			case *v >= 0 && *v < 70:
				*v += 2000
			case *v >= 70 && *v < 100:
				*v += 1900
			}
		}
	}
	for _, chain := range []*[]component{&c.year, &c.month, &c.day, &c.hour, &c.minute, &c.second} {
		*chain = normalizeChain(*chain)
	}
	if c.utc {
		c.loc = time.UTC
	}
}

// normalizeChain is normalize_chain: stops on a repetition, no
// repetition that cannot repeat, sorted, each once.
func normalizeChain(chain []component) []component {
	for i := range chain {
		x := &chain[i]
		if x.stop > x.start && x.repeat > 0 {
			x.stop -= (x.stop - x.start) % x.repeat
		}
		if (x.stop > x.start && x.repeat > 0 && x.start+x.repeat > x.stop) || x.start == x.stop {
			x.repeat, x.stop = 0, -1
		}
	}
	sort.Slice(chain, func(i, j int) bool { return compare(chain[i], chain[j]) < 0 })
	out := chain[:0]
	for i, x := range chain {
		if i == 0 || compare(x, out[len(out)-1]) != 0 {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return chain
	}
	return out
}

func compare(a, b component) int {
	switch {
	case a.start != b.start:
		return cmpInt(a.start, b.start)
	case a.stop != b.stop:
		return cmpInt(a.stop, b.stop)
	}
	return cmpInt(a.repeat, b.repeat)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// valid is calendar_spec_valid, saying which part is out of range.
func (c *Spec) valid() error {
	fields := []struct {
		what     string
		chain    []component
		from, to int
		eom      bool
	}{
		{"year", c.year, minYear, maxYear, false},
		{"month", c.month, 1, 12, false},
		{"day", c.day, 1, 31, c.endOfMonth},
		{"hour", c.hour, 0, 23, false},
		{"minute", c.minute, 0, 59, false},
		{"second", c.second, 0, 60*usecPerSec - 1, false},
	}
	for _, f := range fields {
		if !chainValid(f.chain, f.from, f.to, f.eom) {
			to := f.to
			if f.eom {
				to -= 3
			}
			if f.what == "second" {
				return errors.New("second out of range 0..59, or a repetition too long")
			}
			return fmt.Errorf("%s out of range %d..%d, or a repetition too long", f.what, f.from, to)
		}
	}
	return nil
}

// chainValid is chain_valid.
func chainValid(chain []component, from, to int, eom bool) bool {
	if eom {
		to -= 3 // no more than 28 days from the end of the month
	}
	for _, x := range chain {
		if x.start < from || x.start > to || x.repeat > to-from {
			return false
		}
		if x.stop >= 0 {
			if x.stop < from || x.stop > to || x.start+x.repeat > x.stop {
				return false
			}
		} else if eom && x.start-x.repeat < from || !eom && x.start+x.repeat > to {
			return false
		}
	}
	return true
}

// Location is the zone the event is computed in: UTC, its named zone,
// or the local one.
func (c *Spec) Location() *time.Location { return c.loc }

// String is the event's normalized form, as systemd-analyze calendar
// prints it: "Mon..Fri *-*-* 00:00:00".
func (c *Spec) String() string {
	var b strings.Builder
	if c.weekdays > 0 && c.weekdays <= allWeekdays {
		c.formatWeekdays(&b)
		b.WriteByte(' ')
	}
	formatChain(&b, 4, c.year, false)
	b.WriteByte('-')
	formatChain(&b, 2, c.month, false)
	if c.endOfMonth {
		b.WriteByte('~')
	} else {
		b.WriteByte('-')
	}
	formatChain(&b, 2, c.day, false)
	b.WriteByte(' ')
	formatChain(&b, 2, c.hour, false)
	b.WriteByte(':')
	formatChain(&b, 2, c.minute, false)
	b.WriteByte(':')
	formatChain(&b, 2, c.second, true)
	switch {
	case c.utc:
		b.WriteString(" UTC")
	case c.timezone != "":
		b.WriteString(" " + c.timezone)
	case c.dst == 0 || c.dst == 1:
		if name := c.tzNames[c.dst]; name != "" {
			b.WriteString(" " + name)
		}
	}
	return b.String()
}

var weekdayShort = []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// formatWeekdays is format_weekdays: runs of three days or more as
// ranges.
func (c *Spec) formatWeekdays(b *strings.Builder) {
	l, comma := -1, false
	x := 0
	for ; x < len(weekdayShort); x++ {
		if c.weekdays&(1<<x) != 0 {
			if l < 0 {
				if comma {
					b.WriteByte(',')
				}
				comma = true
				b.WriteString(weekdayShort[x])
				l = x
			}
		} else if l >= 0 {
			if x > l+1 {
				if x > l+2 {
					b.WriteString("..")
				} else {
					b.WriteByte(',')
				}
				b.WriteString(weekdayShort[x-1])
			}
			l = -1
		}
	}
	if l >= 0 && x > l+1 {
		if x > l+2 {
			b.WriteString("..")
		} else {
			b.WriteByte(',')
		}
		b.WriteString(weekdayShort[x-1])
	}
}

// formatChain is format_chain.
func formatChain(b *strings.Builder, width int, chain []component, usec bool) {
	d := 1
	if usec {
		d = usecPerSec
	}
	if chain == nil {
		b.WriteByte('*')
		return
	}
	if usec {
		for _, x := range chain {
			if x.start == 0 && x.stop < 0 && x.repeat == usecPerSec {
				b.WriteByte('*')
				return
			}
		}
	}
	pad := func(v int) string {
		s := strconv.Itoa(v)
		for len(s) < width {
			s = "0" + s
		}
		return s
	}
	for i, x := range chain {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(pad(x.start / d))
		if x.start%d > 0 {
			fmt.Fprintf(b, ".%06d", x.start%d)
		}
		if x.stop > 0 {
			b.WriteString(".." + pad(x.stop/d))
		}
		if x.stop%d > 0 {
			fmt.Fprintf(b, ".%06d", x.stop%d)
		}
		if x.repeat > 0 && !(x.stop > 0 && x.repeat == d) {
			fmt.Fprintf(b, "/%d", x.repeat/d)
		}
		if x.repeat%d > 0 {
			fmt.Fprintf(b, ".%06d", x.repeat%d)
		}
	}
}

func cutSuffixFold(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}
