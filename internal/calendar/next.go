package calendar

import "time"

// maxTime is the last time systemd computes from
// (USEC_TIMESTAMP_FORMATTABLE_MAX, the end of 9999).
var maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)

// Next is the first time the event elapses after t (strictly), in the
// event's zone, to the microsecond; false when it never elapses again
// (a year that is past) or t is beyond the year 9999. It is
// calendar_spec_next_usec.
func (c *Spec) Next(t time.Time) (time.Time, bool) {
	if t.After(maxTime) {
		return time.Time{}, false
	}
	usec := t.UnixMicro()
	if usec < -1 {
		usec = -1
	}
	usec++
	z := &zoneClock{loc: c.loc}
	tm := z.localtime(usec / usecPerSec)
	tmUsec := int(usec % usecPerSec)
	if !c.findNext(z, &tm, &tmUsec) {
		return time.Time{}, false
	}
	sec, ok := z.mktime(&tm)
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMicro(sec*usecPerSec + int64(tmUsec)).In(c.loc), true
}

// findNext is find_next: it moves tm (and the microseconds) to the first
// time at or after it that the event matches.
func (c *Spec) findNext(z *zoneClock, tm *broken, usec *int) bool {
	t := *tm
	tmUsec := *usec
	invalidateDST := false
	resetBelowYear := func() { t.mon, t.mday, t.hour, t.min, t.sec, tmUsec = 0, 1, 0, 0, 0, 0 }
	for range maxIterations {
		// Normalize the current date.
		z.mktime(&t)
		if !invalidateDST {
			t.isdst = c.dst
		}

		r := c.match(z, c.year, false, &t, &t.year)
		if r > 0 {
			resetBelowYear()
		}
		if r < 0 || c.withinBounds(z, &t) <= 0 {
			return false
		}

		t.mon++
		r = c.match(z, c.month, false, &t, &t.mon)
		t.mon--
		if r > 0 {
			t.mday, t.hour, t.min, t.sec, tmUsec = 1, 0, 0, 0, 0
		}
		if r >= 0 {
			r = c.withinBounds(z, &t)
		}
		if r < 0 {
			t.year++
			resetBelowYear()
			continue
		}
		if r == 0 {
			continue
		}

		r = c.match(z, c.day, c.endOfMonth, &t, &t.mday)
		if r > 0 {
			t.hour, t.min, t.sec, tmUsec = 0, 0, 0, 0
		}
		if r >= 0 {
			r = c.withinBounds(z, &t)
		}
		if r < 0 {
			t.mon++
			t.mday, t.hour, t.min, t.sec, tmUsec = 1, 0, 0, 0, 0
			continue
		}
		if r == 0 {
			continue
		}

		if !c.matchesWeekday(z, t) {
			t.mday++
			t.hour, t.min, t.sec, tmUsec = 0, 0, 0, 0
			continue
		}

		r = c.match(z, c.hour, false, &t, &t.hour)
		if r > 0 {
			t.min, t.sec, tmUsec = 0, 0, 0
		}
		if r >= 0 {
			r = c.withinBounds(z, &t)
		}
		if r < 0 {
			t.mday++
			t.hour, t.min, t.sec, tmUsec = 0, 0, 0, 0
			continue
		}
		if r == 0 {
			// The hour set may be missing on a change of the zone's
			// offset: try again from the normalized time.
			continue
		}

		r = c.match(z, c.minute, false, &t, &t.min)
		if r > 0 {
			t.sec, tmUsec = 0, 0
		}
		if r >= 0 {
			r = c.withinBounds(z, &t)
		}
		if r < 0 {
			t.hour++
			t.min, t.sec, tmUsec = 0, 0, 0
			continue
		}
		if r == 0 {
			continue
		}

		t.sec = t.sec*usecPerSec + tmUsec
		r = c.match(z, c.second, false, &t, &t.sec)
		tmUsec = t.sec % usecPerSec
		t.sec /= usecPerSec
		if r >= 0 {
			r = c.withinBounds(z, &t)
		}
		if r < 0 {
			t.min++
			t.sec, tmUsec = 0, 0
			continue
		}
		if r == 0 {
			continue
		}

		// Not after where the search began: stuck on a change of the
		// zone's offset. Move on and let mktime settle daylight saving
		// time from now on.
		r = compareFields(*tm, t)
		if r == 0 {
			r = cmpInt(*usec, tmUsec+1)
		}
		if r >= 0 {
			invalidateDST = true
			t.hour++
			continue
		}

		*tm, *usec = t, tmUsec
		return true
	}
	// systemd gives up too ("Infinite loop in calendar calculation").
	return false
}

// compareFields is tm_compare: a and b's fields, year to second.
func compareFields(a, b broken) int {
	for _, f := range [][2]int{{a.year, b.year}, {a.mon, b.mon}, {a.mday, b.mday}, {a.hour, b.hour}, {a.min, b.min}} {
		if f[0] != f[1] {
			return cmpInt(f[0], f[1])
		}
	}
	return cmpInt(a.sec, b.sec)
}

// match is find_matching_component: it moves *val to the earliest value
// of chain at or after it, and says 1 if it moved, 0 if not, -1 if there
// is none. Days counted from the month's end are reckoned in tm's month.
func (c *Spec) match(z *zoneClock, chain []component, endOfMonth bool, tm *broken, val *int) int {
	if chain == nil {
		return 0
	}
	d, found := -1, false
	for _, x := range chain {
		start, stop := x.start, x.stop
		if endOfMonth {
			start, stop = c.endOfMonthDay(z, *tm, x.start), c.endOfMonthDay(z, *tm, x.stop)
			if stop > 0 {
				start, stop = stop, start
			}
		}
		if start >= *val {
			if !found || start < d {
				d, found = start, true
			}
		} else if x.repeat > 0 {
			k := start + x.repeat*((*val-start+x.repeat-1)/x.repeat)
			if (!found || k < d) && (stop < 0 || k <= stop) {
				d, found = k, true
			}
		}
	}
	if !found {
		return -1
	}
	moved := *val != d
	*val = d
	if moved {
		return 1
	}
	return 0
}

// endOfMonthDay is find_end_of_month: the day that is day days before
// the end of tm's month, -1 if there is none.
func (c *Spec) endOfMonthDay(z *zoneClock, tm broken, day int) int {
	t := tm
	t.mon++
	t.mday = 1 - day
	if _, ok := z.mktime(&t); !ok || t.mon != tm.mon {
		return -1
	}
	return t.mday
}

// withinBounds is tm_within_bounds: 1 if tm is a time as it stands, 0 if
// mktime moved it forward (tm is then the normalized time, the fields
// below the one that moved reset, so that a normalization that skips a
// time, such as March 33rd to April 2nd, does not skip April 1st), -1 if
// it is past the last year or would move backward.
func (c *Spec) withinBounds(z *zoneClock, tm *broken) int {
	if tm.year > maxYear {
		return -1
	}
	t := *tm
	if _, ok := z.mktime(&t); !ok {
		return -1
	}
	var cmp int
	switch {
	case t.year != tm.year:
		cmp = cmpInt(t.year, tm.year)
		t.mon = 0
	case t.mon != tm.mon:
		cmp = cmpInt(t.mon, tm.mon)
		t.mday = 1
	case t.mday != tm.mday:
		cmp = cmpInt(t.mday, tm.mday)
		t.hour = 0
	case t.hour != tm.hour:
		cmp = cmpInt(t.hour, tm.hour)
		t.min = 0
	case t.min != tm.min:
		cmp = cmpInt(t.min, tm.min)
		t.sec = 0
	default:
		cmp = cmpInt(t.sec, tm.sec)
	}
	if cmp < 0 {
		return -1
	}
	if cmp > 0 {
		*tm = t
		return 0
	}
	return 1
}

// matchesWeekday is matches_weekday.
func (c *Spec) matchesWeekday(z *zoneClock, tm broken) bool {
	if c.weekdays < 0 || c.weekdays >= allWeekdays {
		return true
	}
	if _, ok := z.mktime(&tm); !ok {
		return false
	}
	k := tm.wday - 1
	if tm.wday == 0 {
		k = 6
	}
	return c.weekdays&(1<<k) != 0
}
