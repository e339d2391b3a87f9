package scheduler_test

import (
	"strings"
	"testing"

	"atoll.dev/atoll/internal/fleet/scheduler"
	"atoll.dev/atoll/internal/unit"
)

// Machine IDs for the tests: 32 hex digits, so that 8-character prefixes
// work as in fleet.
const (
	idA = "aaaaaaaa000000000000000000000001"
	idB = "bbbbbbbb000000000000000000000002"
	idC = "cccccccc000000000000000000000003"
	idD = "dddddddd000000000000000000000004"
)

// parseUnit builds the unit name from an [X-Fleet] section given as
// lines, through unit.Parse and (*unit.File).Fleet as the engine does.
func parseUnit(t testing.TB, name string, xfleet ...string) scheduler.Unit {
	t.Helper()
	fl, err := fleetOf(name, xfleet...)
	if err != nil {
		t.Fatalf("unit %s: %v", name, err)
	}
	return scheduler.Unit{Name: name, Fleet: fl}
}

func fleetOf(name string, xfleet ...string) (unit.Fleet, error) {
	text := "[Service]\nExecStart=/bin/true\n"
	if len(xfleet) > 0 {
		text += "[X-Fleet]\n" + strings.Join(xfleet, "\n") + "\n"
	}
	f, _, err := unit.Parse(name, strings.NewReader(text))
	if err != nil {
		return unit.Fleet{}, err
	}
	fl, _, err := f.Fleet()
	return fl, err
}

// meta builds metadata from "k=v" pairs.
func meta(pairs ...string) map[string]string {
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}
