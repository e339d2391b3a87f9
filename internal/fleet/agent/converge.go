package agent

import (
	"context"
	"crypto/sha1"
	"errors"
	"maps"
	"slices"
	"time"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/unit"
)

// converge makes the service manager run what the schedule says, then
// reports the states of the units that changed.
func (a *Agent) converge(ctx context.Context) {
	a.mu.Lock()
	schedule := maps.Clone(a.schedule)
	var gone []string
	for name := range a.saved.Units {
		if _, ok := schedule[name]; !ok {
			gone = append(gone, name)
		}
	}
	a.mu.Unlock()
	slices.Sort(gone)

	// Units no longer scheduled here: stop and unload them.
	a.forEach(ctx, gone, func(ctx context.Context, name string) {
		err := a.o.Manager.Stop(ctx, name)
		if err == nil || errors.Is(err, service.ErrNotFound) {
			err = a.o.Manager.Unload(ctx, name)
		}
		if err != nil && !errors.Is(err, service.ErrNotFound) {
			a.setErr(name, "stop and unload: "+err.Error())
			return
		}
		a.mu.Lock()
		delete(a.saved.Units, name)
		delete(a.errs, name)
		delete(a.known, name)
		a.mu.Unlock()
		a.o.Log.Info("fleet agent unloaded a unit", "unit", name)
	})
	changed := len(gone) > 0

	// Units scheduled here: load each new file, then reach the desired
	// state once per file and desired state.
	var todo []string
	a.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(schedule)) {
		p := schedule[name]
		if have, loaded := a.saved.Units[name]; !loaded || have.Hash != p.Hash || have.Reached != p.DesiredState || a.restartAsked[name] {
			todo = append(todo, name)
		}
	}
	a.mu.Unlock()
	// Fetch the new files first: no unit operation waits on the store.
	texts := map[string][]byte{}
	for _, name := range todo {
		p := schedule[name]
		a.mu.Lock()
		have, loaded := a.saved.Units[name]
		a.mu.Unlock()
		if loaded && have.Hash == p.Hash {
			continue
		}
		text, err := a.file(ctx, name, p)
		if err != nil {
			a.setErr(name, "load: "+err.Error())
			continue
		}
		texts[name] = text
	}
	a.forEach(ctx, todo, func(ctx context.Context, name string) {
		a.ops.RLock()
		defer a.ops.RUnlock()
		if a.isFenced() {
			return
		}
		// What the manager says once this is done is what gets reported,
		// at once: its events about the unit come later, and say the same.
		defer a.learnState(ctx, name)
		p := schedule[name]
		a.mu.Lock()
		have, loaded := a.saved.Units[name]
		a.mu.Unlock()
		if !loaded || have.Hash != p.Hash {
			if loaded && have.Reached == registry.Launched {
				if err := a.o.Manager.Stop(ctx, name); err != nil && !errors.Is(err, service.ErrNotFound) {
					a.setErr(name, "stop for a new unit file: "+err.Error())
					return
				}
			}
			text, ok := texts[name]
			if !ok {
				return // its file could not be fetched: said above
			}
			if err := a.o.Manager.Load(ctx, name, text); err != nil {
				a.setErr(name, "load: "+err.Error())
				return
			}
			have = owned{Hash: p.Hash, Reached: registry.Loaded}
			a.setOwned(name, have)
		}
		switch {
		case p.DesiredState == registry.Launched && have.Reached != registry.Launched:
			err := a.o.Manager.Start(ctx, name)
			// A unit that failed to start is launched all the same, as
			// under fleet: its state says it failed, and its Restart=
			// policy is the manager's business.
			have.Reached = registry.Launched
			a.setOwned(name, have)
			if err != nil {
				a.setErr(name, "start: "+err.Error())
				return
			}
		case p.DesiredState == registry.Launched && a.takeRestart(name):
			if err := a.o.Manager.Restart(ctx, name); err != nil {
				a.setErr(name, "restart: "+err.Error())
				return
			}
		case p.DesiredState == registry.Loaded && have.Reached == registry.Launched:
			if a.settling(name) {
				return // converged again once the stop has settled
			}
			if err := a.o.Manager.Stop(ctx, name); err != nil && !errors.Is(err, service.ErrNotFound) {
				a.setErr(name, "stop: "+err.Error())
				return
			}
			have.Reached = registry.Loaded
			a.setOwned(name, have)
		}
		a.setErr(name, "")
	})
	if changed || len(todo) > 0 {
		if err := a.save(); err != nil {
			a.o.Log.Warn("fleet agent cannot save its state", "err", err)
		}
	}
	a.report(ctx, gone)
}

// learnState takes the manager's word on a unit it just acted on.
func (a *Agent) learnState(ctx context.Context, name string) {
	st, err := a.o.Manager.State(ctx, name)
	if err != nil {
		return
	}
	a.mu.Lock()
	if _, mine := a.saved.Units[name]; mine {
		a.known[name] = st
	}
	a.mu.Unlock()
}

// takeRestart reports (once) whether a stop then a start were asked of a
// launched unit while the stop settled.
func (a *Agent) takeRestart(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	asked := a.restartAsked[name]
	delete(a.restartAsked, name)
	return asked
}

// settling reports whether a stop asked of a launched unit is still
// settling; once settled, it is forgotten.
func (a *Agent) settling(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.stopAsked[name]
	if ok && time.Since(at) < StopSettle {
		a.wakeAt(at.Add(StopSettle))
		return true
	}
	delete(a.stopAsked, name)
	return false
}

// file fetches a unit's file, once per hash.
func (a *Agent) file(ctx context.Context, name string, p registry.Placement) ([]byte, error) {
	a.mu.Lock()
	text, ok := a.files[p.Hash]
	a.mu.Unlock()
	if ok {
		return text, nil
	}
	if p.File != "" && unit.Hash(sha1.Sum([]byte(p.File))) == p.Hash {
		return []byte(p.File), nil // carried by the schedule entry
	}
	ctx, cancel := context.WithTimeout(ctx, a.o.TTL/3)
	defer cancel()
	f, err := a.o.Registry.File(ctx, name, p.Hash)
	if err != nil {
		return nil, err
	}
	text = f.Bytes()
	a.mu.Lock()
	a.files[p.Hash] = text
	a.mu.Unlock()
	return text, nil
}

func (a *Agent) setOwned(name string, o owned) {
	a.mu.Lock()
	a.saved.Units[name] = o
	a.mu.Unlock()
}

func (a *Agent) setErr(name, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if msg == "" {
		delete(a.errs, name)
		return
	}
	if a.errs[name] != msg {
		a.o.Log.Warn("fleet agent could not converge a unit", "unit", name, "err", msg)
	}
	a.errs[name] = msg
}

// report writes the states of this machine's units that changed since
// they were last written, on the lease, and removes those of units gone.
func (a *Agent) report(ctx context.Context, gone []string) {
	ctx, cancel := context.WithTimeout(ctx, a.o.TTL/3)
	defer cancel()
	a.mu.Lock()
	lease := a.lease
	units := maps.Clone(a.saved.Units)
	errs := maps.Clone(a.errs)
	a.mu.Unlock()
	if lease == 0 {
		return
	}
	var changed []registry.UnitState
	for _, name := range slices.Sorted(maps.Keys(units)) {
		o := units[name]
		a.mu.Lock()
		st, ok := a.known[name]
		a.mu.Unlock()
		if !ok {
			var err error
			st, err = a.o.Manager.State(ctx, name)
			if errors.Is(err, service.ErrNotFound) {
				st.Load, st.Active, st.Sub = service.NotFound, service.Inactive, "dead"
			} else if err != nil {
				continue
			}
			a.mu.Lock()
			a.known[name] = st
			a.mu.Unlock()
		}
		us := registry.UnitState{Unit: name, Machine: a.o.Machine.ID, Hash: o.Hash,
			LoadState: string(st.Load), ActiveState: string(st.Active), SubState: st.Sub,
			Reached: o.Reached, Error: errs[name]}
		prev, ok := a.reported[name]
		us.Since = prev.Since
		if ok && prev == us {
			continue
		}
		us.Since = time.Now().UTC()
		changed = append(changed, us)
	}
	var deleted []string
	for _, name := range gone {
		if _, ok := a.reported[name]; ok {
			deleted = append(deleted, name)
		}
	}
	if len(changed) > 0 {
		if err := a.o.Registry.PutStates(ctx, lease, changed); err != nil {
			a.o.Log.Warn("fleet agent cannot report unit states", "err", err)
			return
		}
		for _, us := range changed {
			a.reported[us.Unit] = us
		}
	}
	if len(deleted) > 0 {
		if err := a.o.Registry.DeleteStates(ctx, a.o.Machine.ID, deleted); err != nil {
			a.o.Log.Warn("fleet agent cannot remove unit states", "err", err)
			return
		}
		for _, name := range deleted {
			delete(a.reported, name)
		}
	}
}
