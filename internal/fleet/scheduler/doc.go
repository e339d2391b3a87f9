// Package scheduler decides where fleet units run. It is pure: no I/O, no
// etcd, no goroutines. The fleet engine keeps one State (the machines, and
// the units on each), updates it as the registry changes (SetMachine,
// RemoveMachine, Assign, Unassign), and asks it where to put each unit
// (Place, PlaceGlobal) or whether a unit may stay where it is (Check). The
// engine writes the answers to the registry; the scheduler never assigns
// anything by itself. It imports only atoll's unit package, whose
// unit.Fleet reads and validates the [X-Fleet] section; it must not import
// the registry, the engine or anything that does I/O.
//
// The rules are fleet's (coreos/fleet: engine/scheduler.go,
// engine/reconciler.go, engine/state.go, agent/state.go AbleToRun,
// job/job.go), with the differences listed at the end.
//
// # Pipeline
//
// Placement is a chain of small feasibility checks followed by a ranking
// stage, in the manner of Nomad's scheduler stack:
//
//	machines (by ID) ─▶ MachineID ─▶ MachineMetadata ─▶ MachineOf ─▶ Conflicts ─▶ Replaces ─▶ Ranker ─▶ Decision
//	                        │               │               │            │            │
//	                        └───────────────┴─── Rejected[constraint]++ ─┴────────────┘
//
// One constructor (State.pipeline) builds the chain for a unit, cheapest
// check first, leaving out the checks the unit does not need; whatever
// does not depend on the machine (the unit's peers, the index entries its
// patterns hit) is prepared once per unit, so each check costs a
// comparison or a few map look-ups per machine. A machine is rejected by
// the first check it fails and counted under that check's name in
// Decision.Rejected; Decision.Reason turns the counts into one line, such
// as "no machine fits: 2 fail MachineMetadata (region=us), 1 fails
// Conflicts (web@*)". The order is that of fleet's AbleToRun, so a machine
// is blamed on the constraint fleet would have named.
//
// The machines that pass go to a Ranker, which gives each a cost; Place
// keeps the cheapest in one linear pass over the machines in ID order,
// the lowest ID among equal costs. The default, LeastLoaded, costs a
// machine its number of units, global ones included: exactly fleet's
// order (fewest units, then machine ID). A resource-aware ranker can
// replace it with SetRanker.
//
// # Constraints
//
// The names in Decision.Rejected are the X-Fleet options (the legacy
// X-ConditionMachineID, X-ConditionMachineBootID, X-ConditionMachineOf,
// X-ConditionMachineMetadata and X-Conflicts are read into the same
// unit.Fleet fields, so they count under the same names):
//
//   - MachineID: the machine's ID, or its first 8 characters
//     (unit.Fleet.MatchesMachine); the legacy MachineBootID is compared the
//     same way when MachineID is empty, as in fleet, so a real boot ID
//     matches no machine.
//   - MachineMetadata: for every key the machine has one of the values (the
//     same key repeated is OR, different keys AND; unit.Fleet.Matches).
//   - MachineOf: every peer is already on the machine; a global peer counts
//     where it is assigned. A unit naming itself never fits.
//   - Conflicts: no unit on the machine matches one of the unit's globs,
//     and no unit on the machine has a glob that matches the unit's name; a
//     unit never conflicts with itself.
//   - Replaces: a machine is refused when a unit on it replaces the unit
//     being placed (and is not replaced by it in turn). The units the unit
//     replaces do not make a machine infeasible: Place returns them in
//     Decision.Displaced for the engine to move.
//
// Global units (PlaceGlobal) go through MachineMetadata and Conflicts only,
// as in fleet's engine/state.go; unit.Fleet refuses MachineID, MachineOf and
// Replaces alongside Global, and global units take no part in anyone's
// Replaces (they are never displaced).
//
// # Using it
//
// The engine, on each pass, in the manner of fleet's reconciler:
//
//  1. SetMachine for every live machine, RemoveMachine for the others
//     (its non-global units come back, to be placed again).
//  2. Assign every scheduled unit that is not meant to be inactive (fleet
//     counted only those), and each global unit on the machines
//     PlaceGlobal returns for it.
//  3. Check each assigned unit where it is; one that no longer fits is
//     unassigned and placed again.
//  4. Place the unscheduled units in PeerOrder, so that a MachineOf peer
//     is placed before its followers, and Assign each that fits. Units
//     displaced by one that Replaces them are placed again once it is
//     assigned; the Replaces check then keeps them off the machine they
//     leave (one that fits nowhere else is unassigned, as fleet
//     unscheduled it).
//  5. Ask PlaceGlobal again for global units after anything moved.
//
// A unit that fits nowhere keeps Decision.Reason and Decision.Rejected for
// its unplaced record. One whose Rejected counts MachineOf may fit once
// other units are placed: a retry after the pass is worth it.
//
// # Indexes
//
// The engine places thousands of units over a thousand machines, so no
// check scans the units on each machine. State keeps, per machine, the
// count of units carrying each Conflicts or Replaces pattern (literal
// patterns apart, found with one look-up, so only the globs of the
// cluster are matched against a unit's name), and, for each glob a
// placement asked about, the count of units on each machine whose name it
// matches (filled on first use, kept up to date by Assign and Unassign,
// dropped whole past 512 globs). A machine where the unit being placed
// already is, and a machine a Replaces count points at, are scanned
// instead, since the counts cannot tell the unit itself or a circular
// replace apart. Machines with equal metadata share one metadata class,
// so MachineMetadata is decided once per class and placement. Everything
// is keyed by machine pointer rather than ID. Place costs one pass over
// the machines with a few map look-ups each; BenchmarkPlace measures it.
//
// # Where fleet differs
//
//   - fleet decided in map order: its engine walked jobs and global units
//     from Go maps, so equal inputs could give different placements. Here
//     the result depends only on the State and the order of calls; the
//     engine places units in PeerOrder so that MachineOf peers come first,
//     where fleet took several reconcile passes to place a chain.
//   - fleet's AbleToRun treated a machine holding a unit that replaces the
//     one being placed as fit, and the reconciler then moved the replacing
//     unit (agent/state.go hasReplace is symmetric). Here that machine is
//     refused under Replaces, so a replaced unit never joins the unit that
//     replaces it. The same rule keeps a displaced unit off the machine it
//     was displaced from, where fleet's DecideReschedule chose the
//     least-loaded other machine without checking any constraint; here the
//     engine places it again with Place, through every check.
//   - fleet displaced one replaced unit per reconcile pass (the first in
//     map order); Decision.Displaced lists all of them.
//   - fleet recomputed global units on every pass; here the engine assigns
//     a global unit to the machines PlaceGlobal returns, and it counts in
//     Load where it is assigned, as fleet counted it.
//   - fleet logged "no agents able to run job" at debug level; here every
//     rejected machine is counted under a constraint and Reason says why.
//   - Circular replaces are ignored as in fleet: both units may share a
//     machine, and neither displaces the other.
package scheduler
