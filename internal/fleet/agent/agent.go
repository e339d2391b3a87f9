// Package agent is fleet's part on every machine: it keeps the machine
// present in the registry on an etcd lease, watches the machine's own part
// of the schedule (and nothing else), converges the scheduled units onto
// the node's service manager, and reports their states on its lease.
//
// # Converging
//
// The agent is level-triggered: on every schedule change, every state
// change of one of its units, and every few seconds regardless, it
// compares the schedule with what it has done and acts. A unit scheduled
// here is loaded (its file fetched once per hash); a launched one is
// started once per file and desired state, after which systemd's own
// Restart= policy governs it, as under fleet; a new file stops the unit,
// loads the file and starts it again. A stop asked of a running unit
// settles for StopSettle first, and a start asked meanwhile makes it one
// restart (fleetctl's restart asks for a stop then a start). A unit no
// longer scheduled here is stopped and unloaded at once. The units it loaded, their hashes and its lease
// are kept in a state file written atomically, so an agent restarted
// within its lease's TTL takes its lease and its units back and nothing
// moves (fleet stopped every unit when fleetd stopped). At start-up, a
// launched unit that is not running (the machine went down with it) is
// started again.
//
// # Losing the lease (partitions)
//
// The agent renews its lease every TTL/3. It reckons the lease alive
// until the time it sent its last successful renewal plus nine tenths of
// the TTL: earlier than etcd itself can expire it, after which the engine
// moves its units, by a tenth of the TTL to spare for a slow clock tick. When that deadline has passed by the grace period without a
// renewal, the agent stops every unit it runs, so a unit runs in two
// places for at most the grace period. The default grace is zero: units
// stop before the engine can move them, and never run twice. A store
// outage longer than the TTL then stops units too; a grace period rides
// out such outages at the cost of that window. Once the store answers
// again, the agent takes a new lease, registers again and converges onto
// whatever the schedule then says.
//
// Fencing needs a running agent. Units outlive the daemon (so that a
// restart of the daemon restarts no unit), so a daemon that stays down
// longer than the TTL leaves its units running while the engine starts
// them elsewhere; its agent stops them as soon as it runs again and
// learns its lease is gone.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/fsutil"
	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/unit"
)

// Options configure the agent.
type Options struct {
	Registry *registry.Registry
	Manager  service.Manager
	// Machine is how the machine registers: its ID, name, address,
	// metadata, API URL and version.
	Machine registry.Machine
	// TTL is the lease's time to live (default 30 s, fleet's agent_ttl).
	TTL time.Duration
	// Grace is how long after the lease is reckoned lost the units keep
	// running (default 0).
	Grace time.Duration
	// StateFile keeps the lease and the units the agent loaded.
	StateFile string
	// Parallel bounds the unit operations run at once (default 16).
	Parallel int
	// Reconcile is how often the agent converges without a change
	// (default 5 s, fleet's agent reconcile interval).
	Reconcile time.Duration
	Log       *slog.Logger
}

func (o *Options) setDefaults() {
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.Reconcile <= 0 {
		o.Reconcile = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// saved is the state file.
type saved struct {
	Lease clientv3.LeaseID `json:"lease,omitempty"`
	// Units are the units this agent loaded, with what it did of them.
	Units map[string]owned `json:"units"`
}

// owned is one unit the agent loaded.
type owned struct {
	Hash unit.Hash `json:"hash"`
	// Reached is loaded, or launched once the agent started the unit
	// for this file.
	Reached registry.DesiredState `json:"reached"`
}

// Agent is one machine's fleet agent.
type Agent struct {
	o Options

	// ops is held (shared) by each unit operation of converge and
	// (exclusively) by stopAll, so that no unit starts while the agent
	// fences.
	ops sync.RWMutex

	mu       sync.Mutex // guards the fields below, read by Status
	saved    saved
	lease    clientv3.LeaseID // 0 while it has none
	deadline time.Time        // the lease is surely alive until then
	fenced   bool             // units stopped after the lease was lost
	schedule map[string]registry.Placement
	errs     map[string]string
	reported map[string]registry.UnitState

	files map[unit.Hash][]byte // unit files by hash, fetched once
	// known is the manager's last word on each of the agent's units: from
	// its subscription, and from a full list on every reconcile tick.
	known map[string]service.UnitState

	// registered is the machine as it registers (its ID never changes);
	// reregister asks the lease keeper to register it again.
	registered registry.Machine
	reregister chan struct{}

	// stopAsked holds when a stop was asked of a launched unit that
	// settles (StopSettle); restartAsked the units whose stop was
	// followed by a start meanwhile. wake asks the loop to converge at a
	// time.
	stopAsked    map[string]time.Time
	restartAsked map[string]bool
	wake         chan time.Time
	// nudge wakes the watchdog when the deadline moved earlier.
	nudge chan struct{}
}

// New reads the agent's state file (a missing one is a fresh agent).
func New(o Options) (*Agent, error) {
	o.setDefaults()
	if o.Registry == nil || o.Manager == nil || o.Machine.ID == "" {
		return nil, errors.New("fleet agent: a registry, a service manager and a machine ID are needed")
	}
	a := &Agent{
		o:        o,
		saved:    saved{Units: map[string]owned{}},
		schedule: map[string]registry.Placement{},
		errs:     map[string]string{},
		reported: map[string]registry.UnitState{},
		files:    map[unit.Hash][]byte{},
		known:    map[string]service.UnitState{},

		registered: o.Machine,
		reregister: make(chan struct{}, 1),

		stopAsked:    map[string]time.Time{},
		restartAsked: map[string]bool{},
		wake:         make(chan time.Time, 16),
		nudge:        make(chan struct{}, 1),
	}
	if o.StateFile != "" {
		b, err := os.ReadFile(o.StateFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("fleet agent state: %w", err)
		default:
			if err := json.Unmarshal(b, &a.saved); err != nil {
				return nil, fmt.Errorf("fleet agent state %s: %w", o.StateFile, err)
			}
			if a.saved.Units == nil {
				a.saved.Units = map[string]owned{}
			}
		}
	}
	return a, nil
}

// SetMachine changes how the machine registers (its metadata, address or
// API URL, after the node's config was reloaded): it registers again at
// once. The ID cannot change.
func (a *Agent) SetMachine(m registry.Machine) {
	a.mu.Lock()
	m.ID = a.o.Machine.ID
	a.registered = m
	a.mu.Unlock()
	select {
	case a.reregister <- struct{}{}:
	default:
	}
}

func (a *Agent) machine() registry.Machine {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.registered
}

// Status is what the agent reports of itself.
type Status struct {
	Lease    int64     `json:"lease,omitempty"`
	Deadline time.Time `json:"deadline,omitzero"`
	// Fenced is true while the units are stopped because the lease was
	// lost.
	Fenced bool              `json:"fenced,omitempty"`
	Units  []string          `json:"units,omitempty"`
	Errors map[string]string `json:"errors,omitempty"`
}

// Status reports the agent's lease and units.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Status{Lease: int64(a.lease), Deadline: a.deadline, Fenced: a.fenced,
		Units: slices.Sorted(maps.Keys(a.saved.Units)), Errors: maps.Clone(a.errs)}
}

func (a *Agent) save() error {
	if a.o.StateFile == "" {
		return nil
	}
	a.mu.Lock()
	b, err := json.MarshalIndent(a.saved, "", "  ")
	a.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(a.o.StateFile), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(a.o.StateFile, b, 0o600)
}

// leaseEvent is what the lease keeper says.
type leaseEvent struct {
	lease    clientv3.LeaseID
	deadline time.Time
	lost     bool // the lease is gone; get a new one
}

// Run keeps the machine registered and its units converged until ctx
// ends. The units keep running when it returns.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	states, err := a.o.Manager.Subscribe(ctx)
	if err != nil {
		return fmt.Errorf("fleet agent: %w", err)
	}
	a.recheck(ctx)
	a.relist(ctx)
	a.mu.Lock()
	// Until its lease is confirmed, the agent gives itself what a fresh
	// lease would: a store it cannot reach fences its units all the same.
	a.deadline = reckon(time.Now(), int64(a.o.TTL/time.Second))
	a.mu.Unlock()
	go a.watchdog(ctx)
	leases := make(chan leaseEvent, 4)
	go a.keepLease(ctx, leases)

	var (
		watch       <-chan registry.Batch
		stopWatch   = func() {}
		tick        = time.NewTicker(a.o.Reconcile)
		settled     = time.NewTimer(time.Hour)
		nextWake    time.Time
		needConverg = false
	)
	settled.Stop()
	defer tick.Stop()
	defer settled.Stop()
	defer func() { stopWatch() }()
	rewatch := func() {
		stopWatch()
		wctx, cancelWatch := context.WithCancel(ctx)
		stopWatch = cancelWatch
		var err error
		if watch, err = a.readSchedule(wctx); err != nil {
			a.o.Log.Warn("fleet agent cannot read its schedule", "err", err)
			cancelWatch()
			watch = nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-leases:
			if ev.lost {
				// etcd says the lease is gone: the engine may have moved
				// the units already. They stop after the grace period.
				a.o.Log.Warn("fleet agent lost its lease; getting a new one", "grace", a.o.Grace)
				a.mu.Lock()
				a.lease = 0
				if now := time.Now(); now.Before(a.deadline) {
					a.deadline = now
				}
				select {
				case a.nudge <- struct{}{}:
				default:
				}
				a.mu.Unlock()
				stopWatch()
				watch = nil
				continue
			}
			a.mu.Lock()
			fresh := a.lease != ev.lease
			a.lease, a.deadline = ev.lease, ev.deadline
			a.mu.Unlock()
			if fresh {
				a.reported = map[string]registry.UnitState{} // a new lease holds no states yet
				rewatch()
				needConverg = true
			}
		case b, ok := <-watch:
			if !ok {
				watch = nil
				continue
			}
			if b.Err != nil {
				a.o.Log.Info("fleet agent schedule watch ended; reading it again", "err", b.Err)
				rewatch()
			} else {
				a.applySchedule(b)
			}
			needConverg = true
		case st := <-states:
			a.mu.Lock()
			_, mine := a.saved.Units[st.Name]
			// An event older than what the agent learnt when it acted says
			// nothing new.
			if prev, ok := a.known[st.Name]; mine && ok && st.Since.Before(prev.Since) {
				mine = false
			}
			if mine {
				a.known[st.Name] = st
			}
			a.mu.Unlock()
			if !mine {
				continue
			}
			needConverg = true
		case t := <-a.wake:
			if nextWake.IsZero() || t.Before(nextWake) {
				nextWake = t
				settled.Reset(time.Until(t))
			}
			continue
		case <-settled.C:
			nextWake = time.Time{}
			needConverg = true
		case <-tick.C:
			needConverg = true
			a.relist(ctx)
			if watch == nil && a.currentLease() != 0 {
				rewatch()
			}
		}
		if needConverg && !a.isFenced() {
			needConverg = false
			a.converge(ctx)
		}
	}
}

// watchdog stops the units once the lease is reckoned lost and the grace
// period is over. It runs apart from the loop that converges, which may be
// waiting on the store, and needs nothing but the clock and the manager.
func (a *Agent) watchdog(ctx context.Context) {
	for {
		a.mu.Lock()
		due := a.deadline.Add(a.o.Grace)
		fenced := a.fenced
		a.mu.Unlock()
		wait := time.Until(due)
		if fenced {
			wait = a.o.TTL / 10 // until a new lease unfences
		}
		if wait <= 0 {
			a.stopAll(ctx)
			continue
		}
		// Renewals move the deadline later: waking at the old one and
		// looking again costs a wake-up per renewal at most. A lease found
		// gone moves it earlier, and nudges.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-a.nudge:
			t.Stop()
		}
	}
}

// relist reads every unit's state from the manager in one call: the
// subscription's events are the fast path, this the safety net.
func (a *Agent) relist(ctx context.Context) {
	list, err := a.o.Manager.List(ctx)
	if err != nil {
		a.o.Log.Warn("fleet agent cannot list the units", "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.known)
	for _, st := range list {
		if _, mine := a.saved.Units[st.Name]; mine {
			a.known[st.Name] = st
		}
	}
}

// recheck compares, at start-up, what the state file says the agent did
// with what the manager has: a unit it no longer knows is loaded again,
// and a launched unit that is not running (the machine went down with
// it, or it failed while no daemon ran) is started again.
func (a *Agent) recheck(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, o := range a.saved.Units {
		st, err := a.o.Manager.State(ctx, name)
		switch {
		case errors.Is(err, service.ErrNotFound):
			delete(a.saved.Units, name)
		case err != nil:
		case o.Reached == registry.Launched && st.Active != service.Active && st.Active != service.Activating && st.Active != service.Reloading:
			o.Reached = registry.Loaded
			a.saved.Units[name] = o
		}
	}
}

func (a *Agent) currentLease() clientv3.LeaseID {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lease
}

func (a *Agent) isFenced() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fenced && a.lease != 0 && time.Now().Before(a.deadline) {
		a.fenced = false // a new lease: converge again
		a.o.Log.Info("fleet agent has a lease again; converging")
	}
	return a.fenced
}

// readSchedule reads this machine's schedule and watches it from there.
func (a *Agent) readSchedule(ctx context.Context) (<-chan registry.Batch, error) {
	rctx, cancel := context.WithTimeout(ctx, a.o.TTL/3)
	placements, rev, err := a.o.Registry.MachineSchedule(rctx, a.o.Machine.ID)
	cancel()
	if err != nil {
		return nil, err
	}
	sched := map[string]registry.Placement{}
	for _, p := range placements {
		sched[p.Unit] = p
	}
	a.mu.Lock()
	a.schedule = sched
	a.mu.Unlock()
	return a.o.Registry.WatchMachineSchedule(ctx, a.o.Machine.ID, rev+1), nil
}

func (a *Agent) applySchedule(b registry.Batch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range b.Events {
		if e.Key.Kind != registry.KindPlacement {
			continue
		}
		if e.Deleted {
			delete(a.schedule, e.Key.Unit)
			continue
		}
		p, err := registry.DecodePlacement(e.Key, e.Value)
		if err != nil {
			a.o.Log.Warn("fleet agent skipped a schedule entry", "err", err)
			continue
		}
		a.noteStop(p)
		a.schedule[p.Unit] = p
	}
}

// StopSettle is how long a stop asked of a running unit waits before the
// agent acts on it. A start asked meanwhile makes it a restart: the unit
// is restarted once, and its current state never leaves launched.
// fleetctl's restart works that way (it asks for loaded, waits for
// launched, then asks for launched), as it did against fleetd, whose
// agents heard of every change a second late.
const StopSettle = time.Second

// noteStop records, from a schedule entry about to replace the current
// one (under a.mu), a stop asked of a launched unit, or a start asked
// while that stop settles.
func (a *Agent) noteStop(p registry.Placement) {
	have, ok := a.saved.Units[p.Unit]
	if !ok || have.Hash != p.Hash || have.Reached != registry.Launched {
		delete(a.stopAsked, p.Unit)
		return
	}
	_, settling := a.stopAsked[p.Unit]
	switch {
	case p.DesiredState == registry.Loaded && !settling:
		a.stopAsked[p.Unit] = time.Now()
		a.wakeAt(time.Now().Add(StopSettle))
	case p.DesiredState == registry.Launched && settling:
		delete(a.stopAsked, p.Unit)
		a.restartAsked[p.Unit] = true
	}
}

// wakeAt asks the loop to converge again at t.
func (a *Agent) wakeAt(t time.Time) {
	select {
	case a.wake <- t:
	default:
	}
}

// keepLease takes the saved lease back or a new one, registers the
// machine on it and renews it every TTL/3, until ctx ends.
func (a *Agent) keepLease(ctx context.Context, out chan<- leaseEvent) {
	cli := a.o.Registry.Client()
	ttl := int64(a.o.TTL.Round(time.Second) / time.Second)
	if ttl < 1 {
		ttl = 1
	}
	a.mu.Lock()
	lease := a.saved.Lease
	a.mu.Unlock()
	backoff := 200 * time.Millisecond
	registered := false // on the lease taken back, the machine's key may be gone
	for ctx.Err() == nil {
		sent := time.Now()
		if lease != 0 {
			rctx, cancel := context.WithTimeout(ctx, a.o.TTL/3)
			resp, err := cli.KeepAliveOnce(rctx, lease)
			if err == nil && resp.TTL > 0 && !registered {
				if err = a.o.Registry.Register(rctx, lease, a.machine()); err == nil {
					registered = true
					a.o.Log.Info("fleet agent took its lease back", "machine", a.o.Machine.ID, "lease", int64(lease))
				}
			}
			cancel()
			switch {
			case err == nil && resp.TTL > 0:
				select {
				case out <- leaseEvent{lease: lease, deadline: reckon(sent, resp.TTL)}:
				case <-ctx.Done():
					return
				}
				if a.waitRenewal(ctx) {
					registered = false
				}
				continue
			case errors.Is(err, rpctypes.ErrLeaseNotFound) || err == nil:
				lease = 0
				select {
				case out <- leaseEvent{lost: true}:
				case <-ctx.Done():
					return
				}
				continue
			default:
				// The store does not answer: try again soon; the
				// deadline runs on meanwhile.
				sleep(ctx, min(time.Second, a.o.TTL/6))
				continue
			}
		}
		rctx, cancel := context.WithTimeout(ctx, a.o.TTL/3)
		granted, err := cli.Grant(rctx, ttl)
		if err == nil {
			err = a.o.Registry.Register(rctx, granted.ID, a.machine())
		}
		cancel()
		if err != nil {
			sleep(ctx, backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		lease, registered = granted.ID, true
		a.mu.Lock()
		a.saved.Lease = lease
		a.mu.Unlock()
		if err := a.save(); err != nil {
			a.o.Log.Warn("fleet agent cannot save its state", "err", err)
		}
		a.o.Log.Info("fleet agent registered", "machine", a.o.Machine.ID, "lease", int64(lease), "ttl", ttl)
		select {
		case out <- leaseEvent{lease: lease, deadline: reckon(sent, granted.TTL)}:
		case <-ctx.Done():
			return
		}
		if a.waitRenewal(ctx) {
			registered = false
		}
	}
}

// waitRenewal waits until the next renewal is due, or until the machine
// must register again (then true).
func (a *Agent) waitRenewal(ctx context.Context) bool {
	t := time.NewTimer(a.o.TTL / 3)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-a.reregister:
		return true
	}
	return false
}

// reckon is until when a lease renewed (or granted) by a request sent at
// sent, for ttl seconds, is surely alive.
func reckon(sent time.Time, ttl int64) time.Time {
	d := time.Duration(ttl) * time.Second
	return sent.Add(d - d/10)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// stopAll stops every unit the agent runs: the lease is lost and the
// grace period over. Unit operations of converge wait meanwhile, and
// start nothing once it is done.
func (a *Agent) stopAll(ctx context.Context) {
	a.ops.Lock()
	defer a.ops.Unlock()
	a.mu.Lock()
	if a.fenced || !time.Now().After(a.deadline.Add(a.o.Grace)) {
		a.mu.Unlock()
		return
	}
	a.fenced = true
	names := slices.Sorted(maps.Keys(a.saved.Units))
	a.mu.Unlock()
	a.o.Log.Warn("fleet agent stopping its units: its lease is lost and the grace period over", "units", len(names))
	a.forEach(ctx, names, func(ctx context.Context, name string) {
		if err := a.o.Manager.Stop(ctx, name); err != nil && !errors.Is(err, service.ErrNotFound) {
			a.o.Log.Warn("fleet agent could not stop a unit", "unit", name, "err", err)
		}
		a.mu.Lock()
		o := a.saved.Units[name]
		o.Reached = registry.Loaded
		a.saved.Units[name] = o
		a.mu.Unlock()
	})
	if err := a.save(); err != nil {
		a.o.Log.Warn("fleet agent cannot save its state", "err", err)
	}
}

// forEach runs fn for each name, Parallel at a time.
func (a *Agent) forEach(ctx context.Context, names []string, fn func(context.Context, string)) {
	var g errgroup.Group
	g.SetLimit(a.o.Parallel)
	for _, name := range names {
		g.Go(func() error { fn(ctx, name); return nil })
	}
	g.Wait()
}
