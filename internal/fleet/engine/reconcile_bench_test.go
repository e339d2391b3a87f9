package engine

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/unit"
)

// BenchmarkReconcile is one pass over 1,000 machines and 10,000 placed
// units that places 64 new ones: the cost of every pass while a burst of
// submissions comes in.
func BenchmarkReconcile(b *testing.B) {
	reg := registry.New(nil, "/bench/")
	c := newCluster(reg, slog.New(slog.DiscardHandler))
	f, _, err := unit.Parse("web@.service", strings.NewReader("[Service]\nExecStart=/bin/true\n"))
	if err != nil {
		b.Fatal(err)
	}
	h := f.Hash()
	c.files[h] = f.Bytes()
	for i := range 1000 {
		id := fmt.Sprintf("%032x", i)
		c.registered[id] = registry.Machine{ID: id}
	}
	for i := range 10000 {
		name := fmt.Sprintf("web@%d.service", i)
		c.units[name] = registry.Unit{Name: name, Hash: h, DesiredState: registry.Launched}
	}
	c.reconcile() // place them all
	b.ResetTimer()
	for n := range b.N {
		b.StopTimer()
		for i := range 64 {
			name := fmt.Sprintf("new%d@%d.service", n, i)
			c.units[name] = registry.Unit{Name: name, Hash: h, DesiredState: registry.Launched}
		}
		b.StartTimer()
		c.reconcile()
	}
}
