package unit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDropInNames(t *testing.T) {
	tests := []struct {
		unit string
		want []string
	}{
		{"web.service", []string{"web.service"}},
		{"web@1.service", []string{"web@1.service", "web@.service"}},
		// systemd.unit(5): foo-bar-baz.service also reads foo-bar-.service.d
		// and foo-.service.d.
		{"foo-bar-baz.service", []string{"foo-bar-baz.service", "foo-bar-.service", "foo-.service"}},
		{"foo-bar@1.service", []string{"foo-bar@1.service", "foo-bar@.service", "foo-.service", "foo-@1.service", "foo-@.service"}},
		{"-foo.service", []string{"-foo.service"}},
		{"foo-.service", []string{"foo-.service"}},
	}
	for _, tt := range tests {
		n, err := ParseName(tt.unit)
		if err != nil {
			t.Fatal(err)
		}
		if got := dropInNames(n); !cmp.Equal(got, tt.want) {
			t.Errorf("dropInNames(%s) = %q, want %q", tt.unit, got, tt.want)
		}
	}
}

func TestLoadDropIns(t *testing.T) {
	etc, lib := t.TempDir(), t.TempDir()
	write := func(root, rel, text string) {
		t.Helper()
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(lib, "web@.service.d/10-env.conf", "[Service]\nEnvironment=FROM=lib-template\n")
	write(lib, "web@.service.d/30-limits.conf", "[Service]\nLimitNOFILE=1024\n")
	write(etc, "web@1.service.d/10-env.conf", "[Service]\nEnvironment=FROM=etc-instance\n")
	write(etc, "web@.service.d/20-exec.conf", "[Service]\nExecStart=\nExecStart=/bin/web --etc\n")
	write(lib, "service.d/05-all.conf", "[Unit]\nDescription=every service\nBogus=1\n")
	write(etc, "web@1.service.d/.hidden.conf", "[Service]\nEnvironment=HIDDEN=1\n")
	write(etc, "web@1.service.d/README", "not a drop-in")
	write(etc, "web@1.service.d/sub.conf/x.conf", "[Service]\nEnvironment=SUB=1\n")

	dropins, warnings, err := LoadDropIns("web@1.service", etc, lib, filepath.Join(etc, "missing"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dropins {
		names = append(names, d.Name)
	}
	if want := []string{"05-all.conf", "10-env.conf", "20-exec.conf", "30-limits.conf"}; !cmp.Equal(names, want) {
		t.Errorf("drop-ins = %q, want %q", names, want)
	}
	if len(warnings) != 1 || warnings[0].String() != filepath.Join(lib, "service.d/05-all.conf")+":3: unknown directive Bogus= in [Unit]" {
		t.Errorf("warnings = %v, want one for Bogus= naming the drop-in and line", warnings)
	}

	unit, _, err := Parse("web@.service", strings.NewReader("[Unit]\nDescription=web\n[Service]\nExecStart=/bin/web\nEnvironment=A=1\n"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := unit.Instance("1")
	if err != nil {
		t.Fatal(err)
	}
	all := ApplyDropIns(inst, dropins...)
	checks := []struct {
		section, name string
		want          []string
	}{
		{"Unit", "Description", []string{"web", "every service"}},
		{"Service", "Environment", []string{"A=1", "FROM=etc-instance"}},
		{"Service", "ExecStart", []string{"/bin/web --etc"}},
		{"Service", "LimitNOFILE", []string{"1024"}},
	}
	for _, c := range checks {
		if got := all.Values(c.section, c.name); !cmp.Equal(got, c.want) {
			t.Errorf("Values(%s, %s) = %q, want %q", c.section, c.name, got, c.want)
		}
	}
	if len(inst.Options) != 3 {
		t.Errorf("ApplyDropIns changed the unit: %d options", len(inst.Options))
	}
	last := all.Options[len(all.Options)-1]
	if pos, ok := all.Position(last); !ok || pos.String() != filepath.Join(lib, "web@.service.d/30-limits.conf")+":2" {
		t.Errorf("Position of the last option = %v, %v; want the drop-in's path and line 2", pos, ok)
	}

	// A drop-in linked to /dev/null masks the drop-ins of its name.
	if err := os.Symlink("/dev/null", filepath.Join(etc, "web@1.service.d/30-limits.conf")); err != nil {
		t.Fatal(err)
	}
	masked, _, err := LoadDropIns("web@1.service", etc, lib)
	if err != nil {
		t.Fatal(err)
	}
	if len(masked) != 4 || masked[3].Name != "30-limits.conf" || len(masked[3].Options) != 0 {
		t.Errorf("with 30-limits.conf masked: %d drop-ins, want the fourth empty", len(masked))
	}

	write(etc, "web@1.service.d/99-bad.conf", "Environment=X\n")
	if _, _, err := LoadDropIns("web@1.service", etc, lib); err == nil || !strings.Contains(err.Error(), "99-bad.conf:1: ") {
		t.Errorf("LoadDropIns with a broken drop-in: error = %v, want one naming 99-bad.conf:1", err)
	}
	if _, _, err := LoadDropIns("not a unit", etc); err == nil {
		t.Error("LoadDropIns accepted an invalid unit name")
	}
}
