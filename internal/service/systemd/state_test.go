package systemd

import (
	"math"
	"slices"
	"testing"
	"time"

	"atoll.dev/atoll/internal/journal"
	"atoll.dev/atoll/internal/service"
)

func TestStateFromProperties(t *testing.T) {
	since := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	unitProps := map[string]any{
		"LoadState":            "loaded",
		"ActiveState":          "failed",
		"SubState":             "failed",
		"Description":          "Web",
		"UnitFileState":        "enabled-runtime",
		"StateChangeTimestamp": uint64(since.UnixMicro()),
	}
	serviceProps := map[string]any{
		"MainPID":        uint32(0),
		"Result":         "signal",
		"ExecMainCode":   int32(2),
		"ExecMainStatus": int32(9),
		"ControlGroup":   "",
		"StatusText":     "dying",
	}
	got := stateFromProperties("web.service", unitProps, serviceProps)
	want := service.UnitState{
		Name: "web.service", Description: "Web", Load: service.Loaded, Active: service.Failed, Sub: "failed",
		Since: time.UnixMicro(since.UnixMicro()), Result: "signal", ExitCode: "killed", ExitStatus: 9,
		Status: "dying", Enabled: "enabled",
	}
	if got != want {
		t.Errorf("state\n got %+v\nwant %+v", got, want)
	}
	// A unit that never ran: no exit, success, no time.
	got = stateFromProperties("new.service", map[string]any{"ActiveState": "inactive", "StateChangeTimestamp": uint64(0)},
		map[string]any{"ExecMainCode": int32(0), "Result": "success"})
	if got.ExitCode != "" || got.Result != "success" || !got.Since.IsZero() {
		t.Errorf("a unit that never ran: %+v", got)
	}
}

func TestFileState(t *testing.T) {
	for in, want := range map[string]string{
		"enabled": "enabled", "enabled-runtime": "enabled", "disabled": "disabled",
		"static": "static", "linked-runtime": "linked", "masked-runtime": "masked", "": "",
	} {
		if got := fileState(in); got != want {
			t.Errorf("fileState(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJournalctlArgs(t *testing.T) {
	since := time.Unix(1700000000, 250000000)
	for _, tc := range []struct {
		o    journal.ReadOptions
		want []string
	}{
		{journal.ReadOptions{}, []string{"--lines=all"}},
		{journal.ReadOptions{Lines: 5, Follow: true}, []string{"--lines=5", "--follow"}},
		{journal.ReadOptions{Since: since}, []string{"--lines=all", "--since=@1700000000.250000"}},
	} {
		base := []string{"--unit=web.service", "--output=json", "--all", "--no-pager", "--quiet"}
		if got := journalctlArgs("web.service", tc.o); !slices.Equal(got, append(base, tc.want...)) {
			t.Errorf("%+v: args %q, want %q", tc.o, got, append(base, tc.want...))
		}
	}
}

func TestNewNeedsStateDir(t *testing.T) {
	if _, err := New(t.Context(), Options{}); err == nil {
		t.Error("New without StateDir: no error")
	}
}

// A timer's properties: the earlier of its two next elapses on the wall
// clock (the monotonic one shifted by the clocks' difference), the last
// trigger, and the unit it triggers; USEC_INFINITY and zero mean none.
func TestTimerState(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	mono := 1000 * time.Second
	unitProps := map[string]any{"ActiveState": "active", "SubState": "waiting", "Triggers": []string{"backup.service"}}
	timerProps := map[string]any{
		"NextElapseUSecRealtime":  uint64(now.Add(time.Hour).UnixMicro()),
		"NextElapseUSecMonotonic": uint64((mono + 90*time.Second) / time.Microsecond),
		"LastTriggerUSec":         uint64(now.Add(-time.Minute).UnixMicro()),
		"Result":                  "success",
	}
	st := service.UnitState{Name: "backup.timer"}
	applyUnitProperties(&st, unitProps)
	applyTimerProperties(&st, timerProps, now, mono)
	if !st.NextElapse.Equal(now.Add(90*time.Second)) || !st.LastTrigger.Equal(now.Add(-time.Minute)) || st.Triggers != "backup.service" {
		t.Errorf("next %v, last %v, triggers %q; want %v, %v, backup.service", st.NextElapse, st.LastTrigger, st.Triggers, now.Add(90*time.Second), now.Add(-time.Minute))
	}
	timerProps["NextElapseUSecMonotonic"] = uint64(math.MaxUint64)
	timerProps["LastTriggerUSec"] = uint64(0)
	applyTimerProperties(&st, timerProps, now, mono)
	if !st.NextElapse.Equal(now.Add(time.Hour)) || !st.LastTrigger.IsZero() {
		t.Errorf("next %v, last %v; want %v and none", st.NextElapse, st.LastTrigger, now.Add(time.Hour))
	}
	timerProps["NextElapseUSecRealtime"] = uint64(0)
	applyTimerProperties(&st, timerProps, now, mono)
	if !st.NextElapse.IsZero() {
		t.Errorf("elapsed timer: next %v, want none", st.NextElapse)
	}
	svc := service.UnitState{Name: "backup.service"}
	applyUnitProperties(&svc, map[string]any{"Triggers": []string{"x.service"}})
	if svc.Triggers != "" {
		t.Errorf("a service's Triggers %q, want none: it is a timer's column", svc.Triggers)
	}
}
