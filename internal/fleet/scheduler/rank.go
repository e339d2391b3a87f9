package scheduler

// Candidate is a machine that passed every feasibility check, as a Ranker
// sees it. Metadata is the State's own map: read it, do not change it.
type Candidate struct {
	ID       string
	Metadata map[string]string
	// Load is the number of units on the machine, global ones included,
	// not counting the unit being placed if it is already there.
	Load int
}

// A Ranker is the last stage of placement: it gives each feasible machine
// a cost, and Place takes the machine with the lowest cost, the lowest
// machine ID among equal costs. Place calls Cost once per feasible machine
// in one pass, so a Ranker must not depend on the order of the calls; it
// must not keep or change u or c.Metadata.
type Ranker interface {
	Cost(u *Unit, c Candidate) float64
}

// LeastLoaded is fleet's ranking: fewest units first, then machine ID
// (coreos/fleet: engine/scheduler.go, sortableAgentStates.Less). It is the
// default Ranker.
type LeastLoaded struct{}

// Cost is the machine's load.
func (LeastLoaded) Cost(_ *Unit, c Candidate) float64 { return float64(c.Load) }
