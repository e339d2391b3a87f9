package calendar

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		expr, from string
		want       []string // RFC 3339 in UTC
	}{
		{"daily", "2024-03-09T16:00:00Z", []string{"2024-03-10T00:00:00Z", "2024-03-11T00:00:00Z"}},
		{"Mon..Fri 09:00", "2024-03-08T10:00:00Z", []string{"2024-03-11T09:00:00Z", "2024-03-12T09:00:00Z"}},
		{"*:0/15", "2024-03-08T10:07:00Z", []string{"2024-03-08T10:15:00Z", "2024-03-08T10:30:00Z"}},
		{"*-*~1", "2024-02-01T00:00:00Z", []string{"2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z"}},
		{"*-02-29 12:00", "2024-03-01T00:00:00Z", []string{"2028-02-29T12:00:00Z"}},
		{"*:*:0/0.25", "2024-03-08T10:07:00.3Z", []string{"2024-03-08T10:07:00.5Z", "2024-03-08T10:07:00.75Z"}},
		{"quarterly", "2024-05-05T00:00:00Z", []string{"2024-07-01T00:00:00Z", "2024-10-01T00:00:00Z"}},
		{"2024-01-01", "2024-06-01T00:00:00Z", nil},
		// 02:30 does not exist in New York on March 10th, 2024.
		{"02:30 America/New_York", "2024-03-09T12:00:00Z", []string{"2024-03-11T06:30:00Z"}},
		// 01:30 comes twice on November 3rd; systemd elapses at the first.
		{"01:30 America/New_York", "2024-11-02T12:00:00Z", []string{"2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"}},
	} {
		spec, err := ParseInLocation(tc.expr, time.UTC)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.expr, err)
			continue
		}
		at, _ := time.Parse(time.RFC3339Nano, tc.from)
		var got []string
		for range 2 {
			next, ok := spec.Next(at)
			if !ok {
				break
			}
			got = append(got, next.UTC().Format(time.RFC3339Nano))
			at = next
		}
		if len(tc.want) == 1 && len(got) == 2 {
			got = got[:1]
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%q from %s: got %v, want %v", tc.expr, tc.from, got, tc.want)
		}
	}
	spec, err := ParseInLocation("01:30", newYork)
	if err != nil {
		t.Fatal(err)
	}
	if next, _ := spec.Next(time.Date(2024, 11, 2, 12, 0, 0, 0, time.UTC)); next.Location() != newYork || next.Hour() != 1 || next.Minute() != 30 {
		t.Errorf("01:30 in the local zone New York: next %v, want 01:30 there", next)
	}
}

func TestNormalizedForm(t *testing.T) {
	for expr, want := range map[string]string{
		"Sat,Sun 12:00":            "Sat,Sun *-*-* 12:00:00",
		"Mon,Tue,Wed 00:00":        "Mon..Wed *-*-* 00:00:00",
		"Mon..Sun 00:00":           "*-*-* 00:00:00",
		"*-02~1":                   "*-02~01 00:00:00",
		"24-12-25":                 "2024-12-25 00:00:00",
		"*:*:7.1234567":            "*-*-* *:*:07.123457",
		"1..5:0/20":                "*-*-* 01..05:00/20:00",
		"3,1,2,1:00":               "*-*-* 01,02,03:00:00",
		"weekly Europe/Berlin":     "Mon *-*-* 00:00:00 Europe/Berlin",
		"@1710000000":              "2024-03-09 16:00:00 UTC",
		"*-*-* 00:00:00 utc":       "*-*-* 00:00:00 UTC",
		"Tue..Thu,Sat *-1..10/3-*": "Tue..Thu,Sat *-01..10/3-* 00:00:00",
	} {
		spec, err := ParseInLocation(expr, time.UTC)
		if err != nil {
			t.Errorf("Parse(%q): %v", expr, err)
			continue
		}
		if got := spec.String(); got != want {
			t.Errorf("Parse(%q).String() = %q, want %q", expr, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for expr, problem := range map[string]string{
		"":                "no event",
		"Fri..Mon":        "weekday range ends at Mon, before it starts",
		"*-13-01":         "month out of range 1..12",
		"*-*~29":          "day out of range 1..28",
		"25:00":           "hour out of range 0..23",
		"*:0/0":           "repetition of 0",
		"Monday12:00":     `weekday Monday followed by "12:00"`,
		"12:00 Mars/Base": `expected : after the minute at " Mars/Base"`,
		"*:*:1.":          "expected digits after the decimal point",
	} {
		_, err := ParseInLocation(expr, time.UTC)
		if err == nil || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), problem) || !strings.Contains(err.Error(), `"`+expr+`"`) {
			t.Errorf("Parse(%q): error %v, want ErrSyntax naming the event and %q", expr, err, problem)
		}
	}
}

// FuzzParse checks that parsing never panics, that a normalized form
// reads back as itself, and that the next elapse is after the time it is
// computed from.
func FuzzParse(f *testing.F) {
	for _, expr := range append(append([]string(nil), systemdEvents...), systemdInvalid...) {
		f.Add(expr, int64(1710000000))
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, expr string, base int64) {
		for _, loc := range []*time.Location{time.UTC, newYork} {
			spec, err := ParseInLocation(expr, loc)
			if err != nil {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("Parse(%q): error %v does not wrap ErrSyntax", expr, err)
				}
				continue
			}
			norm := spec.String()
			again, err := ParseInLocation(norm, loc)
			if err != nil {
				t.Fatalf("Parse(%q) normalizes to %q, which does not parse: %v", expr, norm, err)
			}
			if again.String() != norm {
				t.Fatalf("Parse(%q) normalizes to %q, which normalizes to %q", expr, norm, again.String())
			}
			from := time.Unix(base%(300*365*86400), 0)
			if next, ok := spec.Next(from); ok && !next.After(from) {
				t.Fatalf("%q: next elapse after %v is %v", expr, from, next)
			}
		}
	})
}
