// Package schema holds fleet's v1 API wire types, field for field as
// coreos/fleet's schema/v1.json (and the v1-gen.go fleetctl is built
// from) names them, so that an unmodified fleetctl reads what atoll
// serves. Every field is omitempty, as in fleet.
//
// One field is atoll's: Unit.Reason says why an unplaceable unit was not
// placed. fleet's clients decode JSON leniently and never see it.
package schema

// Desired and current states of a unit, fleet's job states.
const (
	StateInactive = "inactive"
	StateLoaded   = "loaded"
	StateLaunched = "launched"
)

// UnitOption is one line of a unit file.
type UnitOption struct {
	Section string `json:"section,omitempty"`
	Name    string `json:"name,omitempty"`
	Value   string `json:"value,omitempty"`
}

// Unit is a unit as the registry holds it: its file, the state the
// operator asked for, the state it reached and where it was scheduled.
type Unit struct {
	Name         string        `json:"name,omitempty"`
	Options      []*UnitOption `json:"options,omitempty"`
	DesiredState string        `json:"desiredState,omitempty"`
	CurrentState string        `json:"currentState,omitempty"`
	MachineID    string        `json:"machineID,omitempty"`
	// Reason is atoll's: why the engine could not place the unit, per
	// constraint ("3 machines: MachineMetadata region=us; ..."); empty
	// once placed.
	Reason string `json:"reason,omitempty"`
}

// UnitPage is one page of GET /fleet/v1/units.
type UnitPage struct {
	Units         []*Unit `json:"units,omitempty"`
	NextPageToken string  `json:"nextPageToken,omitempty"`
}

// UnitState is what a machine's agent reports of one unit.
type UnitState struct {
	Name               string `json:"name,omitempty"`
	Hash               string `json:"hash,omitempty"`
	MachineID          string `json:"machineID,omitempty"`
	SystemdLoadState   string `json:"systemdLoadState,omitempty"`
	SystemdActiveState string `json:"systemdActiveState,omitempty"`
	SystemdSubState    string `json:"systemdSubState,omitempty"`
}

// UnitStatePage is one page of GET /fleet/v1/state.
type UnitStatePage struct {
	States        []*UnitState `json:"states,omitempty"`
	NextPageToken string       `json:"nextPageToken,omitempty"`
}

// Machine is one machine of the cluster.
type Machine struct {
	ID        string            `json:"id,omitempty"`
	PrimaryIP string            `json:"primaryIP,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// MachinePage is one page of GET /fleet/v1/machines.
type MachinePage struct {
	Machines      []*Machine `json:"machines,omitempty"`
	NextPageToken string     `json:"nextPageToken,omitempty"`
}

// Error is the body of every error response: {"error":{"code","message"}}.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the inside of Error.
type ErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}
