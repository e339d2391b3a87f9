// Package registry is fleet's state in etcd v3: what the operator
// submitted, where the engine placed it, which machines are alive and what
// their agents report. It reads and writes keys; the engine, the agents and
// the API decide.
//
// # Layout
//
// Under a prefix (DefaultPrefix unless configured), every value JSON but
// the unit files:
//
//	units/<unit>                {"name","hash","desiredState"}       the API
//	content/<sha1>              the unit file's text                 the API; content-addressed
//	schedule/<machine>/<unit>   {"hash","desiredState","file"}       the engine leader, fenced
//	placed/<unit>/<machine>     ""                                   with each schedule entry: its index by unit
//	unplaced/<unit>             {"hash","reason","rejected":{...}}   the engine leader, fenced
//	machines/<machine>          {"id","name","publicIP",...}         the machine's agent, on its lease
//	metadata/<machine>/<key>    value                                operators (PATCH /machines)
//	agent-states/<machine>/<unit>  {"hash","load","active",...}       the machine's agent, on its lease
//	engine/                     the engine's election (etcd's concurrency.Election)
//
// A unit file is stored once under the SHA-1 fleet computes for it
// (unit.File.Hash), in the same transaction as the unit that names it; a
// file no unit names any more is deleted by the engine, guarded by the
// file's revision so a concurrent submit of the same file wins.
//
// The schedule is kept per machine so that an agent watches only its own
// part (schedule/<machine>/) and a change to one unit wakes one machine,
// where fleet woke every machine into reading the whole registry. A
// schedule entry carries the unit's hash and desired state, and its file
// when it is small (MaxInlineFile), so the agent needs nothing else; a
// larger file it fetches once per hash. Global units get one entry per
// machine they run on. Each entry is written with an
// index entry by unit, in the same transaction, so that the API reads one
// unit (UnitSnapshot), however often fleetctl polls it, without reading
// the whole schedule.
//
// Machine presence and unit states live on the agent's lease: when a
// machine dies, its keys go with its lease and the engine, watching
// machines/, moves its units. The states sort before every other key space
// so that the engine watches everything else with one watch, in revision
// order, and is never woken by the agents' reports.
//
// The engine's writes are fenced: each carries, in the same transaction,
// the condition that the engine's election key still exists with the
// revision it was created at, so a deposed leader's writes fail
// (ErrNotLeader) instead of overwriting its successor's.
package registry

import (
	"errors"
	"fmt"
	"time"

	"atoll.dev/atoll/internal/unit"
)

// DefaultPrefix is where the registry lives unless configured otherwise.
const DefaultPrefix = "/atoll/fleet/"

// Errors, wrapped with the unit or machine they concern.
var (
	ErrNotFound  = errors.New("registry: not found")
	ErrNotLeader = errors.New("registry: not the engine leader (fenced write refused)")
	// ErrConflict means a guarded write lost a race (the key changed
	// since it was read); read again and retry.
	ErrConflict = errors.New("registry: changed concurrently")
)

// DesiredState is what the operator asked of a unit: fleet's target
// state. inactive units are not scheduled; loaded ones are scheduled and
// loaded; launched ones are scheduled, loaded and started.
type DesiredState string

// The desired states.
const (
	Inactive DesiredState = "inactive"
	Loaded   DesiredState = "loaded"
	Launched DesiredState = "launched"
)

// ParseDesiredState reads inactive, loaded or launched.
func ParseDesiredState(s string) (DesiredState, error) {
	switch d := DesiredState(s); d {
	case Inactive, Loaded, Launched:
		return d, nil
	}
	return "", fmt.Errorf("registry: desired state %q: want inactive, loaded or launched", s)
}

// Unit is a submitted unit: units/<name>.
type Unit struct {
	Name         string       `json:"name"`
	Hash         unit.Hash    `json:"hash"`
	DesiredState DesiredState `json:"desiredState"`
	// Revision is the key's ModRevision when read (not stored).
	Revision int64 `json:"-"`
}

// Placement is one schedule entry: schedule/<machine>/<unit>.
type Placement struct {
	Unit         string       `json:"-"`
	Machine      string       `json:"-"`
	Hash         unit.Hash    `json:"hash"`
	DesiredState DesiredState `json:"desiredState"`
	// File is the unit's file when it is at most MaxInlineFile bytes, so
	// that the agent starts the unit from its watch alone; empty, the
	// agent reads content/<hash>.
	File string `json:"file,omitempty"`
}

// MaxInlineFile is the largest unit file a schedule entry carries.
const MaxInlineFile = 4096

// Unplaced says why the engine could not place a unit: unplaced/<unit>.
type Unplaced struct {
	Unit string    `json:"-"`
	Hash unit.Hash `json:"hash"`
	// Reason is one line for people: "no machine fits: 2 fail
	// MachineMetadata (region=us), 1 fails Conflicts (web@*)".
	Reason string `json:"reason"`
	// Rejected counts the machines each constraint rejected.
	Rejected map[string]int `json:"rejected,omitempty"`
}

// Machine is a live machine: machines/<id>, with its operator metadata
// (metadata/<id>/*) merged over the metadata it registered with.
type Machine struct {
	ID       string            `json:"id"`
	Name     string            `json:"name,omitempty"`
	PublicIP string            `json:"publicIP,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// APIURL is where the machine's daemon answers other machines
	// (journal reads), empty when it serves no TCP API.
	APIURL  string `json:"apiURL,omitempty"`
	Version string `json:"version,omitempty"`
}

// UnitState is what a machine's agent reports of one unit it runs:
// agent-states/<machine>/<unit>.
type UnitState struct {
	Unit        string    `json:"-"`
	Machine     string    `json:"-"`
	Hash        unit.Hash `json:"hash"`
	LoadState   string    `json:"load"`
	ActiveState string    `json:"active"`
	SubState    string    `json:"sub"`
	// Reached is the desired state the agent has converged the unit to
	// (loaded or launched), fleet's current state; with Hash it says
	// whether the agent has caught up with the schedule.
	Reached DesiredState `json:"reached"`
	// Error is the agent's last failure to converge the unit, if any.
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since"`
}

// Snapshot is the whole registry but the agents' own view, read at one
// revision: what the API serves from.
type Snapshot struct {
	Revision int64
	Units    map[string]Unit
	// Files holds each unit file's text by hash, and FileRevisions the
	// revision each was last written at.
	Files         map[unit.Hash][]byte
	FileRevisions map[unit.Hash]int64
	Schedule      []Placement // by unit, then machine
	Unplaced      map[string]Unplaced
	Machines      map[string]Machine // live machines, operator metadata merged
	// Registered are the live machines as they registered, and
	// Overrides the operator's metadata by machine (of live machines or
	// not): what Machines merges.
	Registered map[string]Machine
	Overrides  map[string]map[string]string
	States     []UnitState // by unit, then machine
}
