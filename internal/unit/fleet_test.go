package unit

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func parseFleet(t *testing.T, name, section string) (Fleet, []Warning, error) {
	t.Helper()
	f, _, err := Parse(name, strings.NewReader("[Service]\nExecStart=/bin/true\n\n[X-Fleet]\n"+section))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f.Fleet()
}

const machineID = "2f3b1b4c5d6e7f8091a2b3c4d5e6f708"

func TestFleet(t *testing.T) {
	tests := []struct {
		name    string
		unit    string
		section string
		want    Fleet
	}{
		{"empty", "a.service", "", Fleet{}},
		{"machine ID, first wins", "a.service", "MachineID=" + machineID + "\nMachineID=other\n", Fleet{MachineID: machineID}},
		{"short machine ID", "a.service", "MachineID=2f3b1b4c\n", Fleet{MachineID: "2f3b1b4c"}},
		{"legacy machine ID loses to MachineID", "a.service",
			"X-ConditionMachineID=11111111\nMachineID=22222222\n", Fleet{MachineID: "22222222"}},
		{"legacy machine ID", "a.service", "X-ConditionMachineID=11111111\n", Fleet{MachineID: "11111111"}},
		{"boot ID", "a.service", "X-ConditionMachineBootID=33333333\n", Fleet{MachineBootID: "33333333"}},
		{"machine of, legacy first", "a.service", "MachineOf=b.service\nX-ConditionMachineOf=c.service\n",
			Fleet{MachineOf: []string{"c.service", "b.service"}}},
		{"metadata", "a.service",
			"MachineMetadata=region=us-east-1\nMachineMetadata=region=us-west-1\nMachineMetadata=\"disk=ssd\" \"rack=2\"\nX-ConditionMachineMetadata=os=coreos\n",
			Fleet{MachineMetadata: map[string][]string{"region": {"us-east-1", "us-west-1"}, "disk": {"ssd"}, "rack": {"2"}, "os": {"coreos"}}}},
		{"conflicts split at white space", "a.service",
			"Conflicts=conflict.2.service conflict.1.service\nX-Conflicts=old*\nConflicts=conflict.0.service\n",
			Fleet{Conflicts: []string{"old*", "conflict.2.service", "conflict.1.service", "conflict.0.service"}}},
		{"global, last wins", "a.service", "Global=false\nGlobal=Yes\n", Fleet{Global: true}},
		{"global t", "a.service", "Global=t\n", Fleet{Global: true}},
		{"global off", "a.service", "Global=true\nGlobal=off\n", Fleet{}},
		{"global with conflicts and metadata", "a.service", "Global=true\nConflicts=a*\nMachineMetadata=a=b\n",
			Fleet{Global: true, Conflicts: []string{"a*"}, MachineMetadata: map[string][]string{"a": {"b"}}}},
		{"replaces", "a.service", "Replaces=b.service\n", Fleet{Replaces: []string{"b.service"}}},
		{"self-matching conflict is fine", "conflict.0.service", "Conflicts=conflict.*.service\n",
			Fleet{Conflicts: []string{"conflict.*.service"}}},
		{"specifiers", "web@3.service", "MachineOf=%p-db@%i.service\nConflicts=%N-* %n\nMachineMetadata=slot=%i\n",
			Fleet{MachineOf: []string{"web-db@3.service"}, Conflicts: []string{"web@3-*", "web@3.service"},
				MachineMetadata: map[string][]string{"slot": {"3"}}}},
		{"fleet's plain substitution", "web@3.service", "MachineOf=%%i.service\n", Fleet{MachineOf: []string{"%3.service"}}},
		{"templates are not expanded", "web@.service", "MachineOf=%p-db@%i.service\n", Fleet{MachineOf: []string{"%p-db@%i.service"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, err := parseFleet(t, tt.unit, tt.section)
			if err != nil {
				t.Fatalf("Fleet: %v", err)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %v", warnings)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Fleet (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFleetWarnings(t *testing.T) {
	section := `Weight=3
MachineMetadata=nokey
MachineMetadata=a=b=c
MachineMetadata=empty=
Conflicts=[bad
Global=maybe
`
	fl, warnings, err := parseFleet(t, "a.service", section)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.String())
	}
	want := []string{
		"a.service:5: unknown directive Weight= in [X-Fleet]: fleet ignores it",
		"a.service:6: MachineMetadata=nokey is not key=value: fleet ignores it",
		"a.service:7: MachineMetadata=a=b=c is not key=value: fleet ignores it",
		"a.service:8: MachineMetadata=empty= is not key=value: fleet ignores it",
		"a.service:9: Conflicts=[bad is not a valid glob: fleet never matches it",
		"a.service:10: Global=maybe is not a boolean: fleet takes it for false",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if fl.MachineMetadata != nil || fl.Global {
		t.Errorf("Fleet = %+v, want the ignored values left out", fl)
	}

	for _, id := range []string{"1", strings.ToUpper(machineID), machineID + "0"} {
		_, warnings, err := parseFleet(t, "a.service", "MachineID="+id+"\n")
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0].String(), "a.service:5: MachineID="+id+" can match no machine") {
			t.Errorf("MachineID=%s: warnings %v, error %v; want one warning at line 5", id, warnings, err)
		}
	}
}

func TestFleetInvalid(t *testing.T) {
	// The combinations fleet's API refuses (api/units.go ValidateOptions).
	tests := []struct {
		section string
		want    string
	}{
		{"MachineID=" + machineID + "\nMachineOf=b.service\n", "MachineID= (line 5) cannot be used with MachineOf= (line 6)"},
		{"X-ConditionMachineID=" + machineID + "\nX-ConditionMachineOf=b.service\n", "X-ConditionMachineID= (line 5) cannot be used with X-ConditionMachineOf= (line 6)"},
		{"MachineID=" + machineID + "\nConflicts=b*\n", "MachineID= (line 5) cannot be used with Conflicts= (line 6)"},
		{"MachineID=" + machineID + "\nGlobal=true\n", "cannot be used with Global="},
		{"X-ConditionMachineBootID=" + machineID + "\nReplaces=b.service\n", "X-ConditionMachineBootID= (line 5) cannot be used with Replaces="},
		{"Global=true\nMachineOf=b.service\n", "Global= (line 5) cannot be used with MachineOf="},
		{"Global=true\nReplaces=b.service\n", "Global= (line 5) cannot be used with Replaces="},
		{"Conflicts=b*\nReplaces=c.service\n", "Conflicts= (line 5) cannot be used with Replaces="},
		{"MachineOf=b.service\nConflicts=b*\n", "MachineOf=b.service matches Conflicts=b*"},
		{"MachineOf=b.service\nReplaces=b.service\n", "MachineOf=b.service matches Replaces=b.service"},
		{"MachineID=\n", "MachineID= is empty"},
		{"MachineOf=\n", "MachineOf= is empty"},
		{"X-ConditionMachineBootID=\n", "X-ConditionMachineBootID= is empty"},
	}
	for _, tt := range tests {
		_, _, err := parseFleet(t, "a.service", tt.section)
		if !errors.Is(err, ErrInvalidFleet) || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "a.service: ") {
			t.Errorf("Fleet(%q) error = %v, want ErrInvalidFleet with %q", tt.section, err, tt.want)
		}
	}
	// Every problem is reported, not only the first.
	_, _, err := parseFleet(t, "a.service", "MachineID="+machineID+"\nGlobal=true\nReplaces=x\n")
	if err == nil || strings.Count(err.Error(), "cannot be used with") != 3 {
		t.Errorf("error = %v, want three problems", err)
	}
}

func TestFleetMatching(t *testing.T) {
	fl, _, err := parseFleet(t, "a.service", "MachineMetadata=region=east\nMachineMetadata=region=west\nMachineMetadata=disk=ssd\nConflicts=db@*.service web.service\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		metadata map[string]string
		want     bool
	}{
		{map[string]string{"region": "east", "disk": "ssd"}, true},
		{map[string]string{"region": "west", "disk": "ssd", "extra": "x"}, true},
		{map[string]string{"region": "north", "disk": "ssd"}, false},
		{map[string]string{"region": "east"}, false},
		{nil, false},
	} {
		if got := fl.Matches(tt.metadata); got != tt.want {
			t.Errorf("Matches(%v) = %v, want %v", tt.metadata, got, tt.want)
		}
	}
	if !(Fleet{}).Matches(nil) {
		t.Error("a unit without MachineMetadata must match any machine")
	}
	for name, want := range map[string]bool{"db@1.service": true, "web.service": true, "web@1.service": false, "db.service": false} {
		if got := fl.ConflictsWith(name); got != want {
			t.Errorf("ConflictsWith(%s) = %v, want %v", name, got, want)
		}
	}

	pinned := Fleet{MachineID: machineID[:8]}
	if !pinned.MatchesMachine(machineID) || pinned.MatchesMachine("ffffffff"+machineID[8:]) {
		t.Error("MatchesMachine does not follow fleet's full-or-short ID rule")
	}
	if id, ok := (Fleet{MachineBootID: "b"}).RequiredMachine(); id != "b" || !ok {
		t.Errorf("RequiredMachine with only a boot ID = %q, %v; want it used as fleet does", id, ok)
	}
	if !(Fleet{}).MatchesMachine(machineID) {
		t.Error("a unit without MachineID must match any machine")
	}
}

// TestParseMultivalueLine is fleet's test of the same name
// (unit/unit_test.go), quirks included.
func TestParseMultivalueLine(t *testing.T) {
	tests := []struct {
		in  string
		out []string
	}{
		{`"bar" "ping" "pong"`, []string{`bar`, `ping`, `pong`}},
		{`"bar"`, []string{`bar`}},
		{``, []string{""}},
		{`""`, []string{``}},
		{`"bar`, []string{`"bar`}},
		{`bar"`, []string{`bar"`}},
		{`foo\"bar`, []string{`foo\"bar`}},
		{`"bar" "`, []string{`bar`, ``}},
		{`"foo\"bar"`, []string{`foo\bar`}},
	}
	for _, tt := range tests {
		if got := parseMultivalueLine(tt.in); !cmp.Equal(got, tt.out) {
			t.Errorf("parseMultivalueLine(%q) = %q, want %q", tt.in, got, tt.out)
		}
	}
}
