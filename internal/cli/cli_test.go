package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(append([]string{"atoll"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestNodeRefusesBadConfigNamingFileAndLine(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "node.yaml")
	os.WriteFile(cfg, []byte("name: m1\nstore:\n  client-port: 70000\n"), 0o644)
	code, _, stderr := run(t, "node", "--root", dir, "--run-dir", dir, "--config", cfg)
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if !strings.Contains(stderr, "node.yaml:3") || !strings.Contains(stderr, "store.client-port") {
		t.Errorf("stderr = %q, want it to name node.yaml:3 and store.client-port", stderr)
	}
}

func TestNodeRefusesBadFlagOverride(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := run(t, "node", "--root", dir, "--run-dir", dir, "--role", "leader")
	if code != 1 || !strings.Contains(stderr, "store.role") {
		t.Errorf("exit %d, stderr %q; want 1 and a message naming store.role", code, stderr)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	tests := [][]string{
		{"kv", "get"},
		{"kv", "get", "a", "b"},
		{"node", "--metadata", "novalue"},
		{"cluster", "stop", "m1", "--signal", "HUP"},
		{"cert", "issue", "--ca-dir", "x", "--out", "y"},
		{"no-such-verb-flag", "--bogus"},
	}
	for _, args := range tests {
		code, _, stderr := run(t, args...)
		if code != 2 {
			t.Errorf("atoll %s: exit code %d (stderr %q), want 2", strings.Join(args, " "), code, stderr)
		}
	}
}

func TestKVWithoutDaemonSaysHowToReachAStore(t *testing.T) {
	code, _, stderr := run(t, "--run-dir", t.TempDir(), "kv", "get", "/k")
	if code != 1 || !strings.Contains(stderr, "--endpoints") || !strings.Contains(stderr, "no atoll daemon") {
		t.Errorf("exit %d, stderr %q; want 1 and a message pointing at --endpoints", code, stderr)
	}
}

func TestCertCommandsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if code, _, stderr := run(t, "cert", "ca", "--ca-dir", ca); code != 0 {
		t.Fatalf("cert ca: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run(t, "cert", "ca", "--ca-dir", ca); code != 1 || !strings.Contains(stderr, "already exists") {
		t.Errorf("second cert ca: exit %d, stderr %q; want a refusal to overwrite", code, stderr)
	}
	out := filepath.Join(dir, "m1")
	if code, _, stderr := run(t, "cert", "issue", "--ca-dir", ca, "--machine", "m1", "--ip", "10.0.0.11", "--out", out); code != 0 {
		t.Fatalf("cert issue: exit %d: %s", code, stderr)
	}
	for _, f := range []string{"ca.crt", "node.crt", "node.key"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("cert issue did not write %s: %v", f, err)
		}
	}
}

func TestClusterVerbsWithoutRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs only without root: checks the refusal")
	}
	code, _, stderr := run(t, "cluster", "up", "--dir", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "needs root") {
		t.Errorf("cluster up without root: exit %d, stderr %q; want 1 and 'needs root'", code, stderr)
	}
}
