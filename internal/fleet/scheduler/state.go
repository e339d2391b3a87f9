package scheduler

import (
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"atoll.dev/atoll/internal/unit"
)

// Machine is a machine units can be placed on.
type Machine struct {
	ID       string
	Metadata map[string]string
}

// Unit is a unit to place: its name and its [X-Fleet] section, as
// (*unit.File).Fleet returns it.
type Unit struct {
	Name  string
	Fleet unit.Fleet
}

// State is the scheduler's picture of the cluster: the machines and which
// units are on each. The engine keeps one, updates it as the registry
// changes, and asks it where to place units. A State is not safe for
// concurrent use, Place included: Place fills caches (the glob index, the
// metadata verdicts).
type State struct {
	machines map[string]*machineState
	// sorted holds the machines by ID: Machines and PlaceGlobal list in
	// that order, and Place visits machines in it.
	sorted []*machineState
	units  map[string]*unitState
	ranker Ranker
	// classes holds the distinct metadata sets of the machines, by
	// metadataKey; placements numbers the placements for metaClass.stamp.
	classes    map[string]*metaClass
	placements uint64

	// nameGlobs holds, for each glob (a pattern with a meta character)
	// some placement asked about, the number of units on each machine
	// whose name it matches. Filled on demand, kept up to date by attach
	// and detach, and dropped whole when it holds maxCachedGlobs globs.
	nameGlobs map[string]machineCounts
	// conflictLiterals and conflictGlobs hold, for each Conflicts pattern
	// of an assigned unit, the number of units on each machine that carry
	// it; replaceLiterals and replaceGlobs the same for Replaces patterns
	// of non-global units. Literal patterns (no meta character) are apart
	// so that a unit's name finds them with one look-up; only the globs
	// are matched one by one.
	conflictLiterals, conflictGlobs map[string]machineCounts
	replaceLiterals, replaceGlobs   map[string]machineCounts
}

// maxCachedGlobs bounds nameGlobs, which attach and detach walk whole.
const maxCachedGlobs = 512

// machineCounts counts units per machine.
type machineCounts map[*machineState]int

type machineState struct {
	id    string
	class *metaClass
	units map[string]*unitState
}

// metaClass is one distinct set of machine metadata, shared by every
// machine that has it, so that a placement asks unit.Fleet.Matches once
// per class instead of once per machine: clusters have many machines and
// few kinds of machine.
type metaClass struct {
	key      string
	metadata map[string]string // nil when empty; never changed
	machines int
	// fits is Matches for the placement numbered stamp.
	stamp uint64
	fits  bool
}

type unitState struct {
	name  string
	fleet unit.Fleet
	on    map[*machineState]bool
	// conflicts and replaces are the distinct patterns of fleet.Conflicts
	// and fleet.Replaces, so that a unit counts once per pattern.
	conflicts, replaces []string
}

// NewState returns an empty State that ranks machines with LeastLoaded.
func NewState() *State {
	return &State{
		machines:         make(map[string]*machineState),
		units:            make(map[string]*unitState),
		ranker:           LeastLoaded{},
		classes:          make(map[string]*metaClass),
		nameGlobs:        make(map[string]machineCounts),
		conflictLiterals: make(map[string]machineCounts),
		conflictGlobs:    make(map[string]machineCounts),
		replaceLiterals:  make(map[string]machineCounts),
		replaceGlobs:     make(map[string]machineCounts),
	}
}

// SetRanker replaces the ranking stage; nil restores LeastLoaded.
func (s *State) SetRanker(r Ranker) {
	if r == nil {
		r = LeastLoaded{}
	}
	s.ranker = r
}

// SetMachine adds m, or replaces the metadata of the machine with its ID.
// The metadata is copied. Units already on the machine stay there even if
// they no longer fit: the engine decides, with Check, which must move.
func (s *State) SetMachine(m Machine) {
	class := s.classOf(m.Metadata)
	class.machines++
	if ms, ok := s.machines[m.ID]; ok {
		s.release(ms.class)
		ms.class = class
		return
	}
	ms := &machineState{id: m.ID, class: class, units: make(map[string]*unitState)}
	s.machines[m.ID] = ms
	i := sort.Search(len(s.sorted), func(i int) bool { return s.sorted[i].id >= m.ID })
	s.sorted = slices.Insert(s.sorted, i, ms)
}

// RemoveMachine forgets the machine and everything on it, and returns the
// non-global units that were on it, sorted: they are now on no machine
// and need placing again. Global units are not returned: they still run
// on every other machine that fits, and the engine never places them.
func (s *State) RemoveMachine(id string) []string {
	ms, ok := s.machines[id]
	if !ok {
		return nil
	}
	var orphans []string
	for _, us := range ms.units {
		if !us.fleet.Global {
			orphans = append(orphans, us.name)
		}
		s.detach(us, ms)
	}
	s.release(ms.class)
	delete(s.machines, id)
	i := sort.Search(len(s.sorted), func(i int) bool { return s.sorted[i].id >= id })
	s.sorted = slices.Delete(s.sorted, i, i+1)
	slices.Sort(orphans)
	return orphans
}

// Machines returns the machines sorted by ID, with copies of their
// metadata (nil when empty).
func (s *State) Machines() []Machine {
	out := make([]Machine, len(s.sorted))
	for i, ms := range s.sorted {
		out[i] = Machine{ID: ms.id, Metadata: maps.Clone(ms.class.metadata)}
	}
	return out
}

// HasMachine reports whether the machine is known.
func (s *State) HasMachine(id string) bool {
	_, ok := s.machines[id]
	return ok
}

// Assign records u on the machine. A non-global unit is on at most one
// machine, so assigning it again moves it; a global unit is added to the
// machines it is already on. If u's [X-Fleet] section differs from the
// one it was assigned with, it is first taken off every machine, so that
// the indexes follow the new section; the engine re-places a changed
// global unit on every machine with PlaceGlobal. Assigning to a machine
// the State does not know does nothing, as fleet ignored jobs whose target
// machine was gone (coreos/fleet: engine/state.go, agents).
func (s *State) Assign(u Unit, machineID string) {
	ms, ok := s.machines[machineID]
	if !ok {
		return
	}
	us := s.units[u.Name]
	if us != nil && !sameFleet(us.fleet, u.Fleet) {
		for on := range us.on {
			s.detach(us, on)
		}
		us = nil
	}
	if us == nil {
		us = &unitState{
			name:      u.Name,
			fleet:     u.Fleet,
			on:        make(map[*machineState]bool, 1),
			conflicts: distinct(u.Fleet.Conflicts),
			replaces:  distinct(u.Fleet.Replaces),
		}
		s.units[u.Name] = us
	}
	if us.on[ms] {
		return
	}
	if !us.fleet.Global {
		for other := range us.on {
			s.detach(us, other)
		}
		s.units[u.Name] = us // detach forgets a unit left on no machine
	}
	s.attach(us, ms)
}

// Unassign takes the unit off the machine; the State forgets a unit that
// is left on no machine.
func (s *State) Unassign(unitName, machineID string) {
	us, ok := s.units[unitName]
	if !ok {
		return
	}
	if ms := s.machines[machineID]; ms != nil && us.on[ms] {
		s.detach(us, ms)
	}
}

// UnitsOn returns the names of the units on the machine, global ones
// included, sorted.
func (s *State) UnitsOn(machineID string) []string {
	ms, ok := s.machines[machineID]
	if !ok {
		return nil
	}
	return slices.Sorted(maps.Keys(ms.units))
}

// MachineOf returns the machine a non-global unit is on. It reports false
// for a unit on no machine and for a global unit.
func (s *State) MachineOf(unitName string) (string, bool) {
	us, ok := s.units[unitName]
	if !ok || us.fleet.Global {
		return "", false
	}
	for ms := range us.on {
		return ms.id, true
	}
	return "", false
}

// Load returns the number of units on the machine, global ones included,
// which is what fleet's least-loaded scheduler counted (coreos/fleet:
// engine/scheduler.go, sortableAgentStates).
func (s *State) Load(machineID string) int {
	if ms, ok := s.machines[machineID]; ok {
		return len(ms.units)
	}
	return 0
}

// classOf returns the class of the metadata, made if it is new.
func (s *State) classOf(metadata map[string]string) *metaClass {
	key := metadataKey(metadata)
	if class, ok := s.classes[key]; ok {
		return class
	}
	class := &metaClass{key: key}
	if len(metadata) > 0 {
		class.metadata = maps.Clone(metadata)
	}
	s.classes[key] = class
	return class
}

// release forgets a class no machine has any more.
func (s *State) release(class *metaClass) {
	if class.machines--; class.machines == 0 {
		delete(s.classes, class.key)
	}
}

// metadataKey is the same string for equal metadata: sorted pairs, each
// part prefixed by its length.
func metadataKey(metadata map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(metadata)) {
		v := metadata[k]
		b.WriteString(strconv.Itoa(len(k)) + ":" + k + strconv.Itoa(len(v)) + ":" + v)
	}
	return b.String()
}

// attach puts us on ms and counts it in the indexes.
func (s *State) attach(us *unitState, ms *machineState) {
	ms.units[us.name] = us
	us.on[ms] = true
	s.index(us, ms, +1)
}

// detach takes us off ms, and forgets us once it is on no machine.
func (s *State) detach(us *unitState, ms *machineState) {
	delete(ms.units, us.name)
	delete(us.on, ms)
	s.index(us, ms, -1)
	if len(us.on) == 0 && s.units[us.name] == us {
		delete(s.units, us.name)
	}
}

// index adds delta to every index entry us contributes on machineID.
func (s *State) index(us *unitState, ms *machineState, delta int) {
	for glob, counts := range s.nameGlobs {
		if globMatch(glob, us.name) {
			bump(counts, ms, delta)
		}
	}
	for _, pattern := range us.conflicts {
		bumpPattern(s.conflictLiterals, s.conflictGlobs, pattern, ms, delta)
	}
	// Global units take no part in Replaces (see the package doc).
	if !us.fleet.Global {
		for _, pattern := range us.replaces {
			bumpPattern(s.replaceLiterals, s.replaceGlobs, pattern, ms, delta)
		}
	}
}

// namesMatching returns, for each machine, the number of units on it whose
// name glob matches, from the cache or by one scan of every unit.
func (s *State) namesMatching(glob string) machineCounts {
	if counts, ok := s.nameGlobs[glob]; ok {
		return counts
	}
	if len(s.nameGlobs) >= maxCachedGlobs {
		clear(s.nameGlobs)
	}
	counts := make(machineCounts)
	for _, us := range s.units {
		if globMatch(glob, us.name) {
			for ms := range us.on {
				counts[ms]++
			}
		}
	}
	s.nameGlobs[glob] = counts
	return counts
}

func bumpPattern(literals, globs map[string]machineCounts, pattern string, ms *machineState, delta int) {
	idx := literals
	if isGlob(pattern) {
		idx = globs
	}
	counts := idx[pattern]
	if counts == nil {
		counts = make(machineCounts)
		idx[pattern] = counts
	}
	bump(counts, ms, delta)
	if len(counts) == 0 {
		delete(idx, pattern)
	}
}

func bump(counts machineCounts, ms *machineState, delta int) {
	if n := counts[ms] + delta; n > 0 {
		counts[ms] = n
	} else {
		delete(counts, ms)
	}
}

// isGlob reports whether pattern has a meta character of path.Match; a
// pattern without one matches only the name it spells.
func isGlob(pattern string) bool {
	return strings.ContainsAny(pattern, `*?[\`)
}

// globMatch is fleet's globMatches (coreos/fleet: agent/state.go): a
// malformed pattern matches nothing.
func globMatch(pattern, name string) bool {
	matched, err := path.Match(pattern, name)
	return err == nil && matched
}

func distinct(list []string) []string {
	var out []string
	for _, v := range list {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func sameFleet(a, b unit.Fleet) bool {
	return a.MachineID == b.MachineID && a.MachineBootID == b.MachineBootID && a.Global == b.Global &&
		slices.Equal(a.MachineOf, b.MachineOf) && slices.Equal(a.Conflicts, b.Conflicts) &&
		slices.Equal(a.Replaces, b.Replaces) &&
		maps.EqualFunc(a.MachineMetadata, b.MachineMetadata, slices.Equal)
}
