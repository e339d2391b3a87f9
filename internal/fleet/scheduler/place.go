package scheduler

import (
	"fmt"
	"slices"
	"strings"
)

// Decision is where a unit goes and why.
type Decision struct {
	// Machine is the chosen machine, "" when nothing fits.
	Machine string
	// Displaced are the units on Machine that the unit replaces, sorted:
	// the engine moves them elsewhere.
	Displaced []string
	// Rejected counts the machines each constraint rejected, by constraint
	// name (MachineID, MachineMetadata, MachineOf, Conflicts, Replaces). A
	// machine is counted once, under the first constraint it failed. It is
	// filled whether or not a machine was chosen, and nil when no machine
	// was rejected.
	Rejected map[string]int
	// Reason is one line for people when Machine is "", such as "no
	// machine fits: 2 fail MachineMetadata (region=us), 1 fails Conflicts
	// (web@*)", or "no machines".
	Reason string
}

const reasonNoMachines = "no machines"

// Place chooses the machine for a non-global unit, as fleet's
// least-loaded scheduler did (coreos/fleet: engine/scheduler.go, Decide):
// every machine goes through the feasibility checks, and the ranker picks
// among those that pass, by default the least loaded, ties broken by
// machine ID. Place changes nothing: the engine records the decision with
// Assign, and moves the Displaced units. If the unit is already on a
// machine, it is placed as if it were not: its own entry is neither a
// conflict nor load.
func (s *State) Place(u Unit) Decision {
	if u.Fleet.Global {
		return Decision{Reason: "global unit: it runs on every machine that fits (PlaceGlobal)"}
	}
	if len(s.sorted) == 0 {
		return Decision{Reason: reasonNoMachines}
	}
	chain := s.pipeline(&u)
	rejected := make([]int, len(chain))
	self := s.units[u.Name]
	var (
		best     *machineState
		bestCost float64
	)
	// One pass in machine ID order: a later machine must cost strictly
	// less to win, so equal costs go to the lower ID.
	for _, ms := range s.sorted {
		if i := firstFailure(chain, ms); i >= 0 {
			rejected[i]++
			continue
		}
		load := len(ms.units)
		if self != nil && self.on[ms] {
			load--
		}
		cost := s.ranker.Cost(&u, Candidate{ID: ms.id, Metadata: ms.class.metadata, Load: load})
		if best == nil || cost < bestCost {
			best, bestCost = ms, cost
		}
	}
	d := Decision{Rejected: rejectedByName(chain, rejected)}
	if best == nil {
		d.Reason = reason(chain, rejected)
		return d
	}
	d.Machine = best.id
	d.Displaced = displaced(&u, best)
	return d
}

// PlaceGlobal returns every machine a global unit runs on, sorted: those
// whose metadata matches and where nothing conflicts, in either direction
// (coreos/fleet: engine/state.go, agents). Decision.Machine is always "";
// Decision.Reason says why when no machine fits. PlaceGlobal changes
// nothing: the engine assigns the unit to each machine returned (and takes
// it off the others), and asks again after any change, since a unit that
// leaves a machine can make room for a global unit it conflicted with.
func (s *State) PlaceGlobal(u Unit) ([]string, Decision) {
	if !u.Fleet.Global {
		return nil, Decision{Reason: "not a global unit: it runs on one machine (Place)"}
	}
	if len(s.sorted) == 0 {
		return nil, Decision{Reason: reasonNoMachines}
	}
	chain := s.pipeline(&u)
	rejected := make([]int, len(chain))
	machines := make([]string, 0, len(s.sorted))
	for _, ms := range s.sorted {
		if i := firstFailure(chain, ms); i >= 0 {
			rejected[i]++
			continue
		}
		machines = append(machines, ms.id)
	}
	d := Decision{Rejected: rejectedByName(chain, rejected)}
	if len(machines) == 0 {
		d.Reason = reason(chain, rejected)
		return nil, d
	}
	return machines, d
}

// Check tells whether u may run on one machine, as fleet's AbleToRun did
// for a unit's current machine on every engine pass (coreos/fleet:
// engine/reconciler.go): Decision.Machine is machineID when it fits, with
// the units it would displace; otherwise Rejected names the constraint it
// failed and Reason says, for example, "machine 0123abcd… fails MachineOf
// (db.service)". It works for global units too. Like Place, it ignores
// u's own entry on the machine, so the engine can check a unit where it
// already is.
func (s *State) Check(u Unit, machineID string) Decision {
	ms, ok := s.machines[machineID]
	if !ok {
		return Decision{Reason: fmt.Sprintf("no machine %s", machineID)}
	}
	chain := s.pipeline(&u)
	if i := firstFailure(chain, ms); i >= 0 {
		c := chain[i]
		return Decision{
			Rejected: map[string]int{c.name(): 1},
			Reason:   fmt.Sprintf("machine %s fails %s (%s)", machineID, c.name(), c.describe()),
		}
	}
	return Decision{Machine: machineID, Displaced: displaced(&u, ms)}
}

// firstFailure returns the index of the first check ms fails, or -1.
func firstFailure(chain []check, ms *machineState) int {
	for i, c := range chain {
		if !c.fits(ms) {
			return i
		}
	}
	return -1
}

func rejectedByName(chain []check, rejected []int) map[string]int {
	var out map[string]int
	for i, n := range rejected {
		if n == 0 {
			continue
		}
		if out == nil {
			out = make(map[string]int)
		}
		out[chain[i].name()] = n
	}
	return out
}

// PeerOrder returns units in the order to place them so that every unit
// comes after the MachineOf peers it names that are among units: by name,
// except that a unit's peers are moved before it. Units that name each
// other in a cycle can never be placed (fleet deadlocked on them too); they
// keep an order that breaks the cycle somewhere. units is not changed.
func PeerOrder(units []Unit) []Unit {
	byName := make(map[string]int, len(units))
	for i, u := range units {
		byName[u.Name] = i
	}
	order := make([]int, len(units))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(units[a].Name, units[b].Name) })
	const (
		unseen = iota
		visiting
		done
	)
	mark := make([]int, len(units))
	out := make([]Unit, 0, len(units))
	var visit func(i int)
	visit = func(i int) {
		if mark[i] != unseen {
			return // done, or a cycle: leave it to the caller of the cycle
		}
		mark[i] = visiting
		for _, peer := range units[i].Fleet.MachineOf {
			if j, ok := byName[peer]; ok {
				visit(j)
			}
		}
		mark[i] = done
		out = append(out, units[i])
	}
	for _, i := range order {
		visit(i)
	}
	return out
}
