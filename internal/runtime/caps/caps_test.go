//go:build linux

package caps

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDefaultIsDockers14(t *testing.T) {
	want := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP",
	}
	got := Default().Names()
	if !slices.Equal(got, want) {
		t.Errorf("Default().Names() = %v, want %v", got, want)
	}
	if n := Default().Len(); n != 14 {
		t.Errorf("Default().Len() = %d, want 14", n)
	}
	if s := Default().String(); s != strings.Join(want, ",") {
		t.Errorf("Default().String() = %q, want %q", s, strings.Join(want, ","))
	}
}

func TestTable(t *testing.T) {
	if len(names) != 41 {
		t.Errorf("table has %d names, want 41 (CAP_CHOWN..CAP_CHECKPOINT_RESTORE)", len(names))
	}
	for i, n := range names {
		if !strings.HasPrefix(n, "CAP_") {
			t.Errorf("names[%d] = %q, want a CAP_ name", i, n)
		}
	}
	if got, want := Cap(unix.CAP_LAST_CAP).String(), "CAP_CHECKPOINT_RESTORE"; got != want {
		t.Errorf("Cap(CAP_LAST_CAP) = %q, want %q", got, want)
	}
	if got, want := Cap(50).String(), "CAP_50"; got != want {
		t.Errorf("Cap(50) = %q, want %q", got, want)
	}
	if got, want := Set(1<<50|1).Names(), []string{"CAP_CHOWN", "CAP_50"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in      []string
		want    Set
		wantErr string // substring; "" means no error
	}{
		{in: nil, want: 0},
		{in: []string{"CAP_NET_ADMIN"}, want: Of(unix.CAP_NET_ADMIN)},
		{in: []string{"NET_ADMIN"}, want: Of(unix.CAP_NET_ADMIN)},
		{in: []string{"net_admin"}, want: Of(unix.CAP_NET_ADMIN)},
		{in: []string{"cap_net_admin"}, want: Of(unix.CAP_NET_ADMIN)},
		{in: []string{" Cap_Sys_Admin "}, want: Of(unix.CAP_SYS_ADMIN)},
		{in: []string{"chown", "CAP_CHOWN", "kill"}, want: Of(unix.CAP_CHOWN, unix.CAP_KILL)},
		{in: []string{"CAP_CHECKPOINT_RESTORE"}, want: Of(unix.CAP_CHECKPOINT_RESTORE)},
		{in: []string{"CAP_NET_ADMN"}, wantErr: `unknown capability "CAP_NET_ADMN" (did you mean CAP_NET_ADMIN?)`},
		{in: []string{"sysadmin"}, wantErr: `unknown capability "sysadmin" (did you mean CAP_SYS_ADMIN?)`},
		{in: []string{"CAP_SYS_CHROOOT"}, wantErr: `(did you mean CAP_SYS_CHROOT?)`},
		{in: []string{"chown", "CAP_FROBNICATE_EVERYTHING"}, wantErr: `unknown capability "CAP_FROBNICATE_EVERYTHING"`},
		{in: []string{""}, wantErr: "unknown capability: empty name"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			if !errors.Is(err, ErrUnknown) {
				t.Errorf("Parse(%q) error = %v, want errors.Is ErrUnknown", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseNoFarSuggestion(t *testing.T) {
	_, err := Parse([]string{"CAP_FROBNICATE_EVERYTHING"})
	if err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("Parse error = %v, want one without a suggestion", err)
	}
}

func TestParseEveryName(t *testing.T) {
	for i, n := range names {
		s, err := Parse([]string{n, strings.ToLower(strings.TrimPrefix(n, "CAP_"))})
		if err != nil || s != Of(Cap(i)) {
			t.Errorf("Parse(%s) = %v, %v; want %v, nil", n, s, err, Of(Cap(i)))
		}
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name           string
		retain, remove []string
		want           Set
		wantErr        error
		wantMsg        string
	}{
		{name: "neither", want: Default()},
		{name: "empty lists", retain: []string{}, remove: []string{}, want: Default()},
		{name: "retain replaces", retain: []string{"NET_ADMIN", "sys_admin"}, want: Of(unix.CAP_NET_ADMIN, unix.CAP_SYS_ADMIN)},
		{name: "remove removes", remove: []string{"CAP_NET_RAW", "mknod"}, want: Default() &^ Of(unix.CAP_NET_RAW, unix.CAP_MKNOD)},
		{name: "remove absent is fine", remove: []string{"SYS_ADMIN"}, want: Default()},
		{name: "both", retain: []string{"CHOWN"}, remove: []string{"KILL"}, wantErr: ErrRetainAndRemove, wantMsg: "cannot be used together"},
		{name: "bad retain", retain: []string{"NET_ADMN"}, wantErr: ErrUnknown, wantMsg: `--caps-retain: unknown capability "NET_ADMN" (did you mean CAP_NET_ADMIN?)`},
		{name: "bad remove", remove: []string{"NET_RAWW"}, wantErr: ErrUnknown, wantMsg: `--caps-remove: unknown capability "NET_RAWW" (did you mean CAP_NET_RAW?)`},
	}
	for _, tt := range tests {
		got, err := Resolve(tt.retain, tt.remove)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("%s: Resolve error = %v, want %v containing %q", tt.name, err, tt.wantErr, tt.wantMsg)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: Resolve = %v, %v; want %v, nil", tt.name, got, err, tt.want)
		}
	}
}

func TestSetOps(t *testing.T) {
	s := Of(0, 5, 63, 64, -1)
	if got, want := s, Set(1|1<<5|1<<63); got != want {
		t.Errorf("Of = %#x, want %#x", uint64(got), uint64(want))
	}
	if !s.Has(63) || s.Has(64) || s.Has(-1) || s.Has(1) {
		t.Errorf("Has on %#x: got wrong answers", uint64(s))
	}
	if got, want := s.Caps(), []Cap{0, 5, 63}; !slices.Equal(got, want) {
		t.Errorf("Caps() = %v, want %v", got, want)
	}
	if got := Set(0).String(); got != "" {
		t.Errorf("empty String() = %q, want %q", got, "")
	}
	if Known != Set(1)<<41-1 {
		t.Errorf("Known = %#x, want %#x", uint64(Known), uint64(Set(1)<<41-1))
	}
}
