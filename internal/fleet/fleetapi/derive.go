package fleetapi

import (
	"sort"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/fleet/schema"
	gsunit "github.com/coreos/go-systemd/v22/unit"
)

// deriveUnit is the API's view of one submitted unit in a snapshot, all
// but its options (see the package doc, "What a Unit says"):
//
//   - desiredState is the unit's.
//   - A non-global unit with exactly one schedule entry has that entry's
//     machine as machineID, and as currentState the state its agent
//     reached (loaded or launched) when the agent's report is for the
//     placed file (same hash); otherwise it is inactive. One with no
//     entry, or several (the engine is moving it), is inactive on no
//     machine.
//   - A global unit names no machine and is inactive, as fleet's unit
//     list shows it: fleet never targets a global unit at a machine, so
//     its job state is "inactive" (coreos/fleet: registry/job_state.go
//     determineJobState, client/registry.go Units). Where it runs is in
//     the states.
//   - reason is the engine's, when it is about the unit's current file.
func deriveUnit(s *registry.Snapshot, u registry.Unit, global bool) *schema.Unit {
	out := &schema.Unit{
		Name:         u.Name,
		DesiredState: string(u.DesiredState),
		CurrentState: schema.StateInactive,
	}
	if un, ok := s.Unplaced[u.Name]; ok && un.Hash == u.Hash {
		out.Reason = un.Reason
	}
	if global {
		return out
	}
	var placed *registry.Placement
	for i := range s.Schedule {
		p := &s.Schedule[i]
		if p.Unit != u.Name {
			continue
		}
		if placed != nil {
			return out // on two machines at once: moving
		}
		placed = p
	}
	if placed == nil {
		return out
	}
	out.MachineID = placed.Machine
	for _, st := range s.States {
		if st.Unit != u.Name || st.Machine != placed.Machine {
			continue
		}
		if st.Hash == placed.Hash && (st.Reached == registry.Loaded || st.Reached == registry.Launched) {
			out.CurrentState = string(st.Reached)
		}
		break
	}
	return out
}

// schemaOptions is a unit file's options on the wire, in file order.
func schemaOptions(opts []*gsunit.UnitOption) []*schema.UnitOption {
	if len(opts) == 0 {
		return nil
	}
	out := make([]*schema.UnitOption, len(opts))
	for i, o := range opts {
		out[i] = &schema.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	return out
}

// unitOptions is the wire's options as go-systemd's.
func unitOptions(opts []*schema.UnitOption) []*gsunit.UnitOption {
	out := make([]*gsunit.UnitOption, len(opts))
	for i, o := range opts {
		if o != nil {
			out[i] = &gsunit.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value}
		}
	}
	return out
}

// unitStates is every state the agents report, filtered by machine and
// unit when those are not empty (coreos/fleet: api/state.go), sorted by
// unit, then machine, as fleet sorts them (registry/unit_state.go).
func unitStates(s *registry.Snapshot, machineID, unitName string) []*schema.UnitState {
	var out []*schema.UnitState
	for _, st := range s.States {
		if machineID != "" && st.Machine != machineID {
			continue
		}
		if unitName != "" && st.Unit != unitName {
			continue
		}
		us := &schema.UnitState{
			Name:               st.Unit,
			MachineID:          st.Machine,
			SystemdLoadState:   st.LoadState,
			SystemdActiveState: st.ActiveState,
			SystemdSubState:    st.SubState,
		}
		if !st.Hash.IsZero() {
			us.Hash = st.Hash.String()
		}
		out = append(out, us)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Name < b.Name || a.Name == b.Name && a.MachineID < b.MachineID
	})
	return out
}

// machines is every live machine, sorted by ID as fleet lists them, with
// operator metadata merged (the snapshot merges it).
func machines(s *registry.Snapshot) []*schema.Machine {
	out := make([]*schema.Machine, 0, len(s.Machines))
	for id, m := range s.Machines {
		if m.ID == "" {
			m.ID = id
		}
		sm := &schema.Machine{ID: m.ID, PrimaryIP: m.PublicIP}
		if len(m.Metadata) > 0 {
			sm.Metadata = make(map[string]string, len(m.Metadata))
			for k, v := range m.Metadata {
				sm.Metadata[k] = v
			}
		}
		out = append(out, sm)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
