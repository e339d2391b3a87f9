package calendar

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The events compared with systemd's own computation, in every zone and
// from every base time below.
var systemdEvents = []string{
	// Shorthands.
	"minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually", "anually",
	"quarterly", "semiannually", "semi-annually", "biannually", "bi-annually", "DAILY",
	// Weekdays.
	"Mon..Fri *-*-* 09:00", "Sat,Sun 10:30", "Mon,Wed..Fri 12:00", "Mon-Wed 8:00",
	"Wednesday", "Fri *-*-1..7 18:00", "Mon,", "Mon,Tue,Wed,Sun 00:00", "Tue,Thu,Sat 1:2:3",
	"monday..sunday 06:00", "Sat..Sun,Mon *-*-* 1:00",
	// Times.
	"*:0/15", "*:*:0/10", "*:00/20:30.5", "*-*-* 01..05:00/20:17.5", "12:00", "02:30",
	"01:30", "02:15", "03:00", "00:00", "1..3:30", "*:*:*", "*:*:1.5", "*:*:0/0.5",
	"*:*:0.25,0.75", "*:*:7.1234567", "*:*:59.9999994", "0,12:0,30", "*:7..40/11:00",
	"23:59:59", "*:0/7", "5/3:00",
	// Dates.
	"*-*~1", "*-02~1", "*-*~03/2", "*-*~1..7", "*-*~1..7/3 12:00", "*-*-31", "*-02-29 12:00",
	"2024-*-* 00:00", "2025-01-01", "24-12-25", "99-01-01", "70-01-01", "2030..2035-01-01",
	"*-1/3-1", "*-*-1,15 6,18:00", "*-*-1/10", "2024-02-29", "*-04-31", "2024..2199/25-06-15",
	"*-*-* *:*:*", "2024-11-03 01:30", "2024-03-10 02:30", "2024-03-31 02:30", "2024-10-27 02:30",
	"@1710000000", "@1730612000 America/New_York",
	// Zones.
	"*-*-* 02:30:00 America/New_York", "*-*-* 01:30 America/New_York", "daily Europe/Berlin",
	"*:0/30 Australia/Lord_Howe", "Mon 09:00 Asia/Tokyo", "00:00 Etc/GMT+5", "daily UTC",
	"hourly utc", "02:00 Australia/Lord_Howe", "01:45 Australia/Lord_Howe", "*:0/10 America/New_York",
	"weekly Europe/Berlin", "Sun 02:30 Europe/Berlin", "*-*~1 02:30 Europe/Berlin",
}

// Events systemd refuses.
var systemdInvalid = []string{
	"", "bogus", "Mon..", "Fri..Mon", "*-*-* 25:00", "*-13-01", "*-*-32", "*:60", "*:*:60",
	"1969-01-01", "2200-01-01", "*-*~29", "*:0/0", "Mon 12:00 Mars/Olympus", "*/2:00", "12",
	"12:00:00:00", "Mon.Fri", "Moon", "Monday12:00", "1.5:00", "*:*:1.5..1.7", "00:00.5",
	"Mon..Wed..Fri", "*-*-*-*", "2024-01~01~01", "*:0/60", "@", "@x", " daily", "daily ",
	"UTC", " UTC", "*-*-* 12:00 Europe/", "12:00 Europe//Berlin", "1..2..3:00", "*:*:0/0.0",
	"2024-02-30..29", "*:*:59.9999996", "*-*~7..1", "01,:00", ":00", "12:", "*-~1", "0/24:00",
}

// zoneBases are base times around each zone's changes of offset.
var zoneBases = map[string][]string{
	"UTC": {
		"2024-03-09T16:00:00Z", "2024-02-28T23:59:59.5Z", "2023-12-31T23:00:00Z",
	},
	"America/New_York": {
		"2024-03-10T05:53:00Z", // 00:53 EST, before the change to EDT at 02:00
		"2024-11-03T05:00:00Z", // 01:00 EDT, the first 1 o'clock
		"2024-11-03T06:00:00Z", // 01:00 EST, the second
		"2024-11-02T12:00:00Z",
	},
	"Europe/Berlin": {
		"2024-03-30T23:30:00Z", // 00:30 CET on the day of CEST
		"2024-10-26T23:30:00Z", // 01:30 CEST on the day back to CET
		"2024-10-27T00:30:00Z", // 02:30 CEST, the first
		"2024-10-27T01:30:00Z", // 02:30 CET, the second
		"2024-06-15T10:00:00Z",
	},
	"Australia/Lord_Howe": { // half an hour of daylight saving time
		"2024-04-06T14:00:00Z",
		"2024-10-05T14:00:00Z",
	},
}

// localZoneEvents name the local zone's abbreviations, for the zone
// that is local.
var localZoneEvents = map[string][]string{
	"Europe/Berlin":    {"12:00 CET", "12:00 CEST", "daily CEST", "02:30 CET", "*-*-* 02:30 cest"},
	"America/New_York": {"01:30 EST", "01:30 EDT", "02:30 EST"},
}

const systemdIterations = 5

// TestAgainstSystemd compares the normalized form and the next elapses
// of each event with systemd-analyze calendar's, in zones with daylight
// saving time, from base times next to their changes.
func TestAgainstSystemd(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: nothing to compare with")
	}
	for zone, bases := range zoneBases {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatalf("zone %s: %v", zone, err)
		}
		events := append(append([]string(nil), systemdEvents...), localZoneEvents[zone]...)
		for _, base := range bases {
			bt, err := time.Parse(time.RFC3339Nano, base)
			if err != nil {
				t.Fatal(err)
			}
			want := runAnalyze(t, analyze, zone, bt, events)
			if len(want) != len(events) {
				t.Fatalf("TZ=%s base %s: systemd-analyze gave %d results for %d events", zone, base, len(want), len(events))
			}
			for i, expr := range events {
				spec, err := ParseInLocation(expr, loc)
				if err != nil {
					t.Errorf("TZ=%s: Parse(%q): %v; systemd reads it as %q", zone, expr, err, want[i].normalized)
					continue
				}
				if got := spec.String(); got != want[i].normalized {
					t.Errorf("TZ=%s: %q normalized to %q, systemd to %q", zone, expr, got, want[i].normalized)
				}
				var got []string
				at := bt
				for range systemdIterations {
					next, ok := spec.Next(at)
					if !ok {
						break
					}
					got = append(got, next.UTC().Format(analyzeLayout))
					at = next
				}
				if strings.Join(got, ", ") != strings.Join(want[i].elapses, ", ") {
					t.Errorf("TZ=%s base %s: %q elapses at\n\t%s\nsystemd says\n\t%s", zone, base, expr, strings.Join(got, ", "), strings.Join(want[i].elapses, ", "))
				}
			}
		}
	}
	for _, expr := range systemdInvalid {
		cmd := exec.Command(analyze, "calendar", expr)
		cmd.Env = append(os.Environ(), "TZ=UTC", "SYSTEMD_COLORS=0")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("systemd-analyze accepts %q, which this test takes to be invalid:\n%s", expr, out)
			continue
		}
		if spec, err := ParseInLocation(expr, time.UTC); err == nil {
			t.Errorf("Parse(%q) = %q, but systemd refuses it", expr, spec)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", expr)) {
			t.Errorf("Parse(%q): error %q does not name the event", expr, err)
		}
	}
}

const analyzeLayout = "2006-01-02 15:04:05"

type analyzed struct {
	normalized string
	elapses    []string // UTC, to the second
}

// runAnalyze runs systemd-analyze calendar on events with the local zone
// zone from base, and reads its answer for each event.
func runAnalyze(t *testing.T, analyze, zone string, base time.Time, events []string) []analyzed {
	t.Helper()
	args := []string{"calendar", "--iterations=" + fmt.Sprint(systemdIterations), fmt.Sprintf("--base-time=@%d.%06d", base.Unix(), base.Nanosecond()/1000)}
	cmd := exec.Command(analyze, append(args, events...)...)
	cmd.Env = append(os.Environ(), "TZ="+zone, "SYSTEMD_COLORS=0", "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("systemd-analyze (TZ=%s) %q: %v\n%s", zone, args, err, stderr.Bytes())
	}
	var results []analyzed
	lines := strings.Split(string(out), "\n")
	for i := 0; i < len(lines); i++ {
		key, value, ok := strings.Cut(strings.TrimSpace(lines[i]), ": ")
		if !ok {
			continue
		}
		switch {
		case key == "Normalized form":
			results = append(results, analyzed{normalized: value})
		case key == "Next elapse" || strings.HasPrefix(key, "Iter. #"):
			if value == "never" {
				continue
			}
			if i+1 < len(lines) {
				if k, v, _ := strings.Cut(strings.TrimSpace(lines[i+1]), ": "); k == "(in UTC)" {
					value = v
				}
			}
			// "Sun 2024-03-10 00:00:00 UTC"
			f := strings.Fields(value)
			if len(f) != 4 || f[3] != "UTC" {
				t.Fatalf("systemd-analyze printed %q, not a time in UTC", value)
			}
			results[len(results)-1].elapses = append(results[len(results)-1].elapses, f[1]+" "+f[2])
		}
	}
	return results
}
