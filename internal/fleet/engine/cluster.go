package engine

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/fleet/scheduler"
	"atoll.dev/atoll/internal/unit"
)

// cluster is the leader's copy of the registry, kept by the watch.
type cluster struct {
	reg *registry.Registry
	log *slog.Logger

	units      map[string]registry.Unit
	files      map[unit.Hash][]byte
	fileRevs   map[unit.Hash]int64
	fleets     map[string]parsedFleet // by unit name
	registered map[string]registry.Machine
	overrides  map[string]map[string]string
	// schedule is unit -> machine -> entry: one machine for a unit, one
	// per machine it runs on for a global unit.
	schedule map[string]map[string]registry.Placement
	unplaced map[string]registry.Unplaced
	// rev is the revision the copy is current at.
	rev int64
}

// parsedFleet is a unit's [X-Fleet] section, read once per file.
type parsedFleet struct {
	hash  unit.Hash
	fleet unit.Fleet
	err   error
	// template is why the unit cannot run, when it is a template.
	template string
}

// sortedMachines are the machines of a unit's schedule entries, in order.
func sortedMachines(byMachine map[string]registry.Placement) []string {
	if len(byMachine) == 1 {
		for m := range byMachine {
			return []string{m}
		}
	}
	return slices.Sorted(maps.Keys(byMachine))
}

func newCluster(reg *registry.Registry, log *slog.Logger) *cluster {
	return &cluster{
		reg:        reg,
		log:        log,
		units:      map[string]registry.Unit{},
		files:      map[unit.Hash][]byte{},
		fileRevs:   map[unit.Hash]int64{},
		fleets:     map[string]parsedFleet{},
		registered: map[string]registry.Machine{},
		overrides:  map[string]map[string]string{},
		schedule:   map[string]map[string]registry.Placement{},
		unplaced:   map[string]registry.Unplaced{},
	}
}

func (c *cluster) load(s *registry.Snapshot) {
	c.units = s.Units
	c.files = s.Files
	c.fileRevs = s.FileRevisions
	c.registered = s.Registered
	c.overrides = s.Overrides
	c.unplaced = s.Unplaced
	c.rev = s.Revision
	for _, p := range s.Schedule {
		c.setPlacement(p)
	}
}

func (c *cluster) setPlacement(p registry.Placement) {
	byMachine := c.schedule[p.Unit]
	if byMachine == nil {
		byMachine = map[string]registry.Placement{}
		c.schedule[p.Unit] = byMachine
	}
	byMachine[p.Machine] = p
}

func (c *cluster) deletePlacement(unitName, machineID string) {
	delete(c.schedule[unitName], machineID)
	if len(c.schedule[unitName]) == 0 {
		delete(c.schedule, unitName)
	}
}

// applyBatch takes a watch batch into the copy.
// applyBatch takes a watch batch into the copy, and reports whether it
// changed anything: the echoes of the engine's own writes, which it
// applied to the copy when it wrote them, change nothing and need no
// reconcile.
func (c *cluster) applyBatch(b registry.Batch) (changed bool, err error) {
	if b.Err != nil {
		return false, b.Err
	}
	c.rev = max(c.rev, b.Revision)
	for _, e := range b.Events {
		ch, err := c.apply(e)
		if err != nil {
			// A value the engine cannot read is logged and skipped: one
			// bad key must not stop scheduling.
			c.log.Warn("engine skipped a registry change", "err", err)
		}
		changed = changed || ch
	}
	return changed, nil
}

func (c *cluster) apply(e registry.Event) (changed bool, err error) {
	k := e.Key
	switch k.Kind {
	case registry.KindUnit:
		if e.Deleted {
			delete(c.units, k.Unit)
			return true, nil
		}
		u, err := registry.DecodeUnit(k, e.Value, e.Revision)
		if err != nil {
			return false, err
		}
		c.units[k.Unit] = u
	case registry.KindFile:
		if e.Deleted {
			delete(c.files, k.Hash)
			delete(c.fileRevs, k.Hash)
		} else {
			c.files[k.Hash] = e.Value
			c.fileRevs[k.Hash] = e.Revision
		}
	case registry.KindPlacement:
		have, had := c.schedule[k.Unit][k.Machine]
		if e.Deleted {
			c.deletePlacement(k.Unit, k.Machine)
			return had, nil
		}
		p, err := registry.DecodePlacement(k, e.Value)
		if err != nil {
			return false, err
		}
		c.setPlacement(p)
		return !had || have != p, nil
	case registry.KindUnplaced:
		have, had := c.unplaced[k.Unit]
		if e.Deleted {
			delete(c.unplaced, k.Unit)
			return had, nil
		}
		u, err := registry.DecodeUnplaced(k, e.Value)
		if err != nil {
			return false, err
		}
		c.unplaced[k.Unit] = u
		return !had || have.Reason != u.Reason || have.Hash != u.Hash, nil
	case registry.KindMachine:
		if e.Deleted {
			delete(c.registered, k.Machine)
			return true, nil
		}
		m, err := registry.DecodeMachine(e.Value)
		if err != nil {
			return false, err
		}
		c.registered[k.Machine] = m
	case registry.KindMetadata:
		o := c.overrides[k.Machine]
		if e.Deleted {
			delete(o, k.Key)
			return true, nil
		}
		if o == nil {
			o = map[string]string{}
			c.overrides[k.Machine] = o
		}
		o[k.Key] = string(e.Value)
	default:
		return false, nil
	}
	return true, nil
}

// fleetOf reads a unit's [X-Fleet] section, once per file.
func (c *cluster) fleetOf(u registry.Unit) (unit.Fleet, error) {
	if p, ok := c.fleets[u.Name]; ok && p.hash == u.Hash {
		return p.fleet, p.err
	}
	p := parsedFleet{hash: u.Hash}
	if n, err := unit.ParseName(u.Name); err == nil && n.Template {
		p.template = "a template cannot be loaded or launched; submit an instance (" + n.Prefix + "@1." + n.Type + ")"
	}
	text, ok := c.files[u.Hash]
	if !ok {
		// Not kept: the file may yet come (it never should lag its unit,
		// which is written in the same transaction).
		return unit.Fleet{}, fmt.Errorf("its unit file %s is missing from the registry", u.Hash.Short())
	}
	if f, err := registry.ParseFile(u.Name, text); err != nil {
		p.err = err
	} else {
		p.fleet, _, p.err = f.Fleet()
	}
	c.fleets[u.Name] = p
	return p.fleet, p.err
}

// reconcile brings the schedule in line with the units and machines, in
// memory, and returns the writes that do the same in the registry.
func (c *cluster) reconcile() []clientv3.Op {
	// The writes, one per schedule entry whatever happened to it during
	// the pass (etcd refuses a transaction that names a key twice), in
	// the order first touched.
	type entry struct{ unit, machine string }
	var touched []entry
	last := map[entry]clientv3.Op{}
	write := func(e entry, op clientv3.Op) {
		if _, ok := last[e]; !ok {
			touched = append(touched, e)
		}
		last[e] = op
	}
	unplace := func(unitName, machineID string) {
		write(entry{unitName, machineID}, c.reg.OpUnplace(machineID, unitName))
		c.deletePlacement(unitName, machineID)
	}
	place := func(p registry.Placement) {
		write(entry{p.Unit, p.Machine}, c.reg.OpPlace(p))
		c.setPlacement(p)
	}

	state := scheduler.NewState()
	for _, id := range slices.Sorted(maps.Keys(c.registered)) {
		state.SetMachine(scheduler.Machine{ID: id, Metadata: c.metadata(id)})
	}
	// Why a unit is not placed, by unit: set for every unit that should
	// run and does not.
	unplaced := map[string]registry.Unplaced{}
	var pending []string // non-global units to place, in name order
	var globals []string

	// Keep what is placed and still wanted, on machines still alive:
	// nothing moves but what must.
	for _, name := range slices.Sorted(maps.Keys(c.units)) {
		u := c.units[name]
		byMachine := c.schedule[name]
		if u.DesiredState == registry.Inactive {
			continue
		}
		fl, err := c.fleetOf(u)
		if err != nil {
			unplaced[name] = registry.Unplaced{Unit: name, Hash: u.Hash, Reason: "the unit cannot be scheduled: " + err.Error()}
			continue
		}
		if reason := c.fleets[name].template; reason != "" {
			unplaced[name] = registry.Unplaced{Unit: name, Hash: u.Hash, Reason: reason}
			continue
		}
		su := scheduler.Unit{Name: name, Fleet: fl}
		kept := false
		for _, m := range sortedMachines(byMachine) {
			p := byMachine[m]
			if !state.HasMachine(m) {
				unplace(name, m) // its machine left
				continue
			}
			if kept && !fl.Global {
				unplace(name, m) // a second copy an older leader left
				continue
			}
			kept = true
			state.Assign(su, m)
			if p.Hash != u.Hash || p.DesiredState != u.DesiredState {
				place(c.placement(u, m))
			}
		}
		if fl.Global {
			globals = append(globals, name)
		} else if !kept {
			pending = append(pending, name)
		}
	}
	// Unschedule what is no longer wanted: units gone or inactive (the
	// others were seen to above).
	for name, byMachine := range c.schedule {
		if u, exists := c.units[name]; exists && u.DesiredState != registry.Inactive {
			if _, err := c.fleetOf(u); err == nil && c.fleets[name].template == "" {
				continue
			}
		}
		for _, m := range sortedMachines(byMachine) {
			unplace(name, m)
		}
	}

	// Place the units that have no machine, MachineOf peers first; a
	// unit a Replaces displaced is placed again on the next round.
	for round := 0; len(pending) > 0 && round <= len(c.units); round++ {
		var retry []string
		progress := false
		order := make([]scheduler.Unit, 0, len(pending))
		for _, name := range pending {
			fl, _ := c.fleetOf(c.units[name])
			order = append(order, scheduler.Unit{Name: name, Fleet: fl})
		}
		for _, su := range scheduler.PeerOrder(order) {
			name := su.Name
			u := c.units[name]
			d := state.Place(su)
			if d.Machine == "" {
				unplaced[name] = registry.Unplaced{Unit: name, Hash: u.Hash, Reason: d.Reason, Rejected: d.Rejected}
				retry = append(retry, name)
				continue
			}
			progress = true
			delete(unplaced, name)
			for _, moved := range d.Displaced {
				c.log.Info("unit replaced; moving it", "unit", moved, "by", name, "machine", d.Machine)
				state.Unassign(moved, d.Machine)
				unplace(moved, d.Machine)
				retry = append(retry, moved)
			}
			state.Assign(su, d.Machine)
			place(c.placement(u, d.Machine))
			c.log.Info("unit scheduled", "unit", name, "machine", d.Machine)
		}
		pending = retry
		if !progress {
			break
		}
	}

	// Global units: every machine that fits, and only those.
	for _, name := range globals {
		u := c.units[name]
		fl, _ := c.fleetOf(u)
		su := scheduler.Unit{Name: name, Fleet: fl}
		machines, d := state.PlaceGlobal(su)
		want := map[string]bool{}
		for _, m := range machines {
			want[m] = true
			if _, ok := c.schedule[name][m]; !ok {
				state.Assign(su, m)
				place(c.placement(u, m))
			}
		}
		for _, m := range slices.Sorted(maps.Keys(c.schedule[name])) {
			if !want[m] {
				state.Unassign(name, m)
				unplace(name, m)
			}
		}
		if len(machines) == 0 {
			unplaced[name] = registry.Unplaced{Unit: name, Hash: u.Hash, Reason: d.Reason, Rejected: d.Rejected}
		}
	}

	ops := make([]clientv3.Op, 0, len(touched))
	for _, e := range touched {
		ops = append(ops, last[e])
	}

	// Say why, where it changed.
	for name, want := range unplaced {
		have, ok := c.unplaced[name]
		if !ok || have.Reason != want.Reason || have.Hash != want.Hash {
			ops = append(ops, c.reg.OpSetUnplaced(want))
			c.unplaced[name] = want
		}
	}
	for name := range c.unplaced {
		if _, ok := unplaced[name]; !ok {
			ops = append(ops, c.reg.OpClearUnplaced(name))
			delete(c.unplaced, name)
		}
	}
	return ops
}

// placement is unit u's schedule entry on machine m, carrying u's file
// when it is small enough (registry.MaxInlineFile).
func (c *cluster) placement(u registry.Unit, m string) registry.Placement {
	p := registry.Placement{Unit: u.Name, Machine: m, Hash: u.Hash, DesiredState: u.DesiredState}
	if text := c.files[u.Hash]; len(text) <= registry.MaxInlineFile {
		p.File = string(text)
	}
	return p
}

// garbage are the unit files no unit names, with the revision each was
// written at.
func (c *cluster) garbage() map[unit.Hash]int64 {
	named := make(map[unit.Hash]bool, len(c.units))
	for _, u := range c.units {
		named[u.Hash] = true
	}
	out := map[unit.Hash]int64{}
	for h, rev := range c.fileRevs {
		if !named[h] {
			out[h] = rev
		}
	}
	return out
}

// metadata is a machine's metadata with the operator's over it.
func (c *cluster) metadata(id string) map[string]string {
	m := c.registered[id].Metadata
	o := c.overrides[id]
	if len(o) == 0 {
		return m
	}
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, o)
	return out
}
