package scheduler_test

import (
	"fmt"
	"testing"

	"atoll.dev/atoll/internal/fleet/scheduler"
	"atoll.dev/atoll/internal/unit"
)

const (
	benchMachines = 1000
	benchUnits    = 10000
)

// benchCluster is 1,000 machines in four regions, 5 global units (one
// restricted by metadata, one with Conflicts), and 10,000 units: 60%
// without constraints, 10% with MachineMetadata, 10% template instances
// that conflict with their siblings (100 templates), 10% following a peer
// with MachineOf, 5% pinned with MachineID and 5% replacing another unit.
func benchCluster() (machines []scheduler.Machine, globals, units []scheduler.Unit) {
	regions := []string{"us-east", "us-west", "eu", "asia"}
	for i := range benchMachines {
		machines = append(machines, scheduler.Machine{
			ID:       fmt.Sprintf("%08x%024x", i*2654435761%(1<<32), i),
			Metadata: map[string]string{"region": regions[i%4], "disk": []string{"ssd", "hdd", "nvme"}[i%3]},
		})
	}
	globals = []scheduler.Unit{
		{Name: "journal-upload.service", Fleet: unit.Fleet{Global: true}},
		{Name: "node-exporter.service", Fleet: unit.Fleet{Global: true}},
		{Name: "cadvisor.service", Fleet: unit.Fleet{Global: true, MachineMetadata: map[string][]string{"disk": {"ssd", "nvme"}}}},
		{Name: "eu-proxy.service", Fleet: unit.Fleet{Global: true, MachineMetadata: map[string][]string{"region": {"eu"}}}},
		{Name: "debug.service", Fleet: unit.Fleet{Global: true, Conflicts: []string{"db@*.service"}}},
	}
	name := func(i int) string { return fmt.Sprintf("svc-%05d.service", i) }
	for i := range benchUnits {
		var u scheduler.Unit
		switch i % 20 {
		case 0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 15:
			u = scheduler.Unit{Name: name(i)}
		case 4, 14:
			u = scheduler.Unit{Name: name(i), Fleet: unit.Fleet{MachineMetadata: map[string][]string{
				"region": {regions[i%4], regions[(i+1)%4]}, "disk": {"ssd"}}}}
		case 9, 19:
			template := fmt.Sprintf("web%02d", i%100)
			u = scheduler.Unit{Name: fmt.Sprintf("%s@%d.service", template, i), Fleet: unit.Fleet{Conflicts: []string{template + "@*.service"}}}
		case 13, 17:
			u = scheduler.Unit{Name: name(i), Fleet: unit.Fleet{MachineOf: []string{name(i - 2)}}}
		case 16:
			u = scheduler.Unit{Name: name(i), Fleet: unit.Fleet{MachineID: machines[i%benchMachines].ID[:8]}}
		case 18:
			u = scheduler.Unit{Name: name(i), Fleet: unit.Fleet{Replaces: []string{name(i - 3)}}}
		}
		units = append(units, u)
	}
	return machines, globals, units
}

// fill builds the benchmark cluster as an engine would: machines, global
// units, then every unit placed and assigned one after another, displaced
// units placed again. It returns how many units found no machine.
func fill(machines []scheduler.Machine, globals, units []scheduler.Unit) (*scheduler.State, int) {
	s := scheduler.NewState()
	for _, m := range machines {
		s.SetMachine(m)
	}
	for _, g := range globals {
		ids, _ := s.PlaceGlobal(g)
		for _, id := range ids {
			s.Assign(g, id)
		}
	}
	byName := make(map[string]scheduler.Unit, len(units))
	unplaced := 0
	var place func(u scheduler.Unit)
	place = func(u scheduler.Unit) {
		d := s.Place(u)
		if d.Machine == "" {
			unplaced++
			return
		}
		s.Assign(u, d.Machine)
		for _, name := range d.Displaced {
			place(byName[name])
		}
	}
	for _, u := range units {
		byName[u.Name] = u
		place(u)
	}
	return s, unplaced
}

// BenchmarkPlace places 10,000 units over 1,000 machines one after
// another, assigning each; ns/place is the mean cost of one Place and its
// Assign.
func BenchmarkPlace(b *testing.B) {
	machines, globals, units := benchCluster()
	b.ReportAllocs()
	placements := 0
	for b.Loop() {
		_, unplaced := fill(machines, globals, units)
		if unplaced != 0 {
			b.Fatalf("%d units found no machine, want 0", unplaced)
		}
		placements += len(units)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(placements), "ns/place")
}

// BenchmarkPlaceFull is one Place, without Assign, into the full cluster.
func BenchmarkPlaceFull(b *testing.B) {
	machines, globals, units := benchCluster()
	s, _ := fill(machines, globals, units)
	for _, tt := range []struct {
		name string
		unit scheduler.Unit
	}{
		{"plain", scheduler.Unit{Name: "new.service"}},
		{"metadata", scheduler.Unit{Name: "new.service", Fleet: unit.Fleet{MachineMetadata: map[string][]string{"region": {"eu"}}}}},
		{"conflicts", scheduler.Unit{Name: "web07@new.service", Fleet: unit.Fleet{Conflicts: []string{"web07@*.service", "svc-0000*"}}}},
		{"machineof", scheduler.Unit{Name: "new.service", Fleet: unit.Fleet{MachineOf: []string{"svc-05000.service"}}}},
		{"global", scheduler.Unit{Name: "g.service", Fleet: unit.Fleet{Global: true, Conflicts: []string{"web0*"}}}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if tt.unit.Fleet.Global {
					s.PlaceGlobal(tt.unit)
				} else if d := s.Place(tt.unit); d.Machine == "" {
					b.Fatalf("Place(%s): %s", tt.unit.Name, d.Reason)
				}
			}
		})
	}
}
