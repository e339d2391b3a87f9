package scheduler_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"atoll.dev/atoll/internal/fleet/scheduler"
	"atoll.dev/atoll/internal/unit"
)

// on is a unit assigned to a machine before the placement under test.
type on struct {
	unit    scheduler.Unit
	machine string
}

// defaultMachines: A and B have SSDs, A and C are in the us region.
var defaultMachines = []scheduler.Machine{
	{ID: idA, Metadata: meta("region=us", "disk=ssd")},
	{ID: idB, Metadata: meta("region=eu", "disk=ssd")},
	{ID: idC, Metadata: meta("region=us", "disk=hdd")},
}

func newState(machines []scheduler.Machine, assigned []on) *scheduler.State {
	s := scheduler.NewState()
	for _, m := range machines {
		s.SetMachine(m)
	}
	for _, a := range assigned {
		s.Assign(a.unit, a.machine)
	}
	return s
}

// TestPlace covers every X-Fleet rule, its legacy aliases, the ranking and
// the Rejected counts and Reason text.
func TestPlace(t *testing.T) {
	u := func(name string, xfleet ...string) scheduler.Unit { return parseUnit(t, name, xfleet...) }
	plain := func(name string) scheduler.Unit { return u(name) }
	global := u("global.service", "Global=true")
	tests := []struct {
		name     string
		machines []scheduler.Machine // defaultMachines when nil
		before   []on
		place    scheduler.Unit
		want     scheduler.Decision
	}{
		// Ranking: fewest units, then lowest ID (fleet's sortableAgentStates).
		{name: "empty cluster: lowest ID", place: plain("x.service"),
			want: scheduler.Decision{Machine: idA}},
		{name: "least loaded beats lower ID",
			before: []on{{plain("a.service"), idA}, {plain("b.service"), idB}},
			place:  plain("x.service"), want: scheduler.Decision{Machine: idC}},
		{name: "ties between the least loaded go to the lowest ID",
			before: []on{{plain("a.service"), idA}},
			place:  plain("x.service"), want: scheduler.Decision{Machine: idB}},
		{name: "global units count in load",
			before: []on{{global, idA}, {global, idB}, {plain("a.service"), idA}},
			place:  plain("x.service"), want: scheduler.Decision{Machine: idC}},

		// MachineID, its legacy aliases and the 8-character prefix.
		{name: "MachineID full", place: u("x.service", "MachineID="+idC),
			want: scheduler.Decision{Machine: idC, Rejected: map[string]int{scheduler.MachineID: 2}}},
		{name: "MachineID 8-character prefix", place: u("x.service", "MachineID=cccccccc"),
			want: scheduler.Decision{Machine: idC, Rejected: map[string]int{scheduler.MachineID: 2}}},
		{name: "MachineID beats load",
			before: []on{{plain("a.service"), idB}, {plain("b.service"), idB}},
			place:  u("x.service", "MachineID="+idB),
			want:   scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.MachineID: 2}}},
		{name: "X-ConditionMachineID", place: u("x.service", "X-ConditionMachineID="+idB),
			want: scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.MachineID: 2}}},
		{name: "first MachineID wins", place: u("x.service", "MachineID="+idB, "MachineID="+idC),
			want: scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.MachineID: 2}}},
		{name: "MachineID of no machine", place: u("x.service", "MachineID=eeeeeeee"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.MachineID: 3},
				Reason: "no machine fits: 3 fail MachineID (eeeeeeee)"}},
		{name: "X-ConditionMachineBootID is compared with machine IDs",
			place: u("x.service", "X-ConditionMachineBootID="+idB),
			want:  scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.MachineID: 2}}},
		{name: "X-ConditionMachineBootID of a real boot ID matches nothing",
			place: u("x.service", "X-ConditionMachineBootID=0123456789abcdef0123456789abcdef"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.MachineID: 3},
				Reason: "no machine fits: 3 fail MachineID (0123456789abcdef0123456789abcdef)"}},
		{name: "MachineID before X-ConditionMachineBootID",
			place: u("x.service", "X-ConditionMachineBootID="+idB, "MachineID="+idC),
			want:  scheduler.Decision{Machine: idC, Rejected: map[string]int{scheduler.MachineID: 2}}},

		// MachineMetadata: the same key is OR, different keys AND.
		{name: "MachineMetadata", place: u("x.service", "MachineMetadata=region=eu"),
			want: scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.MachineMetadata: 2}}},
		{name: "MachineMetadata same key is OR",
			machines: []scheduler.Machine{
				{ID: idA, Metadata: meta("region=asia")},
				{ID: idB, Metadata: meta("region=eu")},
				{ID: idC, Metadata: meta("region=us")},
			},
			before: []on{{plain("a.service"), idB}},
			place:  u("x.service", "MachineMetadata=region=eu", "MachineMetadata=region=us"),
			want:   scheduler.Decision{Machine: idC, Rejected: map[string]int{scheduler.MachineMetadata: 1}}},
		{name: "MachineMetadata different keys are AND",
			place: u("x.service", "MachineMetadata=region=us", "MachineMetadata=disk=hdd"),
			want:  scheduler.Decision{Machine: idC, Rejected: map[string]int{scheduler.MachineMetadata: 2}}},
		{name: "MachineMetadata quoted values",
			place: u("x.service", `MachineMetadata="region=us" "disk=hdd"`),
			want:  scheduler.Decision{Machine: idC, Rejected: map[string]int{scheduler.MachineMetadata: 2}}},
		{name: "X-ConditionMachineMetadata", place: u("x.service", "X-ConditionMachineMetadata=region=eu"),
			want: scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.MachineMetadata: 2}}},
		{name: "MachineMetadata on a machine without the key",
			machines: []scheduler.Machine{{ID: idA}, {ID: idB, Metadata: meta("region=us")}},
			place:    u("x.service", "MachineMetadata=region=us"),
			want:     scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.MachineMetadata: 1}}},
		{name: "MachineMetadata nothing fits",
			place: u("x.service", "MachineMetadata=region=asia", "MachineMetadata=region=mars", "MachineMetadata=disk=nvme"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.MachineMetadata: 3},
				Reason: "no machine fits: 3 fail MachineMetadata (disk=nvme, region=asia|mars)"}},

		// MachineOf: every peer already on the machine.
		{name: "MachineOf follows the peer to a loaded machine",
			before: []on{{plain("ping.service"), idC}, {plain("a.service"), idC}},
			place:  u("pong.service", "MachineOf=ping.service"),
			want:   scheduler.Decision{Machine: idC, Rejected: map[string]int{scheduler.MachineOf: 2}}},
		{name: "X-ConditionMachineOf",
			before: []on{{plain("ping.service"), idB}},
			place:  u("pong.service", "X-ConditionMachineOf=ping.service"),
			want:   scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.MachineOf: 2}}},
		{name: "MachineOf two peers together",
			before: []on{{plain("ping.service"), idB}, {plain("pong.service"), idB}},
			place:  u("x.service", "MachineOf=ping.service", "MachineOf=pong.service"),
			want:   scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.MachineOf: 2}}},
		{name: "MachineOf two peers apart",
			before: []on{{plain("ping.service"), idA}, {plain("pong.service"), idB}},
			place:  u("x.service", "MachineOf=ping.service", "MachineOf=pong.service"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.MachineOf: 3},
				Reason: "no machine fits: 3 fail MachineOf (ping.service, pong.service)"}},
		{name: "MachineOf a peer on no machine",
			place: u("web.service", "MachineOf=db.service"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.MachineOf: 3},
				Reason: "no machine fits: 3 fail MachineOf (db.service not placed)"}},
		{name: "MachineOf a global peer where it runs",
			before: []on{{global, idA}, {global, idC}, {plain("a.service"), idA}},
			place:  u("x.service", "MachineOf=global.service"),
			want:   scheduler.Decision{Machine: idC, Rejected: map[string]int{scheduler.MachineOf: 1}}},
		{name: "MachineOf itself never fits",
			before: []on{{u("loop.service", "MachineOf=loop.service"), idB}},
			place:  u("loop.service", "MachineOf=loop.service"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.MachineOf: 3},
				Reason: "no machine fits: 3 fail MachineOf (loop.service is the unit itself)"}},
		{name: "MachineOf after MachineMetadata",
			before: []on{{plain("ping.service"), idB}},
			place:  u("pong.service", "MachineOf=ping.service", "MachineMetadata=region=us"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.MachineMetadata: 1, scheduler.MachineOf: 2},
				Reason: "no machine fits: 1 fails MachineMetadata (region=us), 2 fail MachineOf (ping.service)"}},

		// Conflicts: globs both ways, never the unit itself.
		{name: "Conflicts glob against units on the machine",
			before: []on{{plain("web@1.service"), idA}, {plain("web@2.service"), idB},
				{plain("a.service"), idC}, {plain("b.service"), idC}},
			place: u("web@3.service", "Conflicts=web@*.service"),
			want:  scheduler.Decision{Machine: idC, Rejected: map[string]int{scheduler.Conflicts: 2}}},
		{name: "Conflicts literal",
			before: []on{{plain("db.service"), idA}},
			place:  u("x.service", "Conflicts=db.service"),
			want:   scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.Conflicts: 1}}},
		{name: "Conflicts the other way: a unit there conflicts with this one",
			before: []on{{u("lonely.service", "Conflicts=web@*.service"), idA}},
			place:  plain("web@1.service"),
			want:   scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.Conflicts: 1}}},
		{name: "X-Conflicts",
			before: []on{{plain("db.service"), idA}},
			place:  u("x.service", "X-Conflicts=db.service"),
			want:   scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.Conflicts: 1}}},
		{name: "Conflicts several patterns on one line",
			before: []on{{plain("a.service"), idA}, {plain("b.service"), idB}},
			place:  u("x.service", "Conflicts=a.service b.service"),
			want:   scheduler.Decision{Machine: idC, Rejected: map[string]int{scheduler.Conflicts: 2}}},
		{name: "Conflicts never with itself, nor is its own entry load",
			before: []on{{u("web@1.service", "Conflicts=web@*.service"), idB}},
			place:  u("web@1.service", "Conflicts=web@*.service"),
			want:   scheduler.Decision{Machine: idA}},
		{name: "Conflicts with a global unit there",
			before: []on{{u("g.service", "Global=true", "Conflicts=x.service"), idA},
				{u("g.service", "Global=true", "Conflicts=x.service"), idB}},
			place: plain("x.service"),
			want:  scheduler.Decision{Machine: idC, Rejected: map[string]int{scheduler.Conflicts: 2}}},
		{name: "Conflicts with a global unit by its name",
			before: []on{{global, idA}, {global, idC}},
			place:  u("x.service", "Conflicts=glob*"),
			want:   scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.Conflicts: 2}}},
		{name: "Conflicts nothing fits",
			before: []on{{plain("web@1.service"), idA}, {plain("web@2.service"), idB}, {plain("web@3.service"), idC}},
			place:  u("web@4.service", "Conflicts=web@*"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.Conflicts: 3},
				Reason: "no machine fits: 3 fail Conflicts (web@*)"}},
		{name: "Conflicts both ways: nothing fits",
			before: []on{{plain("web@1.service"), idA}, {u("lonely.service", "Conflicts=web@*.service"), idB},
				{plain("web@2.service"), idC}},
			place: u("web@3.service", "Conflicts=web@*.service"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.Conflicts: 3},
				Reason: "no machine fits: 3 fail Conflicts (web@*.service; units there conflict with web@3.service)"}},
		{name: "Conflicts only the other way: nothing fits",
			machines: []scheduler.Machine{{ID: idA}},
			before:   []on{{u("conflicts-with-hello.service", "Conflicts=hello.service"), idA}},
			place:    plain("hello.service"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.Conflicts: 1},
				Reason: "no machine fits: 1 fails Conflicts (units there conflict with hello.service)"}},

		// Replaces.
		{name: "Replaces displaces the unit on the chosen machine",
			before: []on{{plain("old.service"), idA}, {plain("a.service"), idB},
				{plain("b.service"), idC}, {plain("c.service"), idC}},
			place: u("new.service", "Replaces=old.service"),
			want:  scheduler.Decision{Machine: idA, Displaced: []string{"old.service"}}},
		{name: "Replaces does not draw the unit to the replaced one",
			before: []on{{plain("old.service"), idC}},
			place:  u("new.service", "Replaces=old.service"),
			want:   scheduler.Decision{Machine: idA}},
		{name: "Replaces glob displaces every match",
			before: []on{{plain("old@2.service"), idA}, {plain("old@1.service"), idA},
				{plain("a.service"), idB}, {plain("b.service"), idB},
				{plain("c.service"), idC}, {plain("d.service"), idC}},
			place: u("new.service", "Replaces=old@*.service"),
			want:  scheduler.Decision{Machine: idA, Displaced: []string{"old@1.service", "old@2.service"}}},
		{name: "Replaces keeps the replaced unit off its replacer's machine",
			before: []on{{u("kick.service", "Replaces=old.service"), idA}},
			place:  plain("old.service"),
			want:   scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.Replaces: 1}}},
		{name: "Replaces: nowhere else to go",
			machines: []scheduler.Machine{{ID: idA}},
			before:   []on{{u("kick.service", "Replaces=old.service"), idA}},
			place:    plain("old.service"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.Replaces: 1},
				Reason: "no machine fits: 1 fails Replaces (replaced by kick.service)"}},
		{name: "Replaces circular is ignored",
			machines: []scheduler.Machine{{ID: idA}},
			before:   []on{{u("r0.service", "Replaces=r1.service"), idA}},
			place:    u("r1.service", "Replaces=r0.service"),
			want:     scheduler.Decision{Machine: idA}},
		{name: "Replaces never displaces a global unit",
			before: []on{{global, idA}, {global, idB}, {global, idC}},
			place:  u("new.service", "Replaces=global.service"),
			want:   scheduler.Decision{Machine: idA}},

		// Rejected counts and Reason.
		{name: "Reason counts each machine under its first failure",
			machines: []scheduler.Machine{
				{ID: idA, Metadata: meta("region=eu")},
				{ID: idB, Metadata: meta("region=eu")},
				{ID: idC, Metadata: meta("region=us")},
			},
			before: []on{{plain("web@1.service"), idA}, {plain("web@2.service"), idC}},
			place:  u("web@3.service", "MachineMetadata=region=us", "Conflicts=web@*"),
			want: scheduler.Decision{Rejected: map[string]int{scheduler.MachineMetadata: 2, scheduler.Conflicts: 1},
				Reason: "no machine fits: 2 fail MachineMetadata (region=us), 1 fails Conflicts (web@*)"}},
		{name: "Rejected is filled when a machine fits",
			machines: []scheduler.Machine{
				{ID: idA, Metadata: meta("region=eu")},
				{ID: idB, Metadata: meta("region=eu")},
				{ID: idC, Metadata: meta("region=us")},
				{ID: idD, Metadata: meta("region=us")},
			},
			before: []on{{plain("web@2.service"), idC}},
			place:  u("web@3.service", "MachineMetadata=region=us", "Conflicts=web@*"),
			want: scheduler.Decision{Machine: idD,
				Rejected: map[string]int{scheduler.MachineMetadata: 2, scheduler.Conflicts: 1}}},
		{name: "no machines", machines: []scheduler.Machine{}, place: plain("x.service"),
			want: scheduler.Decision{Reason: "no machines"}},
		{name: "a global unit is not placed by Place", place: global,
			want: scheduler.Decision{Reason: "global unit: it runs on every machine that fits (PlaceGlobal)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			machines := tt.machines
			if machines == nil {
				machines = defaultMachines
			}
			s := newState(machines, tt.before)
			before := snapshot(s)
			got := s.Place(tt.place)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Place(%s) (-want +got):\n%s", tt.place.Name, diff)
			}
			if diff := cmp.Diff(before, snapshot(s)); diff != "" {
				t.Errorf("Place changed the state (-before +after):\n%s", diff)
			}
		})
	}
}

// snapshot is what the State exposes: machines and the units on each.
func snapshot(s *scheduler.State) map[string][]string {
	out := make(map[string][]string)
	for _, m := range s.Machines() {
		out[m.ID] = s.UnitsOn(m.ID)
	}
	return out
}

func TestPlaceGlobal(t *testing.T) {
	u := func(name string, xfleet ...string) scheduler.Unit { return parseUnit(t, name, xfleet...) }
	tests := []struct {
		name     string
		machines []scheduler.Machine // defaultMachines when nil
		before   []on
		place    scheduler.Unit
		want     []string
		decision scheduler.Decision
	}{
		{name: "every machine", place: u("g.service", "Global=true"), want: []string{idA, idB, idC}},
		{name: "metadata", place: u("g.service", "Global=true", "MachineMetadata=region=us"),
			want: []string{idA, idC}, decision: scheduler.Decision{Rejected: map[string]int{scheduler.MachineMetadata: 1}}},
		{name: "metadata OR and AND",
			place: u("g.service", "Global=true", "MachineMetadata=region=us", "MachineMetadata=region=eu", "MachineMetadata=disk=ssd"),
			want:  []string{idA, idB}, decision: scheduler.Decision{Rejected: map[string]int{scheduler.MachineMetadata: 1}}},
		{name: "its conflicts",
			before: []on{{u("db.service"), idB}},
			place:  u("g.service", "Global=true", "Conflicts=db.service"),
			want:   []string{idA, idC}, decision: scheduler.Decision{Rejected: map[string]int{scheduler.Conflicts: 1}}},
		{name: "conflicts of the units there",
			before: []on{{u("db.service", "Conflicts=g.service"), idC}},
			place:  u("g.service", "Global=true"),
			want:   []string{idA, idB}, decision: scheduler.Decision{Rejected: map[string]int{scheduler.Conflicts: 1}}},
		{name: "conflicting global units: the one assigned first keeps the machine",
			before: []on{{u("conflict-global.0.service", "Global=true", "Conflicts=conflict-global.*.service"), idA}},
			place:  u("conflict-global.1.service", "Global=true", "Conflicts=conflict-global.*.service"),
			want:   []string{idB, idC}, decision: scheduler.Decision{Rejected: map[string]int{scheduler.Conflicts: 1}}},
		{name: "already assigned: never conflicts with itself",
			before: []on{{u("g.service", "Global=true", "Conflicts=g*"), idA}, {u("g.service", "Global=true", "Conflicts=g*"), idB}},
			place:  u("g.service", "Global=true", "Conflicts=g*"),
			want:   []string{idA, idB, idC}},
		{name: "nothing fits",
			before: []on{{u("db.service"), idC}},
			place:  u("g.service", "Global=true", "MachineMetadata=disk=hdd", "Conflicts=db.service"),
			decision: scheduler.Decision{Rejected: map[string]int{scheduler.MachineMetadata: 2, scheduler.Conflicts: 1},
				Reason: "no machine fits: 2 fail MachineMetadata (disk=hdd), 1 fails Conflicts (db.service)"}},
		{name: "no machines", machines: []scheduler.Machine{}, place: u("g.service", "Global=true"),
			decision: scheduler.Decision{Reason: "no machines"}},
		{name: "not global", place: u("x.service"),
			decision: scheduler.Decision{Reason: "not a global unit: it runs on one machine (Place)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			machines := tt.machines
			if machines == nil {
				machines = defaultMachines
			}
			s := newState(machines, tt.before)
			before := snapshot(s)
			got, decision := s.PlaceGlobal(tt.place)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("PlaceGlobal(%s) machines (-want +got):\n%s", tt.place.Name, diff)
			}
			if diff := cmp.Diff(tt.decision, decision); diff != "" {
				t.Errorf("PlaceGlobal(%s) decision (-want +got):\n%s", tt.place.Name, diff)
			}
			if diff := cmp.Diff(before, snapshot(s)); diff != "" {
				t.Errorf("PlaceGlobal changed the state (-before +after):\n%s", diff)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	u := func(name string, xfleet ...string) scheduler.Unit { return parseUnit(t, name, xfleet...) }
	s := newState(defaultMachines, []on{
		{u("ping.service"), idA},
		{u("pong.service", "MachineOf=ping.service"), idA},
		{u("old.service"), idB},
	})
	tests := []struct {
		name    string
		unit    scheduler.Unit
		machine string
		want    scheduler.Decision
	}{
		{name: "fits where it is", unit: u("pong.service", "MachineOf=ping.service"), machine: idA,
			want: scheduler.Decision{Machine: idA}},
		{name: "peer elsewhere", unit: u("pong.service", "MachineOf=ping.service"), machine: idB,
			want: scheduler.Decision{Rejected: map[string]int{scheduler.MachineOf: 1},
				Reason: "machine " + idB + " fails MachineOf (ping.service)"}},
		{name: "metadata", unit: u("ping.service", "MachineMetadata=region=eu"), machine: idA,
			want: scheduler.Decision{Rejected: map[string]int{scheduler.MachineMetadata: 1},
				Reason: "machine " + idA + " fails MachineMetadata (region=eu)"}},
		{name: "displaces", unit: u("new.service", "Replaces=old.service"), machine: idB,
			want: scheduler.Decision{Machine: idB, Displaced: []string{"old.service"}}},
		{name: "global", unit: u("g.service", "Global=true", "Conflicts=ping.service"), machine: idA,
			want: scheduler.Decision{Rejected: map[string]int{scheduler.Conflicts: 1},
				Reason: "machine " + idA + " fails Conflicts (ping.service)"}},
		{name: "unknown machine", unit: u("x.service"), machine: idD,
			want: scheduler.Decision{Reason: "no machine " + idD}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, s.Check(tt.unit, tt.machine)); diff != "" {
				t.Errorf("Check(%s, %s) (-want +got):\n%s", tt.unit.Name, tt.machine, diff)
			}
		})
	}
}

// TestInvalidCombinations shows the sections fleet's API refuses: they are
// refused by unit.Fleet and never reach the scheduler.
func TestInvalidCombinations(t *testing.T) {
	tests := []struct {
		name   string
		xfleet []string
	}{
		{"MachineID with MachineOf", []string{"MachineID=" + idA, "MachineOf=b.service"}},
		{"X-ConditionMachineID with X-ConditionMachineOf", []string{"X-ConditionMachineID=" + idA, "X-ConditionMachineOf=b.service"}},
		{"MachineID with Conflicts", []string{"MachineID=" + idA, "Conflicts=b.service"}},
		{"X-ConditionMachineBootID with X-Conflicts", []string{"X-ConditionMachineBootID=" + idA, "X-Conflicts=b.service"}},
		{"MachineID with Global", []string{"MachineID=" + idA, "Global=true"}},
		{"MachineID with Replaces", []string{"MachineID=" + idA, "Replaces=b.service"}},
		{"Global with MachineOf", []string{"Global=true", "MachineOf=b.service"}},
		{"Global with Replaces", []string{"Global=true", "Replaces=b.service"}},
		{"Conflicts with Replaces", []string{"Conflicts=b.service", "Replaces=c.service"}},
		{"peer matches own Conflicts", []string{"MachineOf=db.service", "Conflicts=db*"}},
		{"peer matches own Replaces", []string{"MachineOf=db.service", "Replaces=*.service"}},
		{"empty MachineID", []string{"MachineID="}},
		{"empty MachineOf", []string{"MachineOf="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fleetOf("a.service", tt.xfleet...)
			if !errors.Is(err, unit.ErrInvalidFleet) {
				t.Errorf("Fleet of %q: got error %v, want one wrapping %v", tt.xfleet, err, unit.ErrInvalidFleet)
			}
		})
	}
}

func TestPeerOrder(t *testing.T) {
	u := func(name string, xfleet ...string) scheduler.Unit { return parseUnit(t, name, xfleet...) }
	units := []scheduler.Unit{
		u("a.service", "MachineOf=z.service"),
		u("z.service", "MachineOf=m.service"),
		u("b.service"),
		u("m.service"),
		u("c.service", "MachineOf=gone.service"),
		u("loop1.service", "MachineOf=loop2.service"),
		u("loop2.service", "MachineOf=loop1.service"),
	}
	var got []string
	for _, pu := range scheduler.PeerOrder(units) {
		got = append(got, pu.Name)
	}
	want := []string{"m.service", "z.service", "a.service", "b.service", "c.service", "loop2.service", "loop1.service"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PeerOrder (-want +got):\n%s", diff)
	}
	if units[0].Name != "a.service" {
		t.Errorf("PeerOrder changed its argument: units[0] is %s, want a.service", units[0].Name)
	}

	// Placing in PeerOrder settles a chain in one pass.
	s := newState(defaultMachines, []on{{u("x.service"), idA}, {u("y.service"), idB}})
	for _, pu := range scheduler.PeerOrder(units[:4]) {
		d := s.Place(pu)
		if d.Machine == "" {
			t.Fatalf("Place(%s): %s", pu.Name, d.Reason)
		}
		s.Assign(pu, d.Machine)
	}
	for _, name := range []string{"a.service", "z.service", "m.service"} {
		if got, _ := s.MachineOf(name); got != idC {
			t.Errorf("%s on %s, want %s with its peers", name, got, idC)
		}
	}
}
