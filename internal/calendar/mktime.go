package calendar

import "time"

// broken is a broken-down time, C's struct tm: year in full, mon from 0,
// the other fields as in C. Fields may be out of range before mktime
// normalizes them.
type broken struct {
	year, mon, mday, hour, min, sec int
	wday                            int // 0 is Sunday; set by mktime
	isdst                           int // -1 unknown, 0 standard time, 1 daylight saving time
}

// zoneClock converts between instants and broken-down times in one zone
// the way glibc's localtime_r and mktime (or gmtime_r and timegm) do,
// which is what systemd's calendar arithmetic rests on. mktime's answer
// for a time that a zone's clocks skip or show twice depends on its
// guess, which glibc carries from call to call (its localtime_offset);
// guess does the same, so that a sequence of calls answers as systemd's
// does.
type zoneClock struct {
	loc   *time.Location
	guess int64 // the last result minus its local seconds
}

// localtime breaks instant t (seconds) down in the zone.
func (z *zoneClock) localtime(t int64) broken {
	lt := time.Unix(t, 0).In(z.loc)
	isdst := 0
	if lt.IsDST() {
		isdst = 1
	}
	return broken{
		year: lt.Year(), mon: int(lt.Month()) - 1, mday: lt.Day(),
		hour: lt.Hour(), min: lt.Minute(), sec: lt.Second(),
		wday: int(lt.Weekday()), isdst: isdst,
	}
}

// localSeconds is t's wall clock reading in the zone as seconds since
// the epoch, and whether daylight saving time is in force.
func (z *zoneClock) localSeconds(t int64) (int64, bool) {
	lt := time.Unix(t, 0).In(z.loc)
	_, offset := lt.Zone()
	return t + int64(offset), lt.IsDST()
}

// fieldSeconds reads broken-down fields as seconds since the epoch of a
// clock without zone; out-of-range fields carry over, as in mktime.
func fieldSeconds(b broken, sec int) int64 {
	return time.Date(b.year, time.Month(b.mon+1), b.mday, b.hour, b.min, sec, 0, time.UTC).Unix()
}

// mktime is glibc's __mktime_internal (time/mktime.c) with localtime as
// the conversion: it finds the instant whose local time is b by probing
// from the last offset, settles a time that falls in a gap or an overlap
// as glibc does, normalizes b to that instant's local time and returns
// the instant. It fails, leaving b alone, where glibc's does.
func (z *zoneClock) mktime(b *broken) (int64, bool) {
	secRequested := b.sec
	sec := min(max(b.sec, 0), 59)
	want := fieldSeconds(*b, sec)
	isdst := b.isdst

	t0 := want + z.guess
	t, t1, t2 := t0, t0, t0
	dst2 := false
	local, dst := z.localSeconds(t)
	gap := false
	for probes := 6; ; {
		dt := want - local
		if dt == 0 {
			break
		}
		// Oscillating between two values: the time is in a gap, and
		// glibc keeps the value it is at.
		if t == t1 && t != t2 && (isdst < 0 && boolInt(dst2) <= boolInt(dst) || isdst >= 0 && (isdst != 0) != dst) {
			gap = true
			break
		}
		probes--
		if probes == 0 {
			return 0, false
		}
		t1, t2, t, dst2 = t2, t, t+dt, dst
		local, dst = z.localSeconds(t)
	}
	if !gap && isdst >= 0 && (isdst != 0) != dst {
		// The wrong side: use the offset of the nearest time with the
		// daylight saving time asked for, searched for as glibc does.
		const stride, durationMax = 601200, 536454000
		found := false
	search:
		for delta := int64(stride); delta < durationMax/2+stride; delta += stride {
			for _, dir := range []int64{-1, 1} {
				ot := t + delta*dir
				olocal, odst := z.localSeconds(ot)
				if (isdst != 0) == odst {
					t, found = ot+(want-olocal), true
					break search
				}
			}
		}
		if !found {
			return 0, false
		}
	}
	z.guess = t - want
	t += int64(secRequested - sec)
	*b = z.localtime(t)
	return t, true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
