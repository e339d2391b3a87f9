package scheduler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"atoll.dev/atoll/internal/fleet/scheduler"
	"atoll.dev/atoll/internal/unit"
)

// fixturesDir is ../shared/fixtures/units seen from the repository root,
// found the way internal/unit's tests find it: real unit files from
// fleet's examples and functional tests, read in place.
func fixturesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "..", "shared", "fixtures", "units")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no unit fixtures: %v", err)
	}
	return dir
}

// fixture reads a fixture with unit.ReadFile and returns it as the unit
// name: the file names carry where they come from in fleet's tree
// ("fleet-units-conflict.0.service"), the unit is named as fleet's
// functional tests named it ("conflict.0.service"), which is what the
// [X-Fleet] sections refer to. A template is instantiated with instance
// first, so that its specifiers expand.
func fixture(t *testing.T, file, name, instance string) scheduler.Unit {
	t.Helper()
	f, _, err := unit.ReadFile(filepath.Join(fixturesDir(t), file))
	if err != nil {
		t.Fatal(err)
	}
	f.Name = name
	if instance != "" {
		if f, err = f.Instance(instance); err != nil {
			t.Fatal(err)
		}
	}
	fl, _, err := f.Fleet()
	if err != nil {
		t.Fatalf("Fleet of %s: %v", file, err)
	}
	return scheduler.Unit{Name: f.Name, Fleet: fl}
}

// units reads fixtures named "fleet-units-<name>".
func units(t *testing.T, names ...string) []scheduler.Unit {
	var out []scheduler.Unit
	for _, name := range names {
		out = append(out, fixture(t, "fleet-units-"+name, name, ""))
	}
	return out
}

// cluster starts a State with n machines A, B, C, D (n ≤ 4), each with
// metadata hostname=node1, node2, ...
func cluster(n int) *scheduler.State {
	s := scheduler.NewState()
	for i, id := range []string{idA, idB, idC, idD}[:n] {
		s.SetMachine(scheduler.Machine{ID: id, Metadata: map[string]string{"hostname": "node" + string(rune('1'+i))}})
	}
	return s
}

// placeAll places units one after another as the engine does, assigning
// each that fits, and returns where each went ("" for nowhere) and the
// reasons of those that went nowhere.
func placeAll(s *scheduler.State, units ...scheduler.Unit) (where, reasons map[string]string) {
	where, reasons = make(map[string]string), make(map[string]string)
	for _, u := range units {
		d := s.Place(u)
		where[u.Name] = d.Machine
		if d.Machine == "" {
			reasons[u.Name] = d.Reason
			continue
		}
		s.Assign(u, d.Machine)
	}
	return where, reasons
}

func check(t *testing.T, what string, want, got any) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

// The scenarios of fleet's functional/scheduling_test.go and
// cluster_test.go, with the fixtures they start.

func TestFixtureMachineOf(t *testing.T) {
	s := cluster(3)
	where, reasons := placeAll(s, units(t, "ping.0.service", "ping.1.service", "pong.0.service", "pong.1.service", "pong.2.service")...)
	check(t, "placements", map[string]string{
		"ping.0.service": idA, "ping.1.service": idB,
		"pong.0.service": idA, "pong.1.service": idB, "pong.2.service": "",
	}, where)
	check(t, "reasons", map[string]string{
		"pong.2.service": "no machine fits: 3 fail MachineOf (ping.2.service not placed)",
	}, reasons)

	// A pair migrates together when its machine goes away
	// (TestScheduleMachineOf, second half).
	orphans := s.RemoveMachine(idB)
	check(t, "units left without a machine", []string{"ping.1.service", "pong.1.service"}, orphans)
	where, reasons = placeAll(s, units(t, orphans...)...)
	check(t, "placements after B went away", map[string]string{"ping.1.service": idC, "pong.1.service": idC}, where)
	check(t, "reasons after B went away", map[string]string{}, reasons)
}

// TestFixtureMachineOfRetry is fleet's examples/ping and pong with the
// follower placed first, as when the engine meets pong.service before
// ping.service: it is rejected on MachineOf, and retried once the others
// are placed.
func TestFixtureMachineOfRetry(t *testing.T) {
	hello := fixture(t, "fleet-examples-hello.service", "hello.service", "")
	ping := fixture(t, "fleet-examples-ping.service", "ping.service", "")
	pong := fixture(t, "fleet-examples-pong.service", "pong.service", "")

	s := cluster(2)
	s.Assign(hello, idA)
	d := s.Place(pong)
	check(t, "pong.service before ping.service", scheduler.Decision{
		Rejected: map[string]int{scheduler.MachineOf: 2},
		Reason:   "no machine fits: 2 fail MachineOf (ping.service not placed)",
	}, d)
	where, _ := placeAll(s, ping)
	check(t, "ping.service", idB, where["ping.service"])
	where, reasons := placeAll(s, pong)
	check(t, "pong.service on retry", idB, where["pong.service"])
	check(t, "reasons on retry", map[string]string{}, reasons)

	// PeerOrder gets there in one pass.
	s = cluster(2)
	s.Assign(hello, idA)
	where, reasons = placeAll(s, scheduler.PeerOrder([]scheduler.Unit{pong, ping})...)
	check(t, "placements in PeerOrder", map[string]string{"ping.service": idB, "pong.service": idB}, where)
	check(t, "reasons in PeerOrder", map[string]string{}, reasons)
}

func TestFixtureConflicts(t *testing.T) {
	s := cluster(3)
	where, reasons := placeAll(s, units(t, "conflict.0.service", "conflict.1.service", "conflict.2.service", "conflict.3.service")...)
	check(t, "placements", map[string]string{
		"conflict.0.service": idA, "conflict.1.service": idB, "conflict.2.service": idC, "conflict.3.service": "",
	}, where)
	check(t, "reasons", map[string]string{
		"conflict.3.service": "no machine fits: 3 fail Conflicts (conflict.*.service)",
	}, reasons)
}

func TestFixtureOneWayConflict(t *testing.T) {
	s := cluster(1)
	conflicting := units(t, "conflicts-with-hello.service")[0]
	hello := units(t, "hello.service")[0]
	where, reasons := placeAll(s, conflicting, hello)
	check(t, "placements", map[string]string{"conflicts-with-hello.service": idA, "hello.service": ""}, where)
	check(t, "reasons", map[string]string{
		"hello.service": "no machine fits: 1 fails Conflicts (units there conflict with hello.service)",
	}, reasons)

	// Destroying the conflicting unit lets hello.service start.
	s.Unassign(conflicting.Name, idA)
	where, _ = placeAll(s, hello)
	check(t, "hello.service after the conflicting unit went", idA, where["hello.service"])
}

func TestFixtureMultipleConflicts(t *testing.T) {
	s := cluster(3)
	multiple := units(t, "conflict.multiple.0.service", "conflict.multiple.1.service", "conflict.multiple.2.service")
	for _, u := range multiple {
		check(t, u.Name+" Conflicts", []string{"conflict.2.service", "conflict.1.service", "conflict.0.service"}, u.Fleet.Conflicts)
	}
	where, _ := placeAll(s, multiple...)
	check(t, "placements", map[string]string{
		"conflict.multiple.0.service": idA, "conflict.multiple.1.service": idB, "conflict.multiple.2.service": idC,
	}, where)
	// Every machine now holds a unit that conflicts with conflict.0.
	where, reasons := placeAll(s, units(t, "conflict.0.service")...)
	check(t, "conflict.0.service", "", where["conflict.0.service"])
	check(t, "reasons", map[string]string{
		"conflict.0.service": "no machine fits: 3 fail Conflicts (conflict.*.service)",
	}, reasons)
}

func TestFixtureReplace(t *testing.T) {
	s := cluster(2)
	// replace.0 on A, replace.1 and replace.2 (its follower) on B.
	s.Assign(units(t, "replace.0.service")[0], idA)
	where, _ := placeAll(s, units(t, "replace.1.service", "replace.2.service")...)
	check(t, "before the kick", map[string]string{"replace.1.service": idB, "replace.2.service": idB}, where)

	// replace-kick0 goes to the less loaded A and displaces replace.0,
	// which the engine then places elsewhere.
	kick := units(t, "replace-kick0.service")[0]
	d := s.Place(kick)
	check(t, "replace-kick0.service", scheduler.Decision{Machine: idA, Displaced: []string{"replace.0.service"}}, d)
	s.Assign(kick, d.Machine)
	d = s.Place(units(t, "replace.0.service")[0])
	check(t, "replace.0.service moved", scheduler.Decision{Machine: idB, Rejected: map[string]int{scheduler.Replaces: 1}}, d)
}

func TestFixtureGlobal(t *testing.T) {
	s := cluster(3)
	placeAll(s, units(t, "hello.service", "goodbye.service")...)
	for _, g := range []scheduler.Unit{
		units(t, "global.service")[0],
		fixture(t, "fleet-units-global@.service", "global@.service", "x"),
	} {
		machines, d := s.PlaceGlobal(g)
		check(t, g.Name+" machines", []string{idA, idB, idC}, machines)
		check(t, g.Name+" decision", scheduler.Decision{}, d)
	}
}

func TestFixtureGlobalConflicts(t *testing.T) {
	s := cluster(3)
	g0 := units(t, "conflict-global.0.service")[0]
	// fleet's test starts a second copy under another name.
	g1 := fixture(t, "fleet-units-conflict-global.0.service", "conflict-global.1.service", "")
	machines, _ := s.PlaceGlobal(g0)
	check(t, "conflict-global.0.service", []string{idA, idB, idC}, machines)
	for _, id := range machines {
		s.Assign(g0, id)
	}
	machines, d := s.PlaceGlobal(g1)
	check(t, "conflict-global.1.service", []string(nil), machines)
	check(t, "conflict-global.1.service decision", scheduler.Decision{
		Rejected: map[string]int{scheduler.Conflicts: 3},
		Reason:   "no machine fits: 3 fail Conflicts (conflict-global.*.service)",
	}, d)
}

func TestFixtureMetadataAndPin(t *testing.T) {
	s := cluster(3)
	for _, tt := range []struct {
		file, instance, want string
	}{
		{"fleet-units-metadata@.service", "node2", idB},
		{"fleet-units-metadata@.service", "node3", idC},
		{"fleet-units-metadata@.service", "node9", ""},
		{"fleet-units-pin@.service", idC, idC},
		{"fleet-units-pin@.service", idB[:8], idB},
	} {
		name := strings.TrimPrefix(tt.file, "fleet-units-")
		u := fixture(t, tt.file, name, tt.instance)
		if got := s.Place(u).Machine; got != tt.want {
			t.Errorf("Place(%s) = %q, want %q", u.Name, got, tt.want)
		}
	}
	d := s.Place(fixture(t, "fleet-units-metadata@.service", "metadata@.service", "node9"))
	check(t, "metadata@node9 reason", "no machine fits: 3 fail MachineMetadata (hostname=node9)", d.Reason)
}

func TestFixtureTemplateInstances(t *testing.T) {
	s := cluster(3)
	var instances []scheduler.Unit
	for _, i := range []string{"1", "2", "3", "4"} {
		instances = append(instances, fixture(t, "fleet-units-single@.service", "single@.service", i))
	}
	where, _ := placeAll(s, instances...)
	check(t, "placements", map[string]string{
		"single@1.service": idA, "single@2.service": idB, "single@3.service": idC, "single@4.service": idA,
	}, where)
}
