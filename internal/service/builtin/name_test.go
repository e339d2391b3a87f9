package builtin

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"web.service", "web@.service", "web@1.service", `a\x2db.service`, "x@a@b.service", "multi-user.target", "a:b_c-d.timer"} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "web", ".service", "@.service", "web.unknown", "a/b.service", "../x.service", "we b.service", "web@x/y.service", string(make([]byte, 300)) + ".service"} {
		if err := checkName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("checkName(%q) = %v, want ErrBadName", bad, err)
		}
	}
}

func TestTemplateNames(t *testing.T) {
	if !isTemplate("web@.service") || isTemplate("web@1.service") || isTemplate("web.service") {
		t.Error("isTemplate: want only web@.service")
	}
	if got, ok := templateOf("web@1.service"); !ok || got != "web@.service" {
		t.Errorf("templateOf(web@1.service) = %q, %v", got, ok)
	}
	if _, ok := templateOf("web.service"); ok {
		t.Error("templateOf(web.service): want none")
	}
}

func TestCgroupName(t *testing.T) {
	tests := map[string]string{
		"web.service":          "web.service",
		"web@1.service":        "web@1.service",
		"cpu.service":          "_cpu.service",
		"memory.service":       "_memory.service",
		"cgroup.procs.service": "_cgroup.procs.service",
		"_x.service":           "__x.service",
		"cpu.extra.service":    "cpu.extra.service",
	}
	for in, want := range tests {
		if got := cgroupName(in); got != want {
			t.Errorf("cgroupName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := unitCgroupPath("atoll/units/m1", "web.service"); got != "/atoll/units/m1/web.service" {
		t.Errorf("unitCgroupPath = %q", got)
	}
}

func TestCheckConditions(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("x"), 0o755)
	os.Symlink(file, filepath.Join(dir, "link"))
	tests := []struct {
		conds []Condition
		want  bool
	}{
		{nil, true},
		{[]Condition{{Check: "PathExists", Value: file}}, true},
		{[]Condition{{Check: "PathExists", Value: file, Negate: true}}, false},
		{[]Condition{{Check: "PathIsDirectory", Value: dir}, {Check: "FileNotEmpty", Value: file}, {Check: "FileIsExecutable", Value: file}}, true},
		{[]Condition{{Check: "PathIsSymbolicLink", Value: filepath.Join(dir, "link")}, {Check: "DirectoryNotEmpty", Value: dir}}, true},
		{[]Condition{{Check: "PathExistsGlob", Value: filepath.Join(dir, "*")}}, true},
		{[]Condition{{Check: "PathIsMountPoint", Value: "/proc"}, {Check: "PathIsMountPoint", Value: dir, Negate: true}}, true},
		{[]Condition{{Check: "PathExists", Value: "/nonexistent", Trigger: true}, {Check: "PathExists", Value: file, Trigger: true}}, true},
		{[]Condition{{Check: "PathExists", Value: "/nonexistent", Trigger: true}, {Check: "PathExists", Value: "/nonexistent2", Trigger: true}}, false},
		{[]Condition{{Check: "PathExists", Value: file, Trigger: true}, {Check: "PathExists", Value: "/nonexistent"}}, false},
	}
	for i, tt := range tests {
		if got, _ := checkConditions(tt.conds); got != tt.want {
			t.Errorf("case %d %+v: %v, want %v", i, tt.conds, got, tt.want)
		}
	}
}
