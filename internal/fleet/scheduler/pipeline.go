package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Constraint names: the X-Fleet options a machine can fail, as they appear
// in Decision.Rejected and Decision.Reason.
const (
	MachineID       = "MachineID"
	MachineMetadata = "MachineMetadata"
	MachineOf       = "MachineOf"
	Conflicts       = "Conflicts"
	// Replaces rejects a machine that holds a unit replacing the one being
	// placed (see the package doc: fleet did not).
	Replaces = "Replaces"
)

// A check is one feasibility test of the pipeline, prepared for one unit:
// whatever does not depend on the machine is worked out when the check is
// built, so that fits costs a comparison or a few map look-ups.
type check interface {
	// name is the constraint it tests, one of the constants above.
	name() string
	// fits reports whether the unit may run on the machine.
	fits(ms *machineState) bool
	// describe gives the unit's side of the constraint for Reason, such
	// as "region=us" or "web@*.service". Only called after fits failed.
	describe() string
}

// pipeline builds the feasibility checks for u, cheapest first, leaving
// out those u does not ask for. A machine is rejected by the first check
// it fails, which is also the order of fleet's AbleToRun (coreos/fleet:
// agent/state.go), so a machine is blamed on the constraint fleet would
// have named.
func (s *State) pipeline(u *Unit) []check {
	fl := &u.Fleet
	var chain []check
	// 1. MachineID: a string comparison, and at most a machine or two
	// survive it. A global unit has none (unit.Fleet refuses the pair),
	// and fleet ignored it for global units anyway.
	if _, ok := fl.RequiredMachine(); ok && !fl.Global {
		chain = append(chain, machineIDCheck{u})
	}
	// 2. MachineMetadata: a few map look-ups per kind of machine, then
	// one field per machine.
	if len(fl.MachineMetadata) > 0 {
		s.placements++
		chain = append(chain, metadataCheck{u, s.placements})
	}
	// 3. MachineOf: a look-up per peer in the set of machines the peer is
	// on. Global units have no peers (unit.Fleet refuses the pair).
	if len(fl.MachineOf) > 0 && !fl.Global {
		chain = append(chain, s.newMachineOfCheck(u))
	}
	// 4. Conflicts, both ways: u's patterns against the units on the
	// machine, and their patterns against u's name, from the indexes. Left
	// out when no pattern on either side can match.
	if c := s.newConflictsCheck(u); c != nil {
		chain = append(chain, c)
	}
	// 5. Replaces: a machine where a unit replacing u runs is refused.
	// The units u replaces do not make a machine infeasible: Place returns
	// them as Displaced. Global units take no part.
	if !fl.Global {
		if c := s.newReplacesCheck(u); c != nil {
			chain = append(chain, c)
		}
	}
	return chain
}

type machineIDCheck struct{ u *Unit }

func (machineIDCheck) name() string                 { return MachineID }
func (c machineIDCheck) fits(ms *machineState) bool { return c.u.Fleet.MatchesMachine(ms.id) }
func (c machineIDCheck) describe() string {
	id, _ := c.u.Fleet.RequiredMachine()
	return id
}

type metadataCheck struct {
	u     *Unit
	stamp uint64 // this placement's number, for metaClass.fits
}

func (metadataCheck) name() string { return MachineMetadata }

func (c metadataCheck) fits(ms *machineState) bool {
	class := ms.class
	if class.stamp != c.stamp {
		class.stamp, class.fits = c.stamp, c.u.Fleet.Matches(class.metadata)
	}
	return class.fits
}

// describe writes "disk=ssd, region=eu|us": keys sorted, and the values
// one of which a key must have in the order the unit gave them.
func (c metadataCheck) describe() string {
	var parts []string
	for _, key := range slices.Sorted(maps.Keys(c.u.Fleet.MachineMetadata)) {
		parts = append(parts, key+"="+strings.Join(c.u.Fleet.MachineMetadata[key], "|"))
	}
	return strings.Join(parts, ", ")
}

type machineOfCheck struct {
	u *Unit
	// peers holds each peer's state, nil for a peer on no machine or for
	// the unit itself, which can never be its own peer: fleet's Decide
	// only ran for units on no machine.
	peers []*unitState
}

func (s *State) newMachineOfCheck(u *Unit) machineOfCheck {
	c := machineOfCheck{u: u, peers: make([]*unitState, len(u.Fleet.MachineOf))}
	for i, peer := range u.Fleet.MachineOf {
		if peer != u.Name {
			c.peers[i] = s.units[peer]
		}
	}
	return c
}

func (machineOfCheck) name() string { return MachineOf }

func (c machineOfCheck) fits(ms *machineState) bool {
	for _, peer := range c.peers {
		if peer == nil || !peer.on[ms] {
			return false
		}
	}
	return true
}

// describe names the peers, and says which are on no machine at all.
func (c machineOfCheck) describe() string {
	var parts []string
	for i, peer := range c.u.Fleet.MachineOf {
		switch {
		case peer == c.u.Name:
			peer += " is the unit itself"
		case c.peers[i] == nil:
			peer += " not placed"
		}
		parts = append(parts, peer)
	}
	return strings.Join(parts, ", ")
}

type conflictsCheck struct {
	u *Unit
	// self is u's own state when u is already on some machines: there the
	// indexes count u itself, so the machine is scanned instead.
	self *unitState
	// named are the units u's literal patterns name; matching count, per
	// machine, the units u's globs match; holding count the units whose
	// patterns match u's name.
	named    []*unitState
	matching []machineCounts
	holding  []machineCounts
	// ours and theirs record which side's patterns rejected a machine,
	// for describe.
	ours, theirs bool
}

// newConflictsCheck prepares the Conflicts check, or returns nil when no
// machine can fail it.
func (s *State) newConflictsCheck(u *Unit) *conflictsCheck {
	c := &conflictsCheck{u: u, self: s.units[u.Name]}
	for _, pattern := range distinct(u.Fleet.Conflicts) {
		if !isGlob(pattern) {
			if named := s.units[pattern]; named != nil && pattern != u.Name {
				c.named = append(c.named, named)
			}
			continue
		}
		if counts := s.namesMatching(pattern); len(counts) > 0 {
			c.matching = append(c.matching, counts)
		}
	}
	if counts := s.conflictLiterals[u.Name]; len(counts) > 0 {
		c.holding = append(c.holding, counts)
	}
	for glob, counts := range s.conflictGlobs {
		if globMatch(glob, u.Name) {
			c.holding = append(c.holding, counts)
		}
	}
	if len(c.named)+len(c.matching)+len(c.holding) == 0 {
		return nil
	}
	return c
}

func (*conflictsCheck) name() string { return Conflicts }

func (c *conflictsCheck) fits(ms *machineState) bool {
	if c.self != nil && c.self.on[ms] {
		ours, theirs := conflictsOn(c.u, ms)
		c.ours, c.theirs = c.ours || ours, c.theirs || theirs
		return !ours && !theirs
	}
	for _, named := range c.named {
		if named.on[ms] {
			c.ours = true
			return false
		}
	}
	for _, counts := range c.matching {
		if counts[ms] > 0 {
			c.ours = true
			return false
		}
	}
	for _, counts := range c.holding {
		if counts[ms] > 0 {
			c.theirs = true
			return false
		}
	}
	return true
}

// describe gives u's own patterns when they rejected a machine, and says
// so when the patterns of units already there did.
func (c *conflictsCheck) describe() string {
	var parts []string
	if c.ours {
		parts = append(parts, strings.Join(c.u.Fleet.Conflicts, " "))
	}
	if c.theirs {
		parts = append(parts, "units there conflict with "+c.u.Name)
	}
	return strings.Join(parts, "; ")
}

// conflictsOn is fleet's HasConflict (coreos/fleet: agent/state.go) over
// the units on one machine, never comparing u with itself: ours reports
// that u's patterns match a unit there, theirs that a unit's patterns
// there match u.
func conflictsOn(u *Unit, ms *machineState) (ours, theirs bool) {
	for _, other := range ms.units {
		if other.name == u.Name {
			continue
		}
		ours = ours || u.Fleet.ConflictsWith(other.name)
		theirs = theirs || other.fleet.ConflictsWith(u.Name)
	}
	return ours, theirs
}

type replacesCheck struct {
	u *Unit
	// holding count, per machine, the non-global units with a Replaces
	// pattern that matches u's name. A count says where to look; the
	// machine is then scanned, since a replace in both directions is
	// ignored and u itself does not count.
	holding []machineCounts
	// by collects the units that kept u off a machine, for describe.
	by map[string]bool
}

// newReplacesCheck prepares the Replaces check, or returns nil when no
// unit replaces u.
func (s *State) newReplacesCheck(u *Unit) *replacesCheck {
	c := &replacesCheck{u: u}
	if counts := s.replaceLiterals[u.Name]; len(counts) > 0 {
		c.holding = append(c.holding, counts)
	}
	for glob, counts := range s.replaceGlobs {
		if globMatch(glob, u.Name) {
			c.holding = append(c.holding, counts)
		}
	}
	if len(c.holding) == 0 {
		return nil
	}
	return c
}

func (*replacesCheck) name() string { return Replaces }

func (c *replacesCheck) fits(ms *machineState) bool {
	for _, counts := range c.holding {
		if counts[ms] == 0 {
			continue
		}
		fits := true
		for _, other := range ms.units {
			if other.name != c.u.Name && !other.fleet.Global &&
				replaces(other.fleet.Replaces, c.u.Name) && !replaces(c.u.Fleet.Replaces, other.name) {
				if c.by == nil {
					c.by = make(map[string]bool)
				}
				c.by[other.name] = true
				fits = false
			}
		}
		return fits
	}
	return true
}

func (c *replacesCheck) describe() string {
	return "replaced by " + strings.Join(slices.Sorted(maps.Keys(c.by)), ", ")
}

// displaced returns the units on ms that u replaces, sorted: fleet's
// hasReplace (coreos/fleet: agent/state.go) without its stop at the first
// one. A unit that replaces u in turn is left alone (a circular replace,
// which fleet ignores), and so are u itself and global units.
func displaced(u *Unit, ms *machineState) []string {
	if len(u.Fleet.Replaces) == 0 || u.Fleet.Global {
		return nil
	}
	var out []string
	for _, other := range ms.units {
		if other.name != u.Name && !other.fleet.Global &&
			replaces(u.Fleet.Replaces, other.name) && !replaces(other.fleet.Replaces, u.Name) {
			out = append(out, other.name)
		}
	}
	slices.Sort(out)
	return out
}

func replaces(patterns []string, name string) bool {
	for _, pattern := range patterns {
		if globMatch(pattern, name) {
			return true
		}
	}
	return false
}

// reason is Decision.Reason for a unit nothing fits: the count of machines
// each check rejected, in pipeline order.
func reason(chain []check, rejected []int) string {
	var parts []string
	for i, c := range chain {
		n := rejected[i]
		if n == 0 {
			continue
		}
		verb := "fail"
		if n == 1 {
			verb = "fails"
		}
		parts = append(parts, fmt.Sprintf("%d %s %s (%s)", n, verb, c.name(), c.describe()))
	}
	return "no machine fits: " + strings.Join(parts, ", ")
}
