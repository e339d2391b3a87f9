package unit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixturesDir is ../shared/fixtures/units seen from the repository root:
// real unit files from fleet's examples and functional tests, read in
// place.
func fixturesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "fixtures", "units")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no unit fixtures: %v", err)
	}
	return dir
}

// TestFixtures parses every fixture, instantiates templates with instance
// "1", expands specifiers, reads [X-Fleet], and checks the only warning is
// the right one.
func TestFixtures(t *testing.T) {
	dir := fixturesDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no files in %s", dir)
	}
	// pin@.service says MachineID=%i, so instance "1" pins it to a machine
	// that cannot exist; fleet's functional test instantiates it with real
	// machine IDs.
	wantWarnings := map[string][]string{
		"pin@1.service": {"MachineID=1 can match no machine: machine IDs are 32 lower-case hex digits, or their first 8"},
	}
	ctx := Context{Hostname: "node1", MachineID: machineID, BootID: "0123456789abcdef0123456789abcdef"}
	for _, path := range paths {
		base := filepath.Base(path)
		// The fixtures are named after where they come from in fleet's
		// tree; the unit name is the rest, which the X-Fleet sections refer
		// to (conflict.0.service conflicts with conflict.*.service).
		name := strings.TrimPrefix(strings.TrimPrefix(base, "fleet-units-"), "fleet-examples-")
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, warnings, err := Parse(name, strings.NewReader(string(data)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(warnings) != 0 {
				t.Errorf("Parse warnings: %v", warnings)
			}
			if len(f.Options) == 0 {
				t.Error("no options")
			}
			ref, err := goSystemd(string(data))
			if err != nil || !sameOptions(ref, f.Options) {
				t.Errorf("go-systemd reads %s (%v), Parse reads %s", describeOptions(ref), err, describeOptions(f.Options))
			}
			if _, warnings, err := f.Fleet(); err != nil || len(warnings) != 0 {
				t.Errorf("Fleet of the file as submitted: warnings %v, error %v", warnings, err)
			}

			n, err := ParseName(name)
			if err != nil {
				t.Fatal(err)
			}
			if n.Template {
				if f, err = f.Instance("1"); err != nil {
					t.Fatal(err)
				}
			}
			expanded, err := f.Expand(ctx)
			if err != nil {
				t.Fatalf("Expand: %v", err)
			}
			for _, opt := range expanded.Options {
				if !strings.HasPrefix(opt.Section, "X-") && strings.Contains(opt.Value, "%") {
					t.Errorf("[%s] %s=%q still holds a specifier", opt.Section, opt.Name, opt.Value)
				}
			}
			fl, warnings, err := f.Fleet()
			if err != nil {
				t.Fatalf("Fleet: %v", err)
			}
			var got []string
			for _, w := range warnings {
				got = append(got, w.Msg)
			}
			if diff := cmp.Diff(wantWarnings[f.Name], got); diff != "" {
				t.Errorf("Fleet warnings (-want +got):\n%s", diff)
			}
			t.Logf("%s: %+v", f.Name, fl)
		})
	}
}

// TestFixturesFleet spot-checks what the fixtures mean to fleet.
func TestFixturesFleet(t *testing.T) {
	dir := fixturesDir(t)
	read := func(file, name string) Fleet {
		t.Helper()
		f, _, err := ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		f.Name = name
		if n, _ := ParseName(name); n.Template {
			if f, err = f.Instance("1"); err != nil {
				t.Fatal(err)
			}
		}
		fl, _, err := f.Fleet()
		if err != nil {
			t.Fatal(err)
		}
		return fl
	}
	tests := []struct {
		file, name string
		want       Fleet
	}{
		{"fleet-examples-pong.service", "pong.service", Fleet{MachineOf: []string{"ping.service"}}},
		{"fleet-units-conflict-global.0.service", "conflict-global.0.service", Fleet{Global: true, Conflicts: []string{"conflict-global.*.service"}}},
		{"fleet-units-conflict.multiple.0.service", "conflict.multiple.0.service",
			Fleet{Conflicts: []string{"conflict.2.service", "conflict.1.service", "conflict.0.service"}}},
		{"fleet-units-conflict.multiple.2.service", "conflict.multiple.2.service",
			Fleet{Conflicts: []string{"conflict.2.service", "conflict.1.service", "conflict.0.service"}}},
		{"fleet-units-global@.service", "global@.service", Fleet{Global: true}},
		{"fleet-units-metadata@.service", "metadata@.service", Fleet{MachineMetadata: map[string][]string{"hostname": {"1"}}}},
		{"fleet-units-pin@.service", "pin@.service", Fleet{MachineID: "1"}},
		{"fleet-units-replace-kick0.service", "replace-kick0.service", Fleet{Replaces: []string{"replace.0.service"}}},
		{"fleet-units-replace.2.service", "replace.2.service", Fleet{MachineOf: []string{"replace.1.service"}}},
		{"fleet-units-hello.service", "hello.service", Fleet{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, read(tt.file, tt.name)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
