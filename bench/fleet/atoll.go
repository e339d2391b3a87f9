package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/fleet/agent"
	"atoll.dev/atoll/internal/fleet/engine"
	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/service/memory"
	"atoll.dev/atoll/internal/unit"

	"atoll.dev/atoll/bench/internal/report"
)

// prefix is where the benchmark's registry lives.
const prefix = "/bench/fleet/"

// atollResult is one atoll round.
type atollResult struct {
	registered time.Duration // from the agents' start to all machines registered
	submitted  time.Duration // from the timer's start to the last submission answered
	elapsed    time.Duration // from the timer's start to all units launched
	ops        ops

	placements writes // the engine's writes to schedule/ in the timed window
	states     writes // the agents' writes to agent-states/ in the timed window

	victim     string        // the machine stopped
	moved      int           // its units
	failover   time.Duration // from its death to all its units launched elsewhere
	expiry     time.Duration // from its death to its machine key's deletion (its lease's expiry)
	caughtUp   time.Duration // from all launched to the engine done with what came before
	heapMiB    float64       // Go heap in use with everything launched (this process: etcd too)
	goroutines int
	warnings   int
}

func (r atollResult) describe() string {
	return fmt.Sprintf("registered in %s, submitted in %s; engine: %s; agents: %s; engine caught up %s after all launched; failover of %s (%d units): lease expired %s after its death, units launched elsewhere %s after it (%s after the expiry); heap in use %.0f MiB, %d goroutines, %d warnings logged",
		seconds(r.registered), seconds(r.submitted), r.placements.describe("placements"), r.states.describe("states"),
		seconds(r.caughtUp), r.victim[:8], r.moved, seconds(r.expiry), seconds(r.failover),
		seconds(r.failover-r.expiry), r.heapMiB, r.goroutines, r.warnings)
}

// machine is one agent of the benchmark.
type machine struct {
	id     string
	agent  *agent.Agent
	cancel context.CancelFunc
	done   chan struct{}
}

// atollRun starts the engine and the agents on a fresh member, submits
// the units and waits until all are launched, then stops the busiest
// machine and waits until its units are launched elsewhere.
func atollRun(ctx context.Context, o options, sc scenario, files []*unit.File, heapProfile string) (res atollResult, err error) {
	m, err := startMember(ctx, o.tmpDir)
	if err != nil {
		return res, err
	}
	defer m.Close()
	var clients []*clientv3.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial := func() (*clientv3.Client, error) {
		c, err := m.dial(ctx)
		if err == nil {
			clients = append(clients, c)
		}
		return c, err
	}
	engineCli, err := dial()
	if err != nil {
		return res, err
	}
	trackerCli, err := dial()
	if err != nil {
		return res, err
	}
	submitCli, err := dial()
	if err != nil {
		return res, err
	}
	var agentRegs []*registry.Registry
	for range (sc.machines + o.agentsPerClient - 1) / o.agentsPerClient {
		c, err := dial()
		if err != nil {
			return res, err
		}
		agentRegs = append(agentRegs, registry.New(c, prefix))
	}

	// Everything started below ends, and is waited for, before the
	// clients close and the member stops.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	warn := &warnLog{w: os.Stderr}
	defer warn.silence() // before the cancel: agents stopped on purpose warn
	log := slog.New(warn)

	leading := make(chan struct{})
	var leadOnce sync.Once
	wg.Go(func() {
		err := engine.Run(ctx, engine.Options{
			Registry:  registry.New(engineCli, prefix),
			MachineID: "engine",
			Log:       log,
			OnLead: func(f registry.Fence) {
				if f.Key != "" {
					leadOnce.Do(func() { close(leading) })
				}
			},
		})
		if err != nil && ctx.Err() == nil {
			log.Warn("engine stopped", "err", err)
		}
	})
	select {
	case <-leading:
	case <-ctx.Done():
		return res, fmt.Errorf("waiting for the engine to lead: %w", ctx.Err())
	}

	started := time.Now()
	machines := make([]*machine, sc.machines)
	byID := map[string]*machine{}
	for i := range machines {
		id := machineID(i)
		a, err := agent.New(agent.Options{
			Registry: agentRegs[i/o.agentsPerClient],
			Manager:  memory.New(),
			Machine:  registry.Machine{ID: id, Name: fmt.Sprintf("machine-%d", i), PublicIP: fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)},
			TTL:      o.ttl,
			Log:      log,
		})
		if err != nil {
			return res, err
		}
		actx, acancel := context.WithCancel(ctx)
		mach := &machine{id: id, agent: a, cancel: acancel, done: make(chan struct{})}
		machines[i], byID[id] = mach, mach
		wg.Go(func() {
			defer close(mach.done)
			if err := a.Run(actx); err != nil && actx.Err() == nil {
				log.Warn("agent stopped", "machine", id, "err", err)
			}
		})
	}
	if err := waitRegistered(ctx, trackerCli, sc.machines); err != nil {
		return res, err
	}
	res.registered = time.Since(started)
	sleep(ctx, o.settle)

	tr := &tracker{reg: registry.New(trackerCli, prefix), on: map[string]map[string]bool{}, wake: make(chan struct{})}
	created := make(chan struct{})
	wg.Go(func() { tr.follow(ctx, trackerCli, created) })
	select {
	case <-created:
	case <-ctx.Done():
		return res, fmt.Errorf("waiting for the states watch: %w", ctx.Err())
	}
	schedule := &writeLog{}
	created = make(chan struct{})
	wg.Go(func() { schedule.follow(ctx, trackerCli, prefix+"schedule/", created) })
	select {
	case <-created:
	case <-ctx.Done():
		return res, fmt.Errorf("waiting for the schedule watch: %w", ctx.Err())
	}

	// Submit every unit and wait until all are launched.
	submitReg := registry.New(submitCli, prefix)
	before, err := m.counters(ctx)
	if err != nil {
		return res, err
	}
	var submitted atomic.Int64
	start := time.Now()
	schedule.reset(start)
	tr.states.reset(start)
	stopProgress := progress(ctx, func() string {
		return fmt.Sprintf("%s launched of %s, %d submitted, %d placements written", report.Thousands(tr.count()), report.Thousands(len(files)), submitted.Load(), schedule.get().puts)
	})
	defer stopProgress()
	err = parallel(ctx, o.concurrency, len(files), func(i int) error {
		if err := submitReg.Submit(ctx, files[i], registry.Launched); err != nil {
			return err
		}
		submitted.Add(1)
		return nil
	})
	res.submitted = time.Since(start)
	if err != nil {
		return res, err
	}
	err = tr.wait(ctx, func() bool { return tr.launched == len(files) })
	stopProgress()
	if err != nil {
		return res, fmt.Errorf("waiting for all units launched (%d of %d): %w", tr.count(), len(files), err)
	}
	res.elapsed = time.Since(start)
	after, err := m.counters(ctx)
	if err != nil {
		return res, err
	}
	res.ops = after.since(before)
	res.placements, res.states = schedule.get(), tr.states.get()

	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	res.heapMiB = float64(mem.HeapInuse) / (1 << 20)
	res.goroutines = runtime.NumGoroutine()
	if heapProfile != "" {
		if err := writeHeapProfile(heapProfile); err != nil {
			return res, err
		}
	}

	fmt.Fprintf(os.Stderr, "%s, atoll: all launched in %s, %s\n", sc, seconds(res.elapsed), res.ops.describe(sc.units))

	// A machine dies in a cluster at rest: the engine follows its own
	// writes too, and may still be reading them. It reads its watch in
	// revision order, so once it has placed a unit submitted now, it has
	// read everything before.
	launched := time.Now()
	if err := catchUp(ctx, submitReg, schedule); err != nil {
		return res, fmt.Errorf("waiting for the engine to catch up after all launched: %w", err)
	}
	res.caughtUp = time.Since(launched)
	if err := failover(ctx, o, &res, tr, trackerCli, byID); err != nil {
		return res, fmt.Errorf("failover: %w", err)
	}
	res.warnings = warn.count()
	return res, nil
}

// failover stops the agent of the machine running the most units just
// after it renewed its lease, so that the lease lives its whole TTL, and
// waits until each of its units is launched on another machine.
func failover(ctx context.Context, o options, res *atollResult, tr *tracker, cli *clientv3.Client, byID map[string]*machine) error {
	victim, units := tr.busiest()
	mach := byID[victim]
	if mach == nil || len(units) == 0 {
		return errors.New("no machine runs a unit")
	}
	res.victim, res.moved = victim, len(units)

	// The lease's expiry shows as the deletion of the machine's key.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	expired := make(chan time.Time, 1)
	wch := cli.Watch(wctx, prefix+"machines/"+victim, clientv3.WithCreatedNotify())
	if resp, ok := <-wch; !ok || !resp.Created {
		return fmt.Errorf("watch of machine %s: %v", victim, resp.Err())
	}
	go func() {
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					expired <- time.Now()
					return
				}
			}
		}
	}()

	renewed := mach.agent.Status().Deadline
	giveUp := time.Now().Add(2 * o.ttl)
	for mach.agent.Status().Deadline.Equal(renewed) {
		if time.Now().After(giveUp) {
			return fmt.Errorf("machine %s did not renew its lease within %s", victim, 2*o.ttl)
		}
		sleep(ctx, 2*time.Millisecond)
	}
	mach.cancel() // the agent keeps its lease for a restart: it expires on its own
	died := time.Now()
	stop := progress(ctx, func() string { return fmt.Sprintf("waiting for the units of %s to be launched elsewhere", victim[:8]) })
	defer stop()
	err := tr.wait(ctx, func() bool {
		for _, u := range units {
			if !tr.launchedElsewhere(u, victim) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	res.failover = time.Since(died)
	select {
	case at := <-expired:
		res.expiry = at.Sub(died)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("units moved but machine %s's key was not seen deleted", victim)
	}
	return nil
}

// probeUnit is submitted, loaded and not launched, after all units are
// launched: its placement says the engine has caught up.
const probeUnit = "probe.service"

// catchUp submits the probe unit and waits until the engine places it.
func catchUp(ctx context.Context, reg *registry.Registry, schedule *writeLog) error {
	f, _, err := unit.Parse(probeUnit, strings.NewReader("[Service]\nExecStart=/bin/true\n"))
	if err != nil {
		return err
	}
	placed := schedule.expect(probeUnit)
	stop := progress(ctx, func() string { return "waiting for the engine to catch up" })
	defer stop()
	if err := reg.Submit(ctx, f, registry.Loaded); err != nil {
		return err
	}
	select {
	case <-placed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// progress prints what line says every 10 s, on stderr, until stopped:
// the big scenario can take minutes.
func progress(ctx context.Context, line func() string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				fmt.Fprintf(os.Stderr, "  %s: %s\n", seconds(time.Since(start).Round(time.Second)), line())
			}
		}
	}()
	return func() { cancel(); <-done }
}

// waitRegistered polls until n machines are registered.
func waitRegistered(ctx context.Context, cli *clientv3.Client, n int) error {
	for {
		resp, err := cli.Get(ctx, prefix+"machines/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return fmt.Errorf("counting machines: %w", err)
		}
		if resp.Count == int64(n) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d machines registered: %w", resp.Count, n, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// machineID is a stable 32-hex-digit ID, like /etc/machine-id.
func machineID(i int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "bench-fleet-machine-%d", i))
	return hex.EncodeToString(sum[:16])
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// tracker follows the agents' reports (agent-states/) through one watch
// and knows, for each unit, the machines reporting it launched and
// active.
type tracker struct {
	reg    *registry.Registry
	states writeLog

	mu       sync.Mutex
	on       map[string]map[string]bool // unit -> machines
	launched int                        // units launched somewhere
	err      error                      // the watch failed
	wake     chan struct{}              // closed (and replaced) at every change
}

// follow watches the states until ctx ends; created is closed once the
// watch is in place.
func (t *tracker) follow(ctx context.Context, cli *clientv3.Client, created chan<- struct{}) {
	wch := cli.Watch(clientv3.WithRequireLeader(ctx), prefix+"agent-states/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	for resp := range wch {
		if resp.Created {
			close(created)
			continue
		}
		if err := resp.Err(); err != nil {
			t.fail(err)
			return
		}
		t.apply(resp.Events)
	}
	t.fail(errors.New("states watch closed"))
}

type stateReport struct {
	unit, machine string
	running       bool
}

func (t *tracker) apply(events []*clientv3.Event) {
	reports := make([]stateReport, 0, len(events))
	for _, ev := range events {
		k, err := t.reg.ParseKey(ev.Kv.Key)
		if err != nil || k.Kind != registry.KindState {
			continue
		}
		r := stateReport{unit: k.Unit, machine: k.Machine}
		if ev.Type == clientv3.EventTypePut {
			st, err := registry.DecodeState(k, ev.Kv.Value)
			r.running = err == nil && st.Reached == registry.Launched && st.ActiveState == string(service.Active)
		}
		reports = append(reports, r)
	}
	t.states.add(events)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range reports {
		on := t.on[r.unit]
		was := len(on) > 0
		if r.running {
			if on == nil {
				on = map[string]bool{}
				t.on[r.unit] = on
			}
			on[r.machine] = true
		} else {
			delete(on, r.machine)
		}
		switch is := len(on) > 0; {
		case is && !was:
			t.launched++
		case was && !is:
			t.launched--
		}
	}
	close(t.wake)
	t.wake = make(chan struct{})
}

func (t *tracker) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = err
		close(t.wake)
		t.wake = make(chan struct{})
	}
}

// wait returns once done (called with the tracker locked) says so.
func (t *tracker) wait(ctx context.Context, done func() bool) error {
	for {
		t.mu.Lock()
		ok, err, wake := done(), t.err, t.wake
		t.mu.Unlock()
		switch {
		case ok:
			return nil
		case err != nil:
			return err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.launched
}

// launchedElsewhere says whether a machine other than not runs the unit;
// called with the tracker locked.
func (t *tracker) launchedElsewhere(unitName, not string) bool {
	for m := range t.on[unitName] {
		if m != not {
			return true
		}
	}
	return false
}

// busiest is the machine running the most units (the lowest ID of
// those), and its units.
func (t *tracker) busiest() (string, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	byMachine := map[string][]string{}
	for u, on := range t.on {
		for m := range on {
			byMachine[m] = append(byMachine[m], u)
		}
	}
	best := ""
	for m, units := range byMachine {
		if best == "" || len(units) > len(byMachine[best]) || len(units) == len(byMachine[best]) && m < best {
			best = m
		}
	}
	return best, byMachine[best]
}

// warnLog counts the warnings the engine and the agents log, and shows
// the first few: a clean run logs none.
type warnLog struct {
	w      io.Writer
	mu     sync.Mutex
	n      int
	shown  int
	silent bool // the round is over
}

func (l *warnLog) silence() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.silent = true
}

func (l *warnLog) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelWarn }

func (l *warnLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.silent {
		return nil
	}
	l.n++
	if l.shown < 10 {
		l.shown++
		var b strings.Builder
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
		fmt.Fprintf(l.w, "warning: %s%s\n", r.Message, b.String())
	}
	return nil
}

func (l *warnLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *warnLog) WithGroup(string) slog.Handler      { return l }

func (l *warnLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// writes is what a writeLog saw.
type writes struct {
	puts, deletes int
	txns          int           // distinct revisions
	last          time.Duration // from the reset to the last write
}

func (w writes) describe(what string) string {
	return fmt.Sprintf("%d %s written, %d deleted, in %d transactions, the last %s after the first submission", w.puts, what, w.deletes, w.txns, seconds(w.last))
}

// writeLog counts the writes to a key space, to say how the engine and
// the agents batch them.
type writeLog struct {
	mu      sync.Mutex
	from    time.Time
	w       writes
	lastRev int64
	// expected is closed when a unit of that name is written.
	expected     chan struct{}
	expectedUnit string
}

// expect returns a channel closed once unitName is written.
func (l *writeLog) expect(unitName string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expected, l.expectedUnit = make(chan struct{}), unitName
	return l.expected
}

func (l *writeLog) reset(from time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.from, l.w = from, writes{}
}

func (l *writeLog) get() writes {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w
}

func (l *writeLog) add(events []*clientv3.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.from.IsZero() {
		return
	}
	for _, ev := range events {
		if l.expected != nil && ev.Type == clientv3.EventTypePut && strings.HasSuffix(string(ev.Kv.Key), "/"+l.expectedUnit) {
			close(l.expected)
			l.expected = nil
		}
		if ev.Type == clientv3.EventTypePut {
			l.w.puts++
		} else {
			l.w.deletes++
		}
		if ev.Kv.ModRevision != l.lastRev {
			l.lastRev = ev.Kv.ModRevision
			l.w.txns++
		}
	}
	if len(events) > 0 {
		l.w.last = time.Since(l.from)
	}
}

func (l *writeLog) follow(ctx context.Context, cli *clientv3.Client, key string, created chan<- struct{}) {
	wch := cli.Watch(ctx, key, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	for resp := range wch {
		if resp.Created {
			close(created)
			continue
		}
		l.add(resp.Events)
	}
}
