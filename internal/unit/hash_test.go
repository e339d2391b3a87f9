package unit

import (
	"crypto/sha1"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gsunit "github.com/coreos/go-systemd/v22/unit"
)

// TestHashFleet pins the value of fleet's own TestUnitHash (coreos/fleet
// unit/unit_test.go).
func TestHashFleet(t *testing.T) {
	f, _, err := Parse("sleep.service", strings.NewReader("[Service]\nExecStart=/bin/sleep 100\n"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "1c6fb6f3684bafb0c173d8b8b957ceff031180c1"
	h := f.Hash()
	if h.String() != want {
		t.Errorf("Hash() = %s, want fleet's %s", h, want)
	}
	if h.Short() != "1c6fb6f" {
		t.Errorf("Short() = %s, want 1c6fb6f", h.Short())
	}
	back, err := ParseHash(want)
	if err != nil || back != h {
		t.Errorf("ParseHash(%s) = %v, %v; want %v", want, back, err, h)
	}
	for _, bad := range []string{"", "1c6f", "zz6fb6f3684bafb0c173d8b8b957ceff031180c1"} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) succeeded, want an error", bad)
		}
	}
}

// TestHashFixtures pins the hash of fleet's example units and checks it
// against an independent computation: SHA-1 of go-systemd's Serialize of
// go-systemd's Deserialize, which is what fleetctl and fleetd do. These
// fixtures are already in Serialize's layout, so the hash is also the
// SHA-1 of the file (sha1sum agrees).
func TestHashFixtures(t *testing.T) {
	dir := fixturesDir(t)
	pinned := map[string]string{
		"fleet-examples-hello.service":   "e55c0aeb44ba0b68004ceb8a200e685194448b45",
		"fleet-units-conflict.0.service": "52e8acb19db0f3f776c7b8c6bf2209fa41ce46ac",
		"fleet-units-pin@.service":       "b849fbe0b371b4e30c75304b2a7d49dac14b26da",
	}
	for name, want := range pinned {
		path := filepath.Join(dir, name)
		f, _, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Hash().String(); got != want {
			t.Errorf("%s: Hash() = %s, want %s", name, got, want)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		opts, err := gsunit.DeserializeOptions(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		serialized, _ := io.ReadAll(gsunit.Serialize(opts))
		if independent := Hash(sha1.Sum(serialized)); independent != f.Hash() {
			t.Errorf("%s: Hash() = %s, go-systemd round trip gives %s", name, f.Hash(), independent)
		}
	}
}

// TestHashIgnoresLayout: fleet hashes options, not text, so comments,
// blank lines and spacing do not change the hash, and neither does a
// repeated section, which Serialize merges.
func TestHashIgnoresLayout(t *testing.T) {
	a, _, err := Parse("a.service", strings.NewReader("[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Parse("b.service", strings.NewReader("# comment\n[Unit]\n  Description = x  \n[Service]\n\n\nExecStart=/bin/true"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Errorf("hashes differ for the same options: %s and %s", a.Hash(), b.Hash())
	}
	c, _, err := Parse("c.service", strings.NewReader("[Unit]\nDescription=y\n\n[Service]\nExecStart=/bin/true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() == c.Hash() {
		t.Errorf("different options hash the same: %s", a.Hash())
	}
}
