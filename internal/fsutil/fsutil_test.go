package fsutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileAtomicReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "machine-id")
	if err := WriteFileAtomic(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "new\n" {
		t.Errorf("content = %q, want %q", got, "new\n")
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode = %o, want 600", info.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the target file", len(entries))
	}
}

func TestWriteFileAtomicMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent", "file")
	if err := WriteFileAtomic(path, []byte("x"), 0o644); err == nil {
		t.Fatalf("write into a missing directory succeeded, want an error naming %s", path)
	}
}

// On a full disk a write fails and the previous content stays whole.
func TestWriteFileAtomicOnFullDiskKeepsOldContent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs to fill")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	path := filepath.Join(dir, "store-role.json")
	old := []byte(`{"role":"client"}` + "\n")
	if err := WriteFileAtomic(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteFileAtomic(path, make([]byte, 128<<10), 0o644)
	if err == nil {
		t.Fatal("writing 128 KiB into a 64 KiB filesystem succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want it to name %s", err, path)
	}
	got, _ := os.ReadFile(path)
	if string(got) != string(old) {
		t.Errorf("after the failed write the file holds %d bytes, want the old %q", len(got), old)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the failed write left %d entries, want only the target", len(entries))
	}
}
