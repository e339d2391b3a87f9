package registry

import (
	"encoding/json"
	"fmt"
	"strings"

	"atoll.dev/atoll/internal/unit"
)

// Kind is which key space a key belongs to.
type Kind int

// The key spaces of the layout.
const (
	KindOther Kind = iota
	KindUnit
	KindFile
	KindPlacement
	KindUnplaced
	KindMachine
	KindMetadata
	KindState
)

// Key is a registry key taken apart.
type Key struct {
	Kind    Kind
	Unit    string
	Machine string
	Hash    unit.Hash // KindFile
	Key     string    // KindMetadata: the metadata key
}

// ParseKey takes a key of the registry apart. Keys outside the layout
// (the election's) read as KindOther; a key inside it that is malformed
// is an error.
func (r *Registry) ParseKey(raw []byte) (Key, error) {
	rest, ok := strings.CutPrefix(string(raw), r.prefix)
	if !ok {
		return Key{}, fmt.Errorf("registry: key %q is outside %s", raw, r.prefix)
	}
	dir, name, ok := strings.Cut(rest, "/")
	if !ok {
		return Key{Kind: KindOther}, nil
	}
	bad := func() (Key, error) { return Key{}, fmt.Errorf("registry: malformed key %q", raw) }
	two := func() (string, string, bool) {
		a, b, ok := strings.Cut(name, "/")
		return a, b, ok && a != "" && b != "" && !strings.Contains(b, "/")
	}
	switch dir + "/" {
	case unitsDir:
		if name == "" || strings.Contains(name, "/") {
			return bad()
		}
		return Key{Kind: KindUnit, Unit: name}, nil
	case contentDir:
		h, err := unit.ParseHash(name)
		if err != nil {
			return bad()
		}
		return Key{Kind: KindFile, Hash: h}, nil
	case scheduleDir:
		m, u, ok := two()
		if !ok {
			return bad()
		}
		return Key{Kind: KindPlacement, Machine: m, Unit: u}, nil
	case unplacedDir:
		if name == "" || strings.Contains(name, "/") {
			return bad()
		}
		return Key{Kind: KindUnplaced, Unit: name}, nil
	case machinesDir:
		if name == "" || strings.Contains(name, "/") {
			return bad()
		}
		return Key{Kind: KindMachine, Machine: name}, nil
	case metadataDir:
		m, k, ok := two()
		if !ok {
			return bad()
		}
		return Key{Kind: KindMetadata, Machine: m, Key: k}, nil
	case statesDir:
		m, u, ok := two()
		if !ok {
			return bad()
		}
		return Key{Kind: KindState, Machine: m, Unit: u}, nil
	}
	return Key{Kind: KindOther}, nil
}

// DecodeUnit reads a unit's value; rev is the key's ModRevision.
func DecodeUnit(k Key, value []byte, rev int64) (Unit, error) {
	var u Unit
	if err := json.Unmarshal(value, &u); err != nil {
		return Unit{}, fmt.Errorf("registry: unit %s: %w", k.Unit, err)
	}
	u.Name = k.Unit
	u.Revision = rev
	return u, nil
}

// DecodeUnplaced reads an unplaced record.
func DecodeUnplaced(k Key, value []byte) (Unplaced, error) {
	var u Unplaced
	if err := json.Unmarshal(value, &u); err != nil {
		return u, fmt.Errorf("registry: unplaced %s: %w", k.Unit, err)
	}
	u.Unit = k.Unit
	return u, nil
}

// DecodePlacement reads a schedule entry's value.
func DecodePlacement(k Key, value []byte) (Placement, error) {
	var p Placement
	if err := json.Unmarshal(value, &p); err != nil {
		return p, fmt.Errorf("registry: schedule of %s on %s: %w", k.Unit, k.Machine, err)
	}
	p.Unit, p.Machine = k.Unit, k.Machine
	return p, nil
}

// DecodeMachine reads a machine's presence key.
func DecodeMachine(value []byte) (Machine, error) {
	var m Machine
	if err := json.Unmarshal(value, &m); err != nil {
		return m, fmt.Errorf("registry: machine: %w", err)
	}
	if m.ID == "" {
		return m, fmt.Errorf("registry: machine without an id")
	}
	return m, nil
}

// DecodeState reads a unit state reported by an agent.
func DecodeState(k Key, value []byte) (UnitState, error) {
	var s UnitState
	if err := json.Unmarshal(value, &s); err != nil {
		return s, fmt.Errorf("registry: state of %s on %s: %w", k.Unit, k.Machine, err)
	}
	s.Unit, s.Machine = k.Unit, k.Machine
	return s, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("registry: %T does not marshal: %v", v, err)) // only the package's own types
	}
	return string(b)
}
