package journal

import (
	"errors"
	"strings"
	"testing"
	"testing/quick"
)

func TestEscapeUnit(t *testing.T) {
	cases := []struct{ unit, dir string }{
		{"web.service", "web.service"},
		{"web@1.service", "web@1.service"},
		{"a_b-c:d.service", "a_b-c:d.service"},
		{`foo\x2dbar.service`, "foo%5Cx2dbar.service"},
		{"../etc/passwd", "%2E.%2Fetc%2Fpasswd"},
		{".hidden", "%2Ehidden"},
		{".", "%2E"},
		{"a b%c", "a%20b%25c"},
		{"日", "%E6%97%A5"},
	}
	for _, tc := range cases {
		got, err := escapeUnit(tc.unit)
		if err != nil || got != tc.dir {
			t.Errorf("escapeUnit(%q) = %q, %v; want %q", tc.unit, got, err, tc.dir)
			continue
		}
		back, ok := unescapeUnit(got)
		if !ok || back != tc.unit {
			t.Errorf("unescapeUnit(%q) = %q, %v; want %q", got, back, ok, tc.unit)
		}
	}
	for _, bad := range []string{"", strings.Repeat("é", 60)} {
		if _, err := escapeUnit(bad); !errors.Is(err, ErrInvalidUnit) {
			t.Errorf("escapeUnit(%q) error = %v, want ErrInvalidUnit", bad, err)
		}
	}
}

func TestUnescapeUnitRefusesOtherNames(t *testing.T) {
	for _, dir := range []string{"", ".tmp", "a%2", "a%zz", "a%41", "a%2e", "a b", "lost+found"} {
		if unit, ok := unescapeUnit(dir); ok {
			t.Errorf("unescapeUnit(%q) = %q, want it refused", dir, unit)
		}
	}
}

func TestEscapeUnitRoundTrips(t *testing.T) {
	f := func(unit string) bool {
		dir, err := escapeUnit(unit)
		if err != nil {
			return unit == "" || len(unit) > maxDirName/3
		}
		if strings.ContainsAny(dir, "/\x00") || dir == "." || dir == ".." {
			return false
		}
		back, ok := unescapeUnit(dir)
		return ok && back == unit
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 5000}); err != nil {
		t.Error(err)
	}
}
