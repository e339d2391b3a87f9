package scheduler_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"atoll.dev/atoll/internal/fleet/scheduler"
)

func TestBookkeeping(t *testing.T) {
	u := func(name string, xfleet ...string) scheduler.Unit { return parseUnit(t, name, xfleet...) }
	global := u("g.service", "Global=true")
	web := u("web.service")
	s := scheduler.NewState()
	s.SetMachine(scheduler.Machine{ID: idC})
	s.SetMachine(scheduler.Machine{ID: idA, Metadata: meta("region=us")})
	s.SetMachine(scheduler.Machine{ID: idB})

	want := []scheduler.Machine{{ID: idA, Metadata: meta("region=us")}, {ID: idB}, {ID: idC}}
	if diff := cmp.Diff(want, s.Machines()); diff != "" {
		t.Errorf("Machines (-want +got):\n%s", diff)
	}
	s.Machines()[0].Metadata["region"] = "changed"
	if got := s.Machines()[0].Metadata["region"]; got != "us" {
		t.Errorf("Machines shares its metadata: region is %q after a caller changed it, want us", got)
	}

	s.Assign(web, idA)
	s.Assign(web, idB) // moves
	if got, ok := s.MachineOf("web.service"); !ok || got != idB {
		t.Errorf("MachineOf(web.service) = %q, %v after moving it, want %s, true", got, ok, idB)
	}
	if got := s.UnitsOn(idA); len(got) != 0 {
		t.Errorf("UnitsOn(A) = %v after web.service moved away, want none", got)
	}
	s.Assign(global, idA)
	s.Assign(global, idB)
	s.Assign(global, idB) // twice is once
	s.Assign(u("db.service"), idB)
	s.Assign(u("lost.service"), idD) // unknown machine: ignored
	if got, ok := s.MachineOf("lost.service"); ok {
		t.Errorf("MachineOf(lost.service) = %q after assigning it to an unknown machine, want none", got)
	}
	if got, ok := s.MachineOf("g.service"); ok {
		t.Errorf("MachineOf(g.service) = %q for a global unit, want none", got)
	}
	if diff := cmp.Diff([]string{"db.service", "g.service", "web.service"}, s.UnitsOn(idB)); diff != "" {
		t.Errorf("UnitsOn(B) (-want +got):\n%s", diff)
	}
	for id, want := range map[string]int{idA: 1, idB: 3, idC: 0, idD: 0} {
		if got := s.Load(id); got != want {
			t.Errorf("Load(%s) = %d, want %d", id, got, want)
		}
	}

	s.Unassign("g.service", idA)
	if got := s.Load(idA); got != 0 {
		t.Errorf("Load(A) = %d after Unassign, want 0", got)
	}

	// RemoveMachine returns the non-global units, which are now nowhere.
	if diff := cmp.Diff([]string{"db.service", "web.service"}, s.RemoveMachine(idB)); diff != "" {
		t.Errorf("RemoveMachine(B) (-want +got):\n%s", diff)
	}
	if s.HasMachine(idB) || !s.HasMachine(idA) {
		t.Errorf("HasMachine(B) = %v, HasMachine(A) = %v after removing B, want false, true", s.HasMachine(idB), s.HasMachine(idA))
	}
	if got, ok := s.MachineOf("web.service"); ok {
		t.Errorf("MachineOf(web.service) = %q after its machine went away, want none", got)
	}
	if got := s.RemoveMachine(idB); got != nil {
		t.Errorf("RemoveMachine(B) again = %v, want nil", got)
	}

	// SetMachine updates metadata in place and keeps the units.
	s.Assign(web, idA)
	s.SetMachine(scheduler.Machine{ID: idA, Metadata: meta("region=eu")})
	if d := s.Check(u("web.service", "MachineMetadata=region=us"), idA); d.Machine != "" {
		t.Errorf("Check after the metadata changed: placed on %s, want refused", d.Machine)
	}
	if diff := cmp.Diff([]string{"web.service"}, s.UnitsOn(idA)); diff != "" {
		t.Errorf("UnitsOn(A) after SetMachine (-want +got):\n%s", diff)
	}
}

// TestReassignNewFleet: assigning a unit with a changed [X-Fleet] section
// re-indexes it, so its old patterns no longer count.
func TestReassignNewFleet(t *testing.T) {
	u := func(name string, xfleet ...string) scheduler.Unit { return parseUnit(t, name, xfleet...) }
	s := newState([]scheduler.Machine{{ID: idA}}, []on{{u("a.service", "Conflicts=b.service"), idA}})
	if d := s.Place(u("b.service")); d.Machine != "" {
		t.Fatalf("Place(b.service) next to a unit conflicting with it: got %s, want nothing", d.Machine)
	}
	s.Assign(u("a.service"), idA)
	if d := s.Place(u("b.service")); d.Machine != idA {
		t.Errorf("Place(b.service) after a.service dropped its Conflicts: got %q (%s), want %s", d.Machine, d.Reason, idA)
	}

	// A global unit that becomes non-global is left on one machine.
	s.SetMachine(scheduler.Machine{ID: idB})
	s.Assign(u("g.service", "Global=true"), idA)
	s.Assign(u("g.service", "Global=true"), idB)
	s.Assign(u("g.service"), idB)
	if got := s.UnitsOn(idA); !cmp.Equal(got, []string{"a.service"}) {
		t.Errorf("UnitsOn(A) = %v after g.service became non-global on B, want [a.service]", got)
	}
	if got, _ := s.MachineOf("g.service"); got != idB {
		t.Errorf("MachineOf(g.service) = %q, want %s", got, idB)
	}
}

// TestGlobCache: the index of names a glob matches follows assignments
// made after the glob was first asked about, and survives being dropped.
func TestGlobCache(t *testing.T) {
	u := func(name string, xfleet ...string) scheduler.Unit { return parseUnit(t, name, xfleet...) }
	// C is the most loaded, so only Conflicts sends web@9 there.
	s := newState(defaultMachines, []on{{u("x.service"), idC}, {u("y.service"), idC}})
	web := u("web@9.service", "Conflicts=web@*.service")
	if d := s.Place(web); d.Machine != idA {
		t.Fatalf("Place on an empty cluster: %q, want %s", d.Machine, idA)
	}
	s.Assign(u("web@1.service"), idA)
	s.Assign(u("web@2.service"), idB)
	if d := s.Place(web); d.Machine != idC {
		t.Errorf("Place after web@1 and web@2 took A and B: %q, want %s", d.Machine, idC)
	}
	s.Unassign("web@1.service", idA)
	if d := s.Place(web); d.Machine != idA {
		t.Errorf("Place after web@1 left A: %q, want %s", d.Machine, idA)
	}
	// Past the cache bound every glob is dropped and rebuilt on demand.
	for i := range 600 {
		s.Place(u("x.service", "Conflicts=other"+string(rune('a'+i%26))+"*"+string(rune('a'+i/26))))
	}
	s.Assign(u("web@3.service"), idA)
	if d := s.Place(web); d.Machine != idC {
		t.Errorf("Place after the cache was dropped: %q, want %s", d.Machine, idC)
	}
}

// costByRegion is a Ranker that prefers eu machines, then load.
type costByRegion struct{}

func (costByRegion) Cost(_ *scheduler.Unit, c scheduler.Candidate) float64 {
	if c.Metadata["region"] == "eu" {
		return float64(c.Load)
	}
	return 100 + float64(c.Load)
}

func TestRanker(t *testing.T) {
	s := newState(defaultMachines, nil)
	s.SetRanker(costByRegion{})
	if d := s.Place(parseUnit(t, "x.service")); d.Machine != idB {
		t.Errorf("Place with a ranker preferring eu: %q, want %s", d.Machine, idB)
	}
	s.SetRanker(nil)
	if d := s.Place(parseUnit(t, "x.service")); d.Machine != idA {
		t.Errorf("Place with the default ranker again: %q, want %s", d.Machine, idA)
	}
}
