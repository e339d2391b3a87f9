package fleetapi

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/unit"
)

func TestDeriveUnit(t *testing.T) {
	h1 := unit.Hash{1}
	h2 := unit.Hash{2}
	web := registry.Unit{Name: "web.service", Hash: h1, DesiredState: registry.Launched}
	place := func(machine string, h unit.Hash) registry.Placement {
		return registry.Placement{Unit: "web.service", Machine: machine, Hash: h, DesiredState: registry.Launched}
	}
	state := func(machine string, h unit.Hash, reached registry.DesiredState) registry.UnitState {
		return registry.UnitState{Unit: "web.service", Machine: machine, Hash: h, LoadState: "loaded", ActiveState: "active", SubState: "running", Reached: reached}
	}
	other := registry.Placement{Unit: "other.service", Machine: "m9", Hash: h1}
	otherState := registry.UnitState{Unit: "other.service", Machine: "m1", Hash: h1, Reached: registry.Launched}

	tests := []struct {
		name   string
		unit   registry.Unit
		global bool
		snap   registry.Snapshot
		want   schema.Unit
	}{
		{
			name: "not scheduled",
			unit: web,
			snap: registry.Snapshot{Schedule: []registry.Placement{other}, States: []registry.UnitState{otherState}},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "inactive"},
		},
		{
			name: "scheduled, no report yet",
			unit: web,
			snap: registry.Snapshot{Schedule: []registry.Placement{place("m1", h1), other}},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "inactive", MachineID: "m1"},
		},
		{
			name: "launched",
			unit: web,
			snap: registry.Snapshot{Schedule: []registry.Placement{place("m1", h1)}, States: []registry.UnitState{state("m1", h1, registry.Launched)}},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "launched", MachineID: "m1"},
		},
		{
			name: "loaded",
			unit: web,
			snap: registry.Snapshot{Schedule: []registry.Placement{place("m1", h1)}, States: []registry.UnitState{state("m1", h1, registry.Loaded)}},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "loaded", MachineID: "m1"},
		},
		{
			name: "reported but not converged",
			unit: web,
			snap: registry.Snapshot{Schedule: []registry.Placement{place("m1", h1)}, States: []registry.UnitState{state("m1", h1, "")}},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "inactive", MachineID: "m1"},
		},
		{
			name: "report of the old file",
			unit: web,
			snap: registry.Snapshot{Schedule: []registry.Placement{place("m1", h1)}, States: []registry.UnitState{state("m1", h2, registry.Launched)}},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "inactive", MachineID: "m1"},
		},
		{
			name: "report from the machine it left",
			unit: web,
			snap: registry.Snapshot{Schedule: []registry.Placement{place("m2", h1)}, States: []registry.UnitState{state("m1", h1, registry.Launched)}},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "inactive", MachineID: "m2"},
		},
		{
			name: "file replaced, placement not yet: the placed file's state",
			unit: registry.Unit{Name: "web.service", Hash: h2, DesiredState: registry.Launched},
			snap: registry.Snapshot{Schedule: []registry.Placement{place("m1", h1)}, States: []registry.UnitState{state("m1", h1, registry.Launched)}},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "launched", MachineID: "m1"},
		},
		{
			name: "on two machines while moving",
			unit: web,
			snap: registry.Snapshot{
				Schedule: []registry.Placement{place("m1", h1), place("m2", h1)},
				States:   []registry.UnitState{state("m1", h1, registry.Launched)},
			},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "inactive"},
		},
		{
			name:   "global: no machine, inactive, as fleet lists it",
			unit:   web,
			global: true,
			snap: registry.Snapshot{
				Schedule: []registry.Placement{place("m1", h1)},
				States:   []registry.UnitState{state("m1", h1, registry.Launched)},
			},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "inactive"},
		},
		{
			name: "unplaced",
			unit: web,
			snap: registry.Snapshot{Unplaced: map[string]registry.Unplaced{"web.service": {Unit: "web.service", Hash: h1, Reason: "no machine fits"}}},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "inactive", Reason: "no machine fits"},
		},
		{
			name: "unplaced record of the old file",
			unit: web,
			snap: registry.Snapshot{Unplaced: map[string]registry.Unplaced{"web.service": {Unit: "web.service", Hash: h2, Reason: "no machine fits"}}},
			want: schema.Unit{Name: "web.service", DesiredState: "launched", CurrentState: "inactive"},
		},
		{
			name: "inactive unit",
			unit: registry.Unit{Name: "web.service", Hash: h1, DesiredState: registry.Inactive},
			want: schema.Unit{Name: "web.service", DesiredState: "inactive", CurrentState: "inactive"},
		},
	}
	for _, tt := range tests {
		got := deriveUnit(&tt.snap, tt.unit, tt.global)
		if diff := cmp.Diff(tt.want, *got); diff != "" {
			t.Errorf("%s: unit differs (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestUnitStatesAndMachines(t *testing.T) {
	snap := &registry.Snapshot{
		States: []registry.UnitState{
			{Unit: "b.service", Machine: "m1", Hash: unit.Hash{0xab}, LoadState: "loaded", ActiveState: "active", SubState: "running"},
			{Unit: "a.service", Machine: "m2"},
			{Unit: "a.service", Machine: "m1"},
		},
		Machines: map[string]registry.Machine{
			"m2": {ID: "m2", PublicIP: "10.0.0.2"},
			"m1": {ID: "m1", PublicIP: "10.0.0.1", Metadata: map[string]string{"a": "b"}, APIURL: "https://10.0.0.1:4002"},
			"m3": {}, // an ID only in its key
		},
	}
	states := unitStates(snap, "", "")
	var order []string
	for _, s := range states {
		order = append(order, s.Name+"@"+s.MachineID)
	}
	if diff := cmp.Diff([]string{"a.service@m1", "a.service@m2", "b.service@m1"}, order); diff != "" {
		t.Errorf("state order (-want +got):\n%s", diff)
	}
	want := &schema.UnitState{Name: "b.service", MachineID: "m1", Hash: unit.Hash{0xab}.String(), SystemdLoadState: "loaded", SystemdActiveState: "active", SystemdSubState: "running"}
	if diff := cmp.Diff(want, states[2]); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
	if states[0].Hash != "" {
		t.Errorf("a zero hash shows as %q, want none", states[0].Hash)
	}
	if got := unitStates(snap, "m2", "b.service"); len(got) != 0 {
		t.Errorf("filter m2 b.service: %v, want none", got)
	}

	wantMachines := []*schema.Machine{
		{ID: "m1", PrimaryIP: "10.0.0.1", Metadata: map[string]string{"a": "b"}},
		{ID: "m2", PrimaryIP: "10.0.0.2"},
		{ID: "m3"},
	}
	if diff := cmp.Diff(wantMachines, machines(snap)); diff != "" {
		t.Errorf("machines (-want +got):\n%s", diff)
	}
}

func TestExtractPage(t *testing.T) {
	all := []int{1, 2, 3, 4, 5}
	tests := []struct {
		tok      pageToken
		want     []int
		wantNext string
	}{
		{pageToken{2, 1}, []int{1, 2}, pageToken{2, 2}.encode()},
		{pageToken{2, 3}, []int{5}, ""},
		{pageToken{5, 1}, []int{1, 2, 3, 4, 5}, pageToken{5, 2}.encode()},
		{pageToken{5, 2}, nil, ""},
		{pageToken{100, 1}, []int{1, 2, 3, 4, 5}, ""},
		{pageToken{0xffff, 0xffff}, nil, ""},
	}
	for _, tt := range tests {
		got, next := extractPage(all, tt.tok)
		if diff := cmp.Diff(tt.want, got); diff != "" || next != tt.wantNext {
			t.Errorf("page %+v: got %v next %q, want %v next %q", tt.tok, got, next, tt.want, tt.wantNext)
		}
	}
}

func TestPageTokenCodec(t *testing.T) {
	// fleet's fixtures (coreos/fleet: api/pagination_test.go).
	for tok, want := range map[pageToken]string{{Limit: 12482}: "wjAAAA==", {Limit: 19, Page: 11852}: "EwBMLg=="} {
		if got := tok.encode(); got != want {
			t.Errorf("encode %+v = %q, want %q", tok, got, want)
		}
	}
	for s, want := range map[string]pageToken{"_wMAAA==": {Limit: 1023}, "LQAJAA==": {Limit: 45, Page: 9}, "ZABMLg==": {Limit: 100, Page: 11852}} {
		if got, err := decodePageToken(s); err != nil || got != want {
			t.Errorf("decode %q = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"basdfasdf", "", "AA==", "ZABMLg"} {
		if got, err := decodePageToken(s); err == nil {
			t.Errorf("decode %q = %+v, want an error", s, got)
		}
	}
}
