package cli

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"testing"

	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/unit"
)

// Ported from coreos/fleet: fleetctl/fleetctl_test.go, list_machines_test.go,
// list_units_test.go and list_unit_files_test.go, whose expected strings
// are the contract scripts rely on.

func TestFleetMachineLegends(t *testing.T) {
	withIP := &schema.Machine{ID: "595989bb-cbb7-49ce-8726-722d6e157b4e", PrimaryIP: "5.6.7.8", Metadata: map[string]string{"foo": "bar"}}
	withoutIP := &schema.Machine{ID: "520983A8-FB9C-4A68-B49C-CED5BB2E9D08", Metadata: map[string]string{"foo": "bar"}}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"id full", machineIDLegend(withIP.ID, true), "595989bb-cbb7-49ce-8726-722d6e157b4e"},
		{"id short", machineIDLegend(withIP.ID, false), "595989bb..."},
		{"legend with IP short", machineFullLegend(withIP, false), "595989bb.../5.6.7.8"},
		{"legend with IP full", machineFullLegend(withIP, true), "595989bb-cbb7-49ce-8726-722d6e157b4e/5.6.7.8"},
		{"legend without IP short", machineFullLegend(withoutIP, false), "520983A8..."},
		{"legend without IP full", machineFullLegend(withoutIP, true), "520983A8-FB9C-4A68-B49C-CED5BB2E9D08"},
		{"short ID shorter than 8", machineIDLegend("abc", false), "abc..."},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestFleetUnitNameMangle(t *testing.T) {
	for arg, want := range map[string]string{
		"foo":            "foo.service",
		"foo.1":          "foo.1.service",
		"foo/bar.socket": "bar.socket",
		"foo.socket":     "foo.socket",
		"foo.service":    "foo.service",
		"web@1":          "web@1.service",
		"dir/web@.timer": "web@.timer",
		"x.target":       "x.target",
	} {
		if got := unitNameOf(arg); got != want {
			t.Errorf("unitNameOf(%q) = %q, want %q", arg, got, want)
		}
	}
}

func TestFleetBlockAttempts(t *testing.T) {
	for _, tt := range []struct {
		noBlock       bool
		blockAttempts int
		want          int
	}{
		{true, 0, -1},
		{true, -1, -1},
		{true, 9999, -1},
		{false, 0, 0},
		{false, -1, 0},
		{false, 9999, 9999},
	} {
		f := fleetUnitFlags{noBlock: tt.noBlock, blockAttempts: tt.blockAttempts}
		if got := f.attempts(); got != tt.want {
			t.Errorf("--no-block=%t --block-attempts=%d: got %d, want %d", tt.noBlock, tt.blockAttempts, got, tt.want)
		}
	}
}

func TestFleetListMachinesFields(t *testing.T) {
	m := &schema.Machine{
		ID:        "4d389537d9d14bdabe8be54a9c29f68d",
		PrimaryIP: "192.0.2.1",
		Metadata:  map[string]string{"ping": "pong", "foo": "bar"},
	}
	for _, tt := range []struct {
		field string
		full  bool
		want  string
	}{
		{"machine", false, "4d389537..."},
		{"machine", true, "4d389537d9d14bdabe8be54a9c29f68d"},
		{"ip", false, "192.0.2.1"},
		{"metadata", false, "foo=bar,ping=pong"},
	} {
		if got := listMachinesFields[tt.field](m, tt.full); got != tt.want {
			t.Errorf("%s (full %t): got %q, want %q", tt.field, tt.full, got, tt.want)
		}
	}
	empty := &schema.Machine{ID: m.ID, Metadata: map[string]string{}}
	for _, field := range []string{"ip", "metadata"} {
		if got := listMachinesFields[field](empty, false); got != "-" {
			t.Errorf("%s of a machine without one: got %q, want %q", field, got, "-")
		}
	}
}

func TestFleetListUnitsFields(t *testing.T) {
	noMachines := func(string) *schema.Machine { return nil }
	// A nil state should not happen, but prints dashes.
	for _, field := range []string{"unit", "load", "active", "sub", "machine", "hash"} {
		if got := listUnitsFields[field](nil, noMachines, false); got != "-" {
			t.Errorf("%s of nil: got %q, want %q", field, got, "-")
		}
	}
	us := &schema.UnitState{Name: "sleep", SystemdLoadState: "foo", SystemdActiveState: "bar", SystemdSubState: "baz"}
	for field, want := range map[string]string{"load": "foo", "active": "bar", "sub": "baz", "machine": "-", "unit": "sleep"} {
		if got := listUnitsFields[field](us, noMachines, false); got != want {
			t.Errorf("%s: got %q, want %q", field, got, want)
		}
	}
	us.MachineID = "some-id"
	if got := listUnitsFields["machine"](us, noMachines, true); got != "some-id" {
		t.Errorf("machine unknown to the machine list: got %q, want %q", got, "some-id")
	}
	us.MachineID = "other-id"
	known := func(id string) *schema.Machine {
		if id == "other-id" {
			return &schema.Machine{ID: "other-id", PrimaryIP: "1.2.3.4"}
		}
		return nil
	}
	if got := listUnitsFields["machine"](us, known, true); got != "other-id/1.2.3.4" {
		t.Errorf("machine with IP: got %q, want %q", got, "other-id/1.2.3.4")
	}
	us.Hash = "a0f275d46bc6ee0eca06be7c339913c07d99c0c7"
	if got := listUnitsFields["hash"](us, known, true); got != us.Hash {
		t.Errorf("full hash: got %q, want %q", got, us.Hash)
	}
	if got := listUnitsFields["hash"](us, known, false); got != "a0f275d" {
		t.Errorf("short hash: got %q, want %q", got, "a0f275d")
	}
}

func TestFleetListUnitFilesFields(t *testing.T) {
	noMachines := func(string) *schema.Machine { return nil }
	u := &schema.Unit{Name: "foo.service", Options: []*schema.UnitOption{}}
	for field, want := range map[string]string{
		"hash": "da39a3e", "desc": "-", "dstate": "-", "tmachine": "-", "state": "-", "unit": "foo.service", "global": "false", "reason": "-",
	} {
		if got := listUnitFilesFields[field](u, noMachines, false); got != want {
			t.Errorf("%s of an empty unit: got %q, want %q", field, got, want)
		}
	}

	u = &schema.Unit{Name: "foo.service", Options: []*schema.UnitOption{{Section: "Unit", Name: "Description", Value: "some description"}}}
	if got := listUnitFilesFields["desc"](u, noMachines, false); got != "some description" {
		t.Errorf("desc: got %q, want %q", got, "some description")
	}
	for _, state := range []string{schema.StateLoaded, schema.StateInactive, schema.StateLaunched} {
		u.CurrentState = state
		if got := listUnitFilesFields["state"](u, noMachines, false); got != state {
			t.Errorf("state: got %q, want %q", got, state)
		}
	}
	u.MachineID = "some-id"
	if got := listUnitFilesFields["tmachine"](u, noMachines, true); got != "some-id" {
		t.Errorf("tmachine: got %q, want %q", got, "some-id")
	}
	u.MachineID = "other-id"
	known := func(id string) *schema.Machine { return &schema.Machine{ID: id, PrimaryIP: "1.2.3.4"} }
	if got := listUnitFilesFields["tmachine"](u, known, true); got != "other-id/1.2.3.4" {
		t.Errorf("tmachine with IP: got %q, want %q", got, "other-id/1.2.3.4")
	}
	const hash = "a0f275d46bc6ee0eca06be7c339913c07d99c0c7"
	if got := listUnitFilesFields["hash"](u, known, true); got != hash {
		t.Errorf("full hash: got %q, want %q", got, hash)
	}
	if got := listUnitFilesFields["hash"](u, known, false); got != hash[:7] {
		t.Errorf("short hash: got %q, want %q", got, hash[:7])
	}

	// atoll's: an unplaceable unit and its reason.
	u.Reason = "no machine has region=us"
	if got := listUnitFilesFields["state"](u, known, false); got != "unplaceable" {
		t.Errorf("state of an unplaceable unit: got %q, want %q", got, "unplaceable")
	}
	if got := listUnitFilesFields["reason"](u, known, false); got != u.Reason {
		t.Errorf("reason: got %q, want %q", got, u.Reason)
	}
}

func TestFleetTargetField(t *testing.T) {
	known := func(id string) *schema.Machine {
		if id == "XXX" {
			return &schema.Machine{ID: "XXX"}
		}
		return nil
	}
	for _, tt := range []struct {
		name string
		unit schema.Unit
		want string
	}{
		{"scheduled", schema.Unit{MachineID: "XXX"}, "XXX"},
		{"not scheduled", schema.Unit{}, "-"},
		{"global", schema.Unit{Options: []*schema.UnitOption{{Section: "X-Fleet", Name: "Global", Value: "true"}}}, "global"},
		{"global: the last Global= wins", schema.Unit{Options: []*schema.UnitOption{
			{Section: "X-Fleet", Name: "Global", Value: "true"}, {Section: "X-Fleet", Name: "Global", Value: "no"}}}, "-"},
	} {
		if got := targetField(&tt.unit, known, true); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestFleetDefaultFieldsAreFields(t *testing.T) {
	for _, d := range []struct {
		defaults string
		valid    []string
	}{
		{defaultListMachinesFields, fieldNames(listMachinesFields)},
		{defaultListUnitsFields, fieldNames(listUnitsFields)},
		{defaultListUnitFilesFields, fieldNames(listUnitFilesFields)},
	} {
		for _, f := range strings.Split(d.defaults, ",") {
			found := false
			for _, v := range d.valid {
				found = found || v == f
			}
			if !found {
				t.Errorf("default field %q is not one of %v", f, d.valid)
			}
		}
	}
}

func TestFleetParseFields(t *testing.T) {
	for _, tt := range []struct {
		flag    string
		want    []string
		wantErr string
	}{
		{"unit,machine", []string{"unit", "machine"}, ""},
		{"", nil, "Must define output format"},
		{"unit,bogus", nil, `Invalid key in output format: "bogus"`},
		{"unit,", nil, `Invalid key in output format: ""`},
	} {
		got, err := parseFields(tt.flag, listUnitsFields)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("parseFields(%q): error %v, want %q", tt.flag, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseFields(%q) = %v, %v; want %v", tt.flag, got, err, tt.want)
		}
	}
	if got := fieldsHelp("Unit", listUnitsFields); got != `Columns to print for each Unit. Valid fields are "active,hash,load,machine,sub,unit"` {
		t.Errorf("fields help: got %q", got)
	}
}

func TestFleetUnitFileColumns(t *testing.T) {
	placed := &schema.Unit{Name: "a.service"}
	stuck := &schema.Unit{Name: "b.service", Reason: "no machine fits"}
	for _, tt := range []struct {
		name     string
		fields   string
		explicit bool
		units    []*schema.Unit
		want     string
	}{
		{"no reasons", defaultListUnitFilesFields, false, []*schema.Unit{placed}, "unit,hash,dstate,state,target"},
		{"a reason adds REASON", defaultListUnitFilesFields, false, []*schema.Unit{placed, stuck}, "unit,hash,dstate,state,target,reason"},
		{"--fields is kept as given", "unit,state", true, []*schema.Unit{stuck}, "unit,state"},
		{"--fields may ask for reason", "unit,reason", true, []*schema.Unit{placed}, "unit,reason"},
	} {
		got, err := unitFileColumns(tt.fields, tt.explicit, tt.units)
		if err != nil || strings.Join(got, ",") != tt.want {
			t.Errorf("%s: got %v (%v), want %s", tt.name, got, err, tt.want)
		}
	}
}

// fleetctl pads with tabs: scripts split its rows on white space.
func TestFleetTables(t *testing.T) {
	machines := map[string]*schema.Machine{
		"113f16a7c2a94d3f8e6b5a4c3d2e1f00": {ID: "113f16a7c2a94d3f8e6b5a4c3d2e1f00", PrimaryIP: "10.0.0.3", Metadata: map[string]string{"region": "us", "disk": "ssd"}},
		"2b7e1516aed24a8c9d0f1e2d3c4b5a69": {ID: "2b7e1516aed24a8c9d0f1e2d3c4b5a69", PrimaryIP: "10.0.0.4"},
	}
	lookup := func(id string) *schema.Machine { return machines[id] }
	list := []*schema.Machine{machines["113f16a7c2a94d3f8e6b5a4c3d2e1f00"], machines["2b7e1516aed24a8c9d0f1e2d3c4b5a69"]}
	states := []*schema.UnitState{
		{Name: "hello.service", MachineID: "113f16a7c2a94d3f8e6b5a4c3d2e1f00", SystemdLoadState: "loaded", SystemdActiveState: "active", SystemdSubState: "running"},
		{Name: "web@1.service", MachineID: "2b7e1516aed24a8c9d0f1e2d3c4b5a69", SystemdLoadState: "loaded", SystemdActiveState: "inactive", SystemdSubState: "dead"},
	}
	units := []*schema.Unit{
		{Name: "hello.service", DesiredState: "launched", CurrentState: "launched", MachineID: "113f16a7c2a94d3f8e6b5a4c3d2e1f00",
			Options: []*schema.UnitOption{{Section: "Unit", Name: "Description", Value: "some description"}}},
		{Name: "global.service", DesiredState: "launched", CurrentState: "inactive",
			Options: []*schema.UnitOption{{Section: "X-Fleet", Name: "Global", Value: "true"}}},
		{Name: "stuck.service", DesiredState: "launched", CurrentState: "inactive", Reason: "3 machines: MachineMetadata region=eu"},
	}
	unitCols, _ := unitFileColumns(defaultListUnitFilesFields, false, units)
	for _, tt := range []struct {
		name     string
		cols     []string
		rows     [][]string
		noLegend bool
		want     string
	}{
		{"list-machines", []string{"machine", "ip", "metadata"}, machineRows([]string{"machine", "ip", "metadata"}, list, false), false,
			"MACHINE\t\tIP\t\tMETADATA\n" +
				"113f16a7...\t10.0.0.3\tdisk=ssd,region=us\n" +
				"2b7e1516...\t10.0.0.4\t-\n"},
		{"list-machines --full --no-legend", []string{"machine", "ip"}, machineRows([]string{"machine", "ip"}, list, true), true,
			"113f16a7c2a94d3f8e6b5a4c3d2e1f00\t10.0.0.3\n" +
				"2b7e1516aed24a8c9d0f1e2d3c4b5a69\t10.0.0.4\n"},
		{"list-units", []string{"unit", "machine", "active", "sub"}, unitStateRows([]string{"unit", "machine", "active", "sub"}, states, lookup, false), false,
			"UNIT\t\tMACHINE\t\t\tACTIVE\t\tSUB\n" +
				"hello.service\t113f16a7.../10.0.0.3\tactive\t\trunning\n" +
				"web@1.service\t2b7e1516.../10.0.0.4\tinactive\tdead\n"},
		{"list-unit-files", unitCols, unitFileRows(unitCols, units, lookup, false), false,
			"UNIT\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET\t\t\tREASON\n" +
				"hello.service\ta0f275d\tlaunched\tlaunched\t113f16a7.../10.0.0.3\t-\n" +
				"global.service\te32a2bc\tlaunched\t-\t\tglobal\t\t\t-\n" +
				"stuck.service\tda39a3e\tlaunched\tunplaceable\t-\t\t\t3 machines: MachineMetadata region=eu\n"},
	} {
		var b bytes.Buffer
		if err := printFleetTable(&b, tt.cols, tt.rows, tt.noLegend); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.name, b.String(), tt.want)
		}
	}
}

// Ported from coreos/fleet: fleetctl/fleetctl_test.go TestCreateUnitFails:
// names and [X-Fleet] sections fleet's API refuses never reach it. (A
// brace expression reaches createUnit only when it is not one: the
// command expands the others.)
func TestFleetCreateUnitFails(t *testing.T) {
	c := &fleetConn{stdout: io.Discard, stderr: io.Discard} // no API: a call would panic
	for i, tt := range []struct {
		name, text string
	}{
		{"foo.{1-3}.service", ""},
		{"foo@{1,3.service", ""},
		{"foo.service", "[X-Fleet]\nMachineOf=abcd\nConflicts=abcd\n"},
		{"foo.service", "[X-Fleet]\nGlobal=true\nMachineOf=abcd\n"},
		{"foo.service", "[X-Fleet]\nGlobal=true\nMachineOf=zxcvq\n"},
		{"foo.service", "[X-Fleet]\nGlobal=true\nReplaces=bar\n"},
		{"foo.service", "[X-Fleet]\nConflicts=bar\nReplaces=bar\n"},
		{"foo.service", "[X-Fleet]\nMachineOf=abcd\nReplaces=abcd\n"},
	} {
		f, _, err := unit.Parse("foo.service", strings.NewReader(tt.text))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("case %d (%s, %q): called the API", i, tt.name, tt.text)
				}
			}()
			if err := c.createUnit(context.Background(), tt.name, f); err == nil {
				t.Errorf("case %d (%s, %q): no error", i, tt.name, tt.text)
			}
		}()
	}
}
