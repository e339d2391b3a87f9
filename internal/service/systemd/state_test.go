package systemd

import (
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
