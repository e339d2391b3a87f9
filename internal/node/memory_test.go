package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestIsStaticExecutable(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool to build a static and a dynamic binary")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte("package main\n\nimport \"os/user\"\n\nfunc main() { user.Current() }\n"), 0o644)
	build := func(name string, env ...string) string {
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", out, src)
		cmd.Env = append(os.Environ(), env...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v: %s", name, err, msg)
		}
		return out
	}
	static := build("static", "CGO_ENABLED=0")
	if !isStaticExecutable(static) {
		t.Errorf("isStaticExecutable(%s) = false for a CGO_ENABLED=0 build, want true", static)
	}
	pie := build("pie", "CGO_ENABLED=0", "GOFLAGS=-buildmode=pie")
	if isStaticExecutable(pie) {
		t.Errorf("isStaticExecutable(%s) = true for a PIE build, want false: its read-only pages hold relocations", pie)
	}
	if isStaticExecutable(filepath.Join(dir, "main.go")) {
		t.Error("isStaticExecutable is true for a source file")
	}
}

func TestReleaseStartupMemoryKeepsTheProcessWorking(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := readOnlyMappingsOf(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(ranges) == 0 {
		t.Fatalf("found no read-only mappings of %s in /proc/self/maps", exe)
	}
	if err := releaseStartupMemory(); err != nil {
		t.Fatal(err)
	}
	// Code and read-only data fault back in: the process carries on.
	got := choosePublicIP(nil, "").String()
	if got != "127.0.0.1" {
		t.Errorf("after release, choosePublicIP of nothing = %s, want 127.0.0.1", got)
	}
}
