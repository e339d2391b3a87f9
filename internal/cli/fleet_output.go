package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	gsunit "github.com/coreos/go-systemd/v22/unit"

	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/unit"
)

// This file holds fleetctl's output formats as pure functions: the
// columns of its list verbs, machine legends, hashes. They are fleetctl
// v1.0.0's (coreos/fleet: fleetctl/list_machines.go, list_units.go,
// list_unit_files.go, fleetctl.go), which scripts parse.

// newFleetTabWriter is fleetctl's table writer: cells padded with tabs,
// not spaces (coreos/fleet: fleetctl/help.go getTabOutWithWriter).
func newFleetTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 1, '\t', 0)
}

// printFleetTable prints rows under the upper-cased column names.
func printFleetTable(w io.Writer, cols []string, rows [][]string, noLegend bool) error {
	tw := newFleetTabWriter(w)
	if !noLegend {
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// machineLookup finds a live machine by ID; nil when it is not known.
type machineLookup func(id string) *schema.Machine

// shortIDLen is how much of a machine ID fleetctl shows without --full.
const shortIDLen = 8

// machineIDLegend is a machine ID as fleetctl shows it: its first eight
// characters and "..." unless full.
func machineIDLegend(id string, full bool) string {
	if full {
		return id
	}
	if len(id) > shortIDLen {
		id = id[:shortIDLen]
	}
	return id + "..."
}

// machineFullLegend is the ID legend followed by "/IP" when the machine
// has one: 113f16a7.../10.0.0.3.
func machineFullLegend(m *schema.Machine, full bool) string {
	legend := machineIDLegend(m.ID, full)
	if m.PrimaryIP != "" {
		legend += "/" + m.PrimaryIP
	}
	return legend
}

// machineColumn is the legend of the machine with ID id, or of the bare
// ID when the machine is not known (it may have gone).
func machineColumn(id string, machines machineLookup, full bool) string {
	if id == "" {
		return "-"
	}
	m := machines(id)
	if m == nil {
		m = &schema.Machine{ID: id}
	}
	return machineFullLegend(m, full)
}

// formatMetadata is k=v pairs sorted by key, joined by commas.
func formatMetadata(metadata map[string]string) string {
	keys := make([]string, 0, len(metadata))
	for k := range metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + metadata[k]
	}
	return strings.Join(pairs, ",")
}

// dash is s, or "-" when empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type (
	machineField   func(m *schema.Machine, full bool) string
	unitStateField func(us *schema.UnitState, machines machineLookup, full bool) string
	unitFileField  func(u *schema.Unit, machines machineLookup, full bool) string
)

const (
	defaultListMachinesFields  = "machine,ip,metadata"
	defaultListUnitsFields     = "unit,machine,active,sub"
	defaultListUnitFilesFields = "unit,hash,dstate,state,target"
)

var listMachinesFields = map[string]machineField{
	"machine": func(m *schema.Machine, full bool) string { return machineIDLegend(m.ID, full) },
	"ip":      func(m *schema.Machine, _ bool) string { return dash(m.PrimaryIP) },
	"metadata": func(m *schema.Machine, _ bool) string {
		if len(m.Metadata) == 0 {
			return "-"
		}
		return formatMetadata(m.Metadata)
	},
}

var listUnitsFields = map[string]unitStateField{
	"unit": func(us *schema.UnitState, _ machineLookup, _ bool) string {
		if us == nil {
			return "-"
		}
		return us.Name
	},
	"load": func(us *schema.UnitState, _ machineLookup, _ bool) string {
		if us == nil {
			return "-"
		}
		return us.SystemdLoadState
	},
	"active": func(us *schema.UnitState, _ machineLookup, _ bool) string {
		if us == nil {
			return "-"
		}
		return us.SystemdActiveState
	},
	"sub": func(us *schema.UnitState, _ machineLookup, _ bool) string {
		if us == nil {
			return "-"
		}
		return us.SystemdSubState
	},
	"machine": func(us *schema.UnitState, machines machineLookup, full bool) string {
		if us == nil {
			return "-"
		}
		return machineColumn(us.MachineID, machines, full)
	},
	"hash": func(us *schema.UnitState, _ machineLookup, full bool) string {
		if us == nil || us.Hash == "" {
			return "-"
		}
		if !full && len(us.Hash) > 7 {
			return us.Hash[:7]
		}
		return us.Hash
	},
}

// targetField is list-unit-files' TARGET: "global" for global units, the
// machine the unit is scheduled on, or "-".
func targetField(u *schema.Unit, machines machineLookup, full bool) string {
	if isGlobalUnit(u.Options) {
		return "global"
	}
	return machineColumn(u.MachineID, machines, full)
}

var listUnitFilesFields = map[string]unitFileField{
	"unit": func(u *schema.Unit, _ machineLookup, _ bool) string { return u.Name },
	"global": func(u *schema.Unit, _ machineLookup, _ bool) string {
		return strconv.FormatBool(isGlobalUnit(u.Options))
	},
	"dstate":   func(u *schema.Unit, _ machineLookup, _ bool) string { return dash(u.DesiredState) },
	"target":   targetField,
	"tmachine": targetField,
	// state is atoll's "unplaceable" for a unit the engine could not
	// place, fleet's current state otherwise ("-" for global units,
	// which have none).
	"state": func(u *schema.Unit, _ machineLookup, _ bool) string {
		switch {
		case u.Reason != "":
			return "unplaceable"
		case isGlobalUnit(u.Options):
			return "-"
		}
		return dash(u.CurrentState)
	},
	"hash": func(u *schema.Unit, _ machineLookup, full bool) string {
		h := optionsHash(u.Options)
		if full {
			return h.String()
		}
		return h.Short()
	},
	"desc": func(u *schema.Unit, _ machineLookup, _ bool) string {
		for _, o := range u.Options {
			if o.Section == "Unit" && o.Name == "Description" {
				return dash(o.Value)
			}
		}
		return "-"
	},
	// reason is atoll's: why the engine could not place the unit.
	"reason": func(u *schema.Unit, _ machineLookup, _ bool) string { return dash(u.Reason) },
}

// fieldNames are the keys of a field table, sorted, as fleetctl lists
// them in its --fields help and errors.
func fieldNames[F any](fields map[string]F) []string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func fieldsHelp[F any](what string, fields map[string]F) string {
	return fmt.Sprintf("Columns to print for each %s. Valid fields are %q", what, strings.Join(fieldNames(fields), ","))
}

// parseFields splits --fields and checks each column, with fleetctl's
// messages.
func parseFields[F any](flag string, fields map[string]F) ([]string, error) {
	if flag == "" {
		//lint:ignore ST1005 fleetctl's message, word for word
		return nil, errors.New("Must define output format")
	}
	cols := strings.Split(flag, ",")
	for _, c := range cols {
		if _, ok := fields[c]; !ok {
			//lint:ignore ST1005 fleetctl's message, word for word
			return nil, fmt.Errorf("Invalid key in output format: %q", c)
		}
	}
	return cols, nil
}

func machineRows(cols []string, machines []*schema.Machine, full bool) [][]string {
	rows := make([][]string, 0, len(machines))
	for _, m := range machines {
		r := make([]string, len(cols))
		for i, c := range cols {
			r[i] = listMachinesFields[c](m, full)
		}
		rows = append(rows, r)
	}
	return rows
}

func unitStateRows(cols []string, states []*schema.UnitState, machines machineLookup, full bool) [][]string {
	rows := make([][]string, 0, len(states))
	for _, us := range states {
		r := make([]string, len(cols))
		for i, c := range cols {
			r[i] = listUnitsFields[c](us, machines, full)
		}
		rows = append(rows, r)
	}
	return rows
}

func unitFileRows(cols []string, units []*schema.Unit, machines machineLookup, full bool) [][]string {
	rows := make([][]string, 0, len(units))
	for _, u := range units {
		r := make([]string, len(cols))
		for i, c := range cols {
			r[i] = listUnitFilesFields[c](u, machines, full)
		}
		rows = append(rows, r)
	}
	return rows
}

// unitFileColumns are list-unit-files' columns: those asked for, or the
// default ones with atoll's REASON after them when some unit has a
// reason not to be placed.
func unitFileColumns(fieldsFlag string, explicit bool, units []*schema.Unit) ([]string, error) {
	cols, err := parseFields(fieldsFlag, listUnitFilesFields)
	if err != nil || explicit {
		return cols, err
	}
	for _, u := range units {
		if u.Reason != "" {
			return append(cols, "reason"), nil
		}
	}
	return cols, nil
}

// toUnitOptions converts the API's options to go-systemd's.
func toUnitOptions(opts []*schema.UnitOption) []*gsunit.UnitOption {
	out := make([]*gsunit.UnitOption, 0, len(opts))
	for _, o := range opts {
		if o != nil {
			out = append(out, &gsunit.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value})
		}
	}
	return out
}

// toSchemaOptions converts a unit file's options to the API's.
func toSchemaOptions(opts []*gsunit.UnitOption) []*schema.UnitOption {
	out := make([]*schema.UnitOption, len(opts))
	for i, o := range opts {
		out[i] = &schema.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	return out
}

// optionsHash is fleet's hash of a unit's options: the SHA-1 of the file
// go-systemd writes from them.
func optionsHash(opts []*schema.UnitOption) unit.Hash {
	return (&unit.File{Options: toUnitOptions(opts)}).Hash()
}

// isGlobalUnit tells a unit whose last [X-Fleet] Global= is true, yes,
// 1, on or t (coreos/fleet: job/job.go IsGlobal).
func isGlobalUnit(opts []*schema.UnitOption) bool {
	global := ""
	for _, o := range opts {
		if o.Section == "X-Fleet" && o.Name == "Global" {
			global = o.Value
		}
	}
	switch strings.ToLower(strings.TrimSpace(global)) {
	case "true", "yes", "1", "on", "t":
		return true
	}
	return false
}
