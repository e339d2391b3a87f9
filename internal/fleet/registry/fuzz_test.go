package registry_test

import (
	"testing"

	"atoll.dev/atoll/internal/fleet/registry"
)

// Keys and values in the registry can be written by anyone with etcdctl:
// reading them never panics, and a key read back names what it was made
// from.
func FuzzKeysAndValues(f *testing.F) {
	r := registry.New(nil, "/atoll/fleet/")
	for _, seed := range []struct{ key, value string }{
		{"/atoll/fleet/units/web.service", `{"name":"web.service","hash":"0123456789abcdef0123456789abcdef01234567","desiredState":"launched"}`},
		{"/atoll/fleet/content/0123456789abcdef0123456789abcdef01234567", "[Service]\nExecStart=/bin/true\n"},
		{"/atoll/fleet/schedule/m1/web.service", `{"hash":"0123456789abcdef0123456789abcdef01234567","desiredState":"loaded"}`},
		{"/atoll/fleet/unplaced/web.service", `{"reason":"no machines","rejected":{"MachineID":2}}`},
		{"/atoll/fleet/machines/m1", `{"id":"m1","publicIP":"10.0.0.1","metadata":{"a":"b"}}`},
		{"/atoll/fleet/metadata/m1/disk", "ssd"},
		{"/atoll/fleet/agent-states/m1/web.service", `{"hash":"0123456789abcdef0123456789abcdef01234567","active":"active","reached":"launched"}`},
		{"/atoll/fleet/engine/694d9b0e", "m1"},
		{"/atoll/fleet/schedule//x", "{}"},
		{"/elsewhere", "x"},
	} {
		f.Add(seed.key, seed.value)
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		k, err := r.ParseKey([]byte(key))
		if err != nil {
			return
		}
		switch k.Kind {
		case registry.KindUnit:
			if u, err := registry.DecodeUnit(k, []byte(value), 1); err == nil && u.Name != k.Unit {
				t.Fatalf("unit %q read from key %q", u.Name, key)
			}
		case registry.KindPlacement:
			if p, err := registry.DecodePlacement(k, []byte(value)); err == nil && (p.Unit != k.Unit || p.Machine != k.Machine) {
				t.Fatalf("placement %+v read from key %q", p, key)
			}
		case registry.KindUnplaced:
			registry.DecodeUnplaced(k, []byte(value))
		case registry.KindMachine:
			registry.DecodeMachine([]byte(value))
		case registry.KindState:
			if s, err := registry.DecodeState(k, []byte(value)); err == nil && (s.Unit != k.Unit || s.Machine != k.Machine) {
				t.Fatalf("state %+v read from key %q", s, key)
			}
		case registry.KindFile:
			registry.ParseFile("x.service", []byte(value))
		}
	})
}
