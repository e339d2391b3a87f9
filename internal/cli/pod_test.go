package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPodExportRefusals(t *testing.T) {
	root := t.TempDir()
	existing := filepath.Join(t.TempDir(), "out.tar")
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "pod", "export", "--root", root, "--format", "aci", "1234", "out.aci"); code != 2 || !strings.Contains(stderr, "want docker-archive or oci") {
		t.Errorf("pod export --format aci: exit %d, stderr %q; want 2 and the formats", code, stderr)
	}
	if code, _, stderr := run(t, "pod", "export", "--root", root, "1234"); code != 2 {
		t.Errorf("pod export with one argument: exit %d, stderr %q; want 2", code, stderr)
	}
	if os.Geteuid() != 0 {
		if code, _, stderr := run(t, "pod", "export", "--root", root, "1234", existing); code != 1 || !strings.Contains(stderr, "needs root") {
			t.Errorf("pod export without root: exit %d, stderr %q; want 1 and needs root", code, stderr)
		}
		return
	}
	if code, _, stderr := run(t, "pod", "export", "--root", root, "1234", existing); code != 1 || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("pod export over an existing file: exit %d, stderr %q; want 1 and a hint at --overwrite", code, stderr)
	}
	if code, _, stderr := run(t, "pod", "export", "--root", root, "--overwrite", "1234", existing); code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("pod export of a missing pod: exit %d, stderr %q; want 1 and not found", code, stderr)
	}
}
