package builtin

import (
	"testing"
	"time"
)

func TestParseTimespan(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"5", 5 * time.Second},
		{"0", 0},
		{"5s", 5 * time.Second},
		{"5 s", 5 * time.Second},
		{" 5sec ", 5 * time.Second},
		{"1min 30s", 90 * time.Second},
		{"1min30s", 90 * time.Second},
		{"2h", 2 * time.Hour},
		{"1.5h", 90 * time.Minute},
		{"100ms", 100 * time.Millisecond},
		{"100msec", 100 * time.Millisecond},
		{"5m", 5 * time.Minute},
		{"5M", month * 5},
		{"1y", year},
		{"2 weeks", 14 * 24 * time.Hour},
		{"3d 4h", 3*24*time.Hour + 4*time.Hour},
		{"10us", 10 * time.Microsecond},
		{"10µs", 10 * time.Microsecond},
		{"0.5", 500 * time.Millisecond},
		{"12 34", 46 * time.Second}, // bare numbers add up, as in systemd
		{"+5s", 5 * time.Second},
		{"infinity", Infinity},
		{" infinity ", Infinity},
		{"1000years", Infinity}, // beyond time.Duration
	}
	for _, tt := range tests {
		got, err := ParseTimespan(tt.in, time.Second)
		if err != nil {
			t.Errorf("ParseTimespan(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseTimespan(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", " ", "-5s", "5x", "5sx", "3.", "3.sec", ".5", "12.34.56", "infinity 5", "s", "5 mo"} {
		if got, err := ParseTimespan(bad, time.Second); err == nil {
			t.Errorf("ParseTimespan(%q) = %v, want an error", bad, got)
		}
	}
	if got, _ := ParseTimespan("5", time.Millisecond); got != 5*time.Millisecond {
		t.Errorf("ParseTimespan(5, ms) = %v, want 5ms", got)
	}
}

func TestFormatTimespan(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 100 * time.Millisecond, 90 * time.Second, 26*time.Hour + 3*time.Millisecond, year + month, Infinity} {
		s := FormatTimespan(d)
		back, err := ParseTimespan(s, time.Second)
		if err != nil || back != d {
			t.Errorf("FormatTimespan(%v) = %q, which parses to %v, %v", d, s, back, err)
		}
	}
}

func FuzzParseTimespan(f *testing.F) {
	for _, s := range []string{"5", "1min 30s", "1.5h", "infinity", "100ms", "3.", "12 34", "9999999999999y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseTimespan(s, time.Second)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseTimespan(%q) = %v, negative", s, d)
		}
		// What parses formats to a span that parses back to the same
		// value, to the microsecond.
		want := d
		if d != Infinity {
			want = d.Truncate(time.Microsecond)
		}
		back, err := ParseTimespan(FormatTimespan(d), time.Second)
		if err != nil || back != want {
			t.Fatalf("ParseTimespan(%q) = %v, formatted %q, parsed back %v, %v", s, d, FormatTimespan(d), back, err)
		}
	})
}
