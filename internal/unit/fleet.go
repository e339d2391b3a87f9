package unit

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrInvalidFleet is wrapped by the error File.Fleet returns for an
// [X-Fleet] section that fleet's API would refuse with 400 Bad Request.
var ErrInvalidFleet = errors.New("unit: invalid [X-Fleet] section")

// Fleet is the [X-Fleet] section of a unit: where fleet may schedule it.
// The rules follow coreos/fleet: job/job.go (requirements, RequiredTarget,
// RequiredTargetMetadata, Peers, Conflicts, Replaces, IsGlobal),
// unit/unit.go (parseMultivalueLine), agent/state.go (AbleToRun) and
// api/units.go (ValidateOptions), and Documentation/unit-files-and-
// scheduling.md.
type Fleet struct {
	// MachineID is the machine the unit must run on: a full machine ID,
	// or its first 8 characters, which fleet also accepts. The first
	// MachineID= wins, then the first X-ConditionMachineID=.
	MachineID string
	// MachineBootID is the legacy X-ConditionMachineBootID=. fleet treats
	// it as a machine ID when MachineID is empty (see RequiredMachine).
	MachineBootID string
	// MachineOf are units that must already be scheduled on the machine
	// (all of them): X-ConditionMachineOf= then MachineOf= values.
	MachineOf []string
	// MachineMetadata maps a metadata key to the values it may have: a
	// machine must match one value of every key.
	MachineMetadata map[string][]string
	// Conflicts are path.Match globs of units that must not run on the
	// same machine: X-Conflicts= then Conflicts= values, each split at
	// white space.
	Conflicts []string
	// Global units run on every machine whose metadata matches and where
	// nothing conflicts: the last Global= wins; true, yes, 1, on and t
	// (in any case) mean true.
	Global bool
	// Replaces are globs of units that must move elsewhere when this one
	// is scheduled to their machine.
	Replaces []string
}

// Fleet reads the [X-Fleet] section of f. Values are split like fleet's
// parseMultivalueLine (MachineMetadata="a=b" "c=d" holds two values) and
// fleet's subset of specifiers (%n %N %p %i) is expanded with f.Name, by
// plain substitution as fleet's unitPrintf does; a template's values are
// not expanded, as fleet's API validates them unexpanded. Keys fleet does
// not know, metadata that is not key=value, and globs path.Match cannot
// read are warnings, since fleet ignores them. An empty MachineID=,
// X-ConditionMachineBootID= or MachineOf= is an error: fleet would keep
// such a unit unscheduled forever. Invalid combinations are refused as
// fleet's API refuses them: MachineID with MachineOf, Conflicts, Global or
// Replaces; Global with MachineOf or Replaces; Conflicts with Replaces; and
// a MachineOf unit that matches one of the unit's own Conflicts or
// Replaces globs. A glob that matches the unit itself is fine: fleet never
// compares a unit with itself.
func (f *File) Fleet() (Fleet, []Warning, error) {
	var (
		fl                             Fleet
		warnings                       []Warning
		problems                       []string
		machineIDs, legacyIDs, bootIDs []string
		peers, legacyPeers             []string
		conflicts, legacyConflicts     []string
		metadata, legacyMetadata       []string
		first                          = make(map[string]Position) // first line of each key
	)
	name, nameErr := ParseName(f.Name)
	expand := nameErr == nil && !name.Template
	for _, opt := range f.Options {
		if opt.Section != "X-Fleet" {
			continue
		}
		pos, ok := f.Position(opt)
		if !ok {
			pos = Position{File: f.Name}
		}
		if _, seen := first[opt.Name]; !seen {
			first[opt.Name] = pos
		}
		warn := func(format string, args ...any) {
			warnings = append(warnings, Warning{File: pos.File, Line: pos.Line, Section: opt.Section,
				Directive: opt.Name, Msg: fmt.Sprintf(format, args...)})
		}
		values := parseMultivalueLine(opt.Value)
		if expand {
			for i, v := range values {
				values[i] = fleetPrintf(v, f.Name)
			}
		}
		switch opt.Name {
		case "MachineID":
			machineIDs = append(machineIDs, values...)
		case "X-ConditionMachineID":
			legacyIDs = append(legacyIDs, values...)
		case "X-ConditionMachineBootID":
			bootIDs = append(bootIDs, values...)
		case "MachineOf":
			peers = append(peers, values...)
		case "X-ConditionMachineOf":
			legacyPeers = append(legacyPeers, values...)
		case "Conflicts", "X-Conflicts":
			var split []string
			for _, v := range values {
				split = append(split, strings.Fields(v)...)
			}
			for _, glob := range split {
				if _, err := path.Match(glob, ""); err != nil {
					warn("%s=%s is not a valid glob: fleet never matches it", opt.Name, glob)
				}
			}
			if opt.Name == "Conflicts" {
				conflicts = append(conflicts, split...)
			} else {
				legacyConflicts = append(legacyConflicts, split...)
			}
		case "MachineMetadata", "X-ConditionMachineMetadata":
			for _, v := range values {
				if key, value, ok := strings.Cut(v, "="); !ok || key == "" || value == "" || strings.Contains(value, "=") {
					warn("%s=%s is not key=value: fleet ignores it", opt.Name, v)
				}
			}
			if opt.Name == "MachineMetadata" {
				metadata = append(metadata, values...)
			} else {
				legacyMetadata = append(legacyMetadata, values...)
			}
		case "Global":
			last := strings.ToLower(values[len(values)-1])
			fl.Global = isTruthy(last)
			if !fl.Global && last != "false" && last != "no" && last != "0" && last != "off" && last != "f" {
				warn("Global=%s is not a boolean: fleet takes it for false", values[len(values)-1])
			}
		case "Replaces":
			for _, v := range values {
				if v == "" {
					warn("empty Replaces= ignored")
					continue
				}
				if _, err := path.Match(v, ""); err != nil {
					warn("Replaces=%s is not a valid glob: fleet never matches it", v)
				}
				fl.Replaces = append(fl.Replaces, v)
			}
		default:
			warn("unknown directive %s= in [X-Fleet]: fleet ignores it", opt.Name)
		}
	}

	switch {
	case len(machineIDs) > 0:
		fl.MachineID = machineIDs[0]
	case len(legacyIDs) > 0:
		fl.MachineID = legacyIDs[0]
	}
	if len(machineIDs)+len(legacyIDs) > 0 && fl.MachineID == "" {
		problems = append(problems, "MachineID= is empty")
	}
	if len(bootIDs) > 0 {
		if fl.MachineBootID = bootIDs[0]; fl.MachineBootID == "" {
			problems = append(problems, "X-ConditionMachineBootID= is empty")
		}
	}
	// An unexpanded template value such as %i is checked once instantiated.
	if id := fl.MachineID; id != "" && !isMachineID(id) && (expand || !strings.Contains(id, "%")) {
		pos := first["MachineID"]
		if len(machineIDs) == 0 {
			pos = first["X-ConditionMachineID"]
		}
		warnings = append(warnings, Warning{File: pos.File, Line: pos.Line, Section: "X-Fleet", Directive: "MachineID",
			Msg: fmt.Sprintf("MachineID=%s can match no machine: machine IDs are 32 lower-case hex digits, or their first 8", id)})
	}
	fl.MachineOf = append(legacyPeers, peers...)
	for _, peer := range fl.MachineOf {
		if peer == "" {
			problems = append(problems, "MachineOf= is empty")
			break
		}
	}
	fl.Conflicts = append(legacyConflicts, conflicts...)
	for _, pair := range append(legacyMetadata, metadata...) {
		key, value, ok := strings.Cut(pair, "=")
		if !ok || key == "" || value == "" || strings.Contains(value, "=") {
			continue
		}
		if fl.MachineMetadata == nil {
			fl.MachineMetadata = make(map[string][]string)
		}
		if !contains(fl.MachineMetadata[key], value) {
			fl.MachineMetadata[key] = append(fl.MachineMetadata[key], value)
		}
	}

	at := func(keys ...string) string {
		for _, key := range keys {
			if pos, ok := first[key]; ok {
				if pos.Line > 0 {
					return fmt.Sprintf("%s= (line %d)", key, pos.Line)
				}
				return key + "="
			}
		}
		return keys[0] + "="
	}
	machineKeys := []string{"MachineID", "X-ConditionMachineID", "X-ConditionMachineBootID"}
	peerKeys := []string{"MachineOf", "X-ConditionMachineOf"}
	conflictKeys := []string{"Conflicts", "X-Conflicts"}
	for _, peer := range fl.MachineOf {
		for _, glob := range fl.Conflicts {
			if matched, _ := path.Match(glob, peer); matched {
				problems = append(problems, fmt.Sprintf("MachineOf=%s matches Conflicts=%s, so no machine can satisfy both", peer, glob))
			}
		}
		for _, glob := range fl.Replaces {
			if matched, _ := path.Match(glob, peer); matched {
				problems = append(problems, fmt.Sprintf("MachineOf=%s matches Replaces=%s, so no machine can satisfy both", peer, glob))
			}
		}
	}
	hasMachine := fl.MachineID != "" || fl.MachineBootID != ""
	combos := []struct {
		both       bool
		keys, with []string
	}{
		{hasMachine && len(fl.MachineOf) > 0, machineKeys, peerKeys},
		{hasMachine && len(fl.Conflicts) > 0, machineKeys, conflictKeys},
		{hasMachine && fl.Global, machineKeys, []string{"Global"}},
		{hasMachine && len(fl.Replaces) > 0, machineKeys, []string{"Replaces"}},
		{fl.Global && len(fl.MachineOf) > 0, []string{"Global"}, peerKeys},
		{fl.Global && len(fl.Replaces) > 0, []string{"Global"}, []string{"Replaces"}},
		{len(fl.Conflicts) > 0 && len(fl.Replaces) > 0, conflictKeys, []string{"Replaces"}},
	}
	for _, c := range combos {
		if c.both {
			problems = append(problems, fmt.Sprintf("%s cannot be used with %s", at(c.keys...), at(c.with...)))
		}
	}
	sortWarnings(warnings)
	if len(problems) > 0 {
		return Fleet{}, warnings, fmt.Errorf("%s: %w: %s", f.Name, ErrInvalidFleet, strings.Join(problems, "; "))
	}
	return fl, warnings, nil
}

// RequiredMachine returns the machine the unit must run on, as fleet's
// RequiredTarget does: MachineID, or else the legacy MachineBootID, which
// fleet compares with machine IDs although it can never match one.
func (fl Fleet) RequiredMachine() (string, bool) {
	if fl.MachineID != "" {
		return fl.MachineID, true
	}
	return fl.MachineBootID, fl.MachineBootID != ""
}

// MatchesMachine reports whether the unit may run on the machine with the
// given ID as far as MachineID goes: when no machine is required, or the
// required one is the ID or its first 8 characters (fleet's MatchID).
func (fl Fleet) MatchesMachine(machineID string) bool {
	want, ok := fl.RequiredMachine()
	if !ok {
		return true
	}
	short := machineID
	if len(short) > 8 {
		short = short[:8]
	}
	return want == machineID || want == short
}

// Matches reports whether a machine with this metadata satisfies
// MachineMetadata: for every key the machine must have one of the wanted
// values, compared for equality (fleet's machine.HasMetadata).
func (fl Fleet) Matches(metadata map[string]string) bool {
	for key, values := range fl.MachineMetadata {
		have, ok := metadata[key]
		if !ok || !contains(values, have) {
			return false
		}
	}
	return true
}

// ConflictsWith reports whether one of the unit's Conflicts globs matches
// the unit named name. fleet checks conflicts both ways: the scheduler must
// also ask the other unit's Fleet, and must not ask about the unit itself.
func (fl Fleet) ConflictsWith(name string) bool {
	for _, glob := range fl.Conflicts {
		if matched, _ := path.Match(glob, name); matched {
			return true
		}
	}
	return false
}

// parseMultivalueLine is fleet's unit/unit.go function of that name, kept
// byte for byte in behaviour: a value that starts and ends with a double
// quote is split at spaces outside quotes, with every quote dropped;
// anything else is one value.
func parseMultivalueLine(line string) []string {
	if !strings.HasPrefix(line, `"`) || !strings.HasSuffix(line, `"`) {
		return []string{line}
	}
	var values []string
	var v bytes.Buffer
	quoted := false
	for _, c := range []byte(line) {
		if c == '"' {
			quoted = !quoted
			continue
		}
		if c == ' ' && !quoted {
			values = append(values, v.String())
			v.Reset()
			continue
		}
		v.WriteByte(c)
	}
	return append(values, v.String())
}

// fleetPrintf is fleet's job/job.go unitPrintf: %n, %N, %p and %i replaced
// in turn, with the name split the way fleet's unit.NewUnitNameInfo splits
// it.
func fleetPrintf(s, fullName string) string {
	dot := strings.LastIndexByte(fullName, '.')
	if dot < 0 {
		return s
	}
	name := fullName[:dot]
	prefix, instance, _ := strings.Cut(name, "@")
	s = strings.ReplaceAll(s, "%n", fullName)
	s = strings.ReplaceAll(s, "%N", name)
	s = strings.ReplaceAll(s, "%p", prefix)
	return strings.ReplaceAll(s, "%i", instance)
}

// isTruthy is fleet's isTruthyValue.
func isTruthy(lower string) bool {
	return lower == "true" || lower == "yes" || lower == "1" || lower == "on" || lower == "t"
}

// isMachineID reports whether id can match a machine ID: 32 lower-case hex
// digits, or the first 8 of them.
func isMachineID(id string) bool {
	if len(id) != 32 && len(id) != 8 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
