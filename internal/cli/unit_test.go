package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"atoll.dev/atoll/api"
)

// list-timers keeps only timers, the next to elapse first and those that
// will not elapse again last, in systemctl list-timers' columns.
func TestListTimers(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	units := []api.UnitState{
		{Name: "web.service"},
		{Name: "done.timer", LastTrigger: now.Add(-2 * time.Hour), Triggers: "done.service"},
		{Name: "late.timer", NextElapse: now.Add(3 * time.Hour), Triggers: "late.service"},
		{Name: "soon.timer", NextElapse: now.Add(90 * time.Second), LastTrigger: now.Add(-30 * time.Second), Triggers: "soon.service"},
	}
	timers := timersByNextElapse(units)
	var names []string
	for _, u := range timers {
		names = append(names, u.Name)
	}
	if got := strings.Join(names, " "); got != "soon.timer late.timer done.timer" {
		t.Fatalf("order %q, want soon.timer late.timer done.timer", got)
	}
	var out bytes.Buffer
	printTimers(&out, timers, now, false)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "NEXT") || lines[5] != "3 timers listed." {
		t.Fatalf("table:\n%s", out.String())
	}
	for i, want := range [][]string{
		{"Wed 2026-11-25 12:01:30 UTC", "1m left", "Wed 2026-11-25 11:59:30 UTC", "30s ago", "soon.timer", "soon.service"},
		{"3h left", "-", "late.timer", "late.service"},
		{"- ", "10:00:00 UTC", "2h ago", "done.timer", "done.service"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %d %q lacks %q", i+1, lines[i+1], w)
			}
		}
	}
	out.Reset()
	printTimers(&out, timers, now, true)
	if strings.Contains(out.String(), "NEXT") || strings.Contains(out.String(), "listed") {
		t.Errorf("--no-legend printed a legend:\n%s", out.String())
	}
}
