package scheduler_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"atoll.dev/atoll/internal/fleet/scheduler"
	"atoll.dev/atoll/internal/unit"
)

// model is the scheduler written the plainest way, after fleet's
// AbleToRun and sortedAgents (coreos/fleet: agent/state.go,
// engine/scheduler.go) with the differences the package doc lists: every
// check scans the units on the machine, and machines are sorted for every
// placement. TestModel drives it and a State with the same random
// operations and compares every answer, which checks the indexes.
type model struct {
	machines map[string]map[string]string
	units    map[string]*modelUnit
}

type modelUnit struct {
	fleet unit.Fleet
	on    map[string]bool
}

func (m *model) setMachine(id string, metadata map[string]string) { m.machines[id] = metadata }

func (m *model) removeMachine(id string) []string {
	if _, ok := m.machines[id]; !ok {
		return nil
	}
	var orphans []string
	for name, mu := range m.units {
		if mu.on[id] {
			delete(mu.on, id)
			if !mu.fleet.Global {
				orphans = append(orphans, name)
			}
			if len(mu.on) == 0 {
				delete(m.units, name)
			}
		}
	}
	delete(m.machines, id)
	slices.Sort(orphans)
	return orphans
}

func (m *model) assign(u scheduler.Unit, id string) {
	if _, ok := m.machines[id]; !ok {
		return
	}
	mu := m.units[u.Name]
	if mu == nil || !cmp.Equal(mu.fleet, u.Fleet, cmpopts.EquateEmpty()) {
		mu = &modelUnit{fleet: u.Fleet, on: map[string]bool{}}
		m.units[u.Name] = mu
	}
	if !u.Fleet.Global {
		clear(mu.on)
	}
	mu.on[id] = true
}

func (m *model) unassign(name, id string) {
	if mu := m.units[name]; mu != nil {
		delete(mu.on, id)
		if len(mu.on) == 0 {
			delete(m.units, name)
		}
	}
}

func (m *model) unitsOn(id string) []string {
	var out []string
	for name, mu := range m.units {
		if mu.on[id] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func anyGlob(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, err := path.Match(p, name); err == nil && ok {
			return true
		}
	}
	return false
}

// failure is the first constraint u fails on the machine, or "".
func (m *model) failure(u scheduler.Unit, id string) string {
	fl := u.Fleet
	if _, ok := fl.RequiredMachine(); ok && !fl.Global && !fl.MatchesMachine(id) {
		return scheduler.MachineID
	}
	if !fl.Matches(m.machines[id]) {
		return scheduler.MachineMetadata
	}
	if !fl.Global {
		for _, peer := range fl.MachineOf {
			if peer == u.Name || m.units[peer] == nil || !m.units[peer].on[id] {
				return scheduler.MachineOf
			}
		}
	}
	for _, other := range m.unitsOn(id) {
		if other != u.Name && (fl.ConflictsWith(other) || m.units[other].fleet.ConflictsWith(u.Name)) {
			return scheduler.Conflicts
		}
	}
	if !fl.Global {
		for _, other := range m.unitsOn(id) {
			of := m.units[other].fleet
			if other != u.Name && !of.Global && anyGlob(of.Replaces, u.Name) && !anyGlob(fl.Replaces, other) {
				return scheduler.Replaces
			}
		}
	}
	return ""
}

func (m *model) displaced(u scheduler.Unit, id string) []string {
	var out []string
	for _, other := range m.unitsOn(id) {
		of := m.units[other].fleet
		if other != u.Name && !of.Global && !u.Fleet.Global &&
			anyGlob(u.Fleet.Replaces, other) && !anyGlob(of.Replaces, u.Name) {
			out = append(out, other)
		}
	}
	return out
}

// place returns the decision without Reason, and whether a Reason is due.
func (m *model) place(u scheduler.Unit) scheduler.Decision {
	if u.Fleet.Global || len(m.machines) == 0 {
		return scheduler.Decision{}
	}
	load := func(id string) int {
		n := len(m.unitsOn(id))
		if mu := m.units[u.Name]; mu != nil && mu.on[id] {
			n--
		}
		return n
	}
	ids := slices.Collect(maps.Keys(m.machines))
	sort.Slice(ids, func(i, j int) bool {
		li, lj := load(ids[i]), load(ids[j])
		return li < lj || li == lj && ids[i] < ids[j]
	})
	var d scheduler.Decision
	for _, id := range ids {
		if f := m.failure(u, id); f != "" {
			if d.Rejected == nil {
				d.Rejected = map[string]int{}
			}
			d.Rejected[f]++
		} else if d.Machine == "" {
			d.Machine = id
			d.Displaced = m.displaced(u, id)
		}
	}
	return d
}

func (m *model) placeGlobal(u scheduler.Unit) ([]string, scheduler.Decision) {
	var d scheduler.Decision
	var out []string
	if !u.Fleet.Global {
		return nil, d
	}
	for _, id := range slices.Sorted(maps.Keys(m.machines)) {
		if f := m.failure(u, id); f != "" {
			if d.Rejected == nil {
				d.Rejected = map[string]int{}
			}
			d.Rejected[f]++
		} else {
			out = append(out, id)
		}
	}
	return out, d
}

// generator makes random machines and units over small pools, so that
// names collide with patterns often.
type generator struct {
	r     *rand.Rand
	ids   []string
	names []string
	fleet map[string]unit.Fleet
}

func newGenerator(seed uint64) *generator {
	g := &generator{r: rand.New(rand.NewPCG(seed, 1)), fleet: map[string]unit.Fleet{}}
	for i := range 6 {
		g.ids = append(g.ids, fmt.Sprintf("%08x%024x", 0x1000_0000*(i+1), i))
	}
	g.names = []string{"a@1.service", "a@2.service", "a@3.service", "b@1.service", "b@2.service",
		"c.service", "d.service", "e.service", "g.service"}
	return g
}

func (g *generator) pick(list []string) string { return list[g.r.IntN(len(list))] }

func (g *generator) metadata() map[string]string {
	md := map[string]string{}
	if g.r.IntN(4) > 0 {
		md["region"] = g.pick([]string{"us", "eu"})
	}
	if g.r.IntN(2) > 0 {
		md["disk"] = g.pick([]string{"ssd", "hdd"})
	}
	return md
}

var patterns = []string{"a@*.service", "b@1.service", "c.service", "*", "?.service", "[", "d*", "e.service", "g.service", "a@[12].service"}

// unit returns a unit of the pool, whose [X-Fleet] section changes now and
// then.
func (g *generator) unit() scheduler.Unit {
	name := g.pick(g.names)
	fl, ok := g.fleet[name]
	if !ok || g.r.IntN(10) == 0 {
		fl = unit.Fleet{}
		switch g.r.IntN(12) {
		case 0:
			fl.MachineID = g.pick(g.ids)
		case 1:
			fl.MachineID = g.pick(g.ids)[:8]
		case 2:
			fl.MachineBootID = g.pick(append(g.ids, "0123456789abcdef0123456789abcdef"))
		case 3:
			fl.Global = true
		}
		if g.r.IntN(3) == 0 {
			fl.MachineMetadata = map[string][]string{"region": {g.pick([]string{"us", "eu"})}}
			if g.r.IntN(2) == 0 {
				fl.MachineMetadata["region"] = append(fl.MachineMetadata["region"], "asia")
			}
			if g.r.IntN(3) == 0 {
				fl.MachineMetadata["disk"] = []string{"ssd"}
			}
		}
		if g.r.IntN(4) == 0 {
			for range 1 + g.r.IntN(2) {
				fl.MachineOf = append(fl.MachineOf, g.pick(g.names))
			}
		}
		if g.r.IntN(3) == 0 {
			for range 1 + g.r.IntN(2) {
				fl.Conflicts = append(fl.Conflicts, g.pick(patterns))
			}
		}
		if g.r.IntN(3) == 0 {
			for range 1 + g.r.IntN(2) {
				fl.Replaces = append(fl.Replaces, g.pick(patterns))
			}
		}
		g.fleet[name] = fl
	}
	return scheduler.Unit{Name: name, Fleet: fl}
}

func TestModel(t *testing.T) {
	for seed := range uint64(200) {
		g := newGenerator(seed)
		s := scheduler.NewState()
		m := &model{machines: map[string]map[string]string{}, units: map[string]*modelUnit{}}
		for step := range 150 {
			where := fmt.Sprintf("seed %d step %d", seed, step)
			switch op := g.r.IntN(20); {
			case op < 3:
				id, md := g.pick(g.ids), g.metadata()
				s.SetMachine(scheduler.Machine{ID: id, Metadata: md})
				m.setMachine(id, md)
			case op < 4:
				id := g.pick(g.ids)
				if diff := cmp.Diff(m.removeMachine(id), s.RemoveMachine(id)); diff != "" {
					t.Fatalf("%s: RemoveMachine(%s) (-model +state):\n%s", where, id, diff)
				}
			case op < 12:
				// Place, then assign where the State says.
				u := g.unit()
				if u.Fleet.Global {
					got, gd := s.PlaceGlobal(u)
					want, wd := m.placeGlobal(u)
					if diff := cmp.Diff(want, got); diff != "" {
						t.Fatalf("%s: PlaceGlobal(%s %+v) (-model +state):\n%s", where, u.Name, u.Fleet, diff)
					}
					if diff := cmp.Diff(wd.Rejected, gd.Rejected); diff != "" || (len(got) == 0) != (gd.Reason != "") {
						t.Fatalf("%s: PlaceGlobal(%s %+v) Rejected (-model +state):\n%s\nreason %q", where, u.Name, u.Fleet, diff, gd.Reason)
					}
					for _, id := range got {
						s.Assign(u, id)
						m.assign(u, id)
					}
					continue
				}
				got, want := s.Place(u), m.place(u)
				if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(scheduler.Decision{}, "Reason")); diff != "" {
					t.Fatalf("%s: Place(%s %+v) (-model +state):\n%s", where, u.Name, u.Fleet, diff)
				}
				if (got.Machine == "") != (got.Reason != "") {
					t.Fatalf("%s: Place(%s) = machine %q with reason %q, want exactly one", where, u.Name, got.Machine, got.Reason)
				}
				if got.Machine != "" {
					s.Assign(u, got.Machine)
					m.assign(u, got.Machine)
				}
			case op < 15:
				// Assign anywhere, even where the unit does not fit.
				u, id := g.unit(), g.pick(append(g.ids, "unknown"))
				s.Assign(u, id)
				m.assign(u, id)
			case op < 17:
				name, id := g.pick(g.names), g.pick(g.ids)
				s.Unassign(name, id)
				m.unassign(name, id)
			default:
				u, id := g.unit(), g.pick(g.ids)
				got := s.Check(u, id)
				_, known := m.machines[id]
				want := scheduler.Decision{}
				if f := m.failure(u, id); known && f == "" {
					want = scheduler.Decision{Machine: id, Displaced: m.displaced(u, id)}
				} else if known {
					want.Rejected = map[string]int{f: 1}
				}
				if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(scheduler.Decision{}, "Reason")); diff != "" {
					t.Fatalf("%s: Check(%s %+v, %s) (-model +state):\n%s", where, u.Name, u.Fleet, id, diff)
				}
			}
			for _, id := range g.ids {
				if diff := cmp.Diff(m.unitsOn(id), s.UnitsOn(id)); diff != "" {
					t.Fatalf("%s: UnitsOn(%s) (-model +state):\n%s", where, id, diff)
				}
				if got, want := s.Load(id), len(m.unitsOn(id)); got != want {
					t.Fatalf("%s: Load(%s) = %d, want %d", where, id, got, want)
				}
			}
			for _, name := range g.names {
				gotID, gotOK := s.MachineOf(name)
				var wantID string
				if mu := m.units[name]; mu != nil && !mu.fleet.Global {
					for id := range mu.on {
						wantID = id
					}
				}
				if gotID != wantID || gotOK != (wantID != "") {
					t.Fatalf("%s: MachineOf(%s) = %q, %v, want %q", where, name, gotID, gotOK, wantID)
				}
			}
		}
	}
}
