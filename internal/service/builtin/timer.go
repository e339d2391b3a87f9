package builtin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/fsutil"
	"atoll.dev/atoll/internal/service"
)

// A timer's sub-states, systemd's (src/core/timer.c).
const (
	timerDead    = "dead"
	timerWaiting = "waiting"
	timerRunning = "running"
	timerElapsed = "elapsed"
	timerFailed  = "failed"
)

// Timer results, systemd's TimerResult.
const (
	timerSuccess   = "success"
	timerResources = "resources"
)

func timerActiveState(sub string) service.ActiveState {
	switch sub {
	case timerWaiting, timerRunning, timerElapsed:
		return service.Active
	case timerFailed:
		return service.Failed
	}
	return service.Inactive
}

// timerDef is a timer unit file as loaded.
type timerDef struct {
	content  []byte
	spec     *TimerSpec // nil when the file does not make a timer
	err      error      // why spec is nil
	load     service.LoadState
	warnings []string
}

// defineTimer reads a timer unit file for timer name.
func (m *Manager) defineTimer(name string, content []byte) *timerDef {
	def := &timerDef{content: content, load: service.Loaded}
	if len(bytes.TrimSpace(content)) == 0 {
		def.load, def.err = service.Masked, errors.New("unit is masked")
		return def
	}
	opts, err := m.parse(name, name, content)
	if err != nil {
		def.load, def.err = service.LoadError, err
		return def
	}
	spec, warnings, err := m.opts.Defaults.ParseTimerSpec(name, opts)
	def.warnings = warnings
	if err != nil {
		def.load, def.err = service.BadSetting, err
		return def
	}
	def.spec = spec
	return def
}

// timerRequest is an operation asked of a timer's loop.
type timerRequest struct {
	kind  string // start, stop, load, unload
	def   *timerDef
	reply chan error
}

// timerUnit is one timer and the goroutine that runs it (loop), as unit
// is for a service: other goroutines send it requests and the changes
// of its service's state, and read its published state.
type timerUnit struct {
	m    *Manager
	name string

	reqs    chan timerRequest
	jobDone chan error
	quit    chan struct{}
	done    chan struct{}
	// notes queues the states of the triggered unit, never blocking the
	// unit that publishes them.
	notesMu sync.Mutex
	notes   []service.UnitState
	wake    chan struct{}

	mu     sync.Mutex
	snap   service.UnitState
	loaded *timerDef // def, for other goroutines
	target string    // the unit it triggers, for Manager.broadcast

	// Owned by the loop.
	def, run *timerDef
	sub      string
	result   string
	since    time.Time
	// activeAt is when the timer last became active, the base of
	// OnActiveSec=.
	activeAt    time.Time
	lastTrigger time.Time
	// The triggered unit's last activation and deactivation, the bases
	// of OnUnitActiveSec= and OnUnitInactiveSec=.
	unitActiveAt, unitInactiveAt time.Time
	unitActive                   bool
	// disabled marks the values (by index) that elapsed once and will
	// not again: OnActiveSec=, OnBootSec=, OnStartupSec=.
	disabled map[int]bool
	// The next elapse of the monotonic values and of the calendar ones
	// (zero for none), and when the loop wakes for them.
	nextMono, nextReal time.Time
	wakeAt             time.Time
	clock              Timer
	clockC             <-chan time.Time
	jobCancel          context.CancelFunc
	resume             bool // taken over running from a record: arm at once
}

func (m *Manager) newTimer(name string, def *timerDef) *timerUnit {
	for _, w := range def.warnings {
		m.logger.Append(name, w)
	}
	t := &timerUnit{
		m:        m,
		name:     name,
		def:      def,
		run:      def,
		loaded:   def,
		sub:      timerDead,
		result:   timerSuccess,
		reqs:     make(chan timerRequest),
		jobDone:  make(chan error, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		disabled: map[int]bool{},
	}
	t.setTarget()
	return t
}

func (t *timerUnit) logf(format string, args ...any) {
	t.m.logger.Append(t.name, fmt.Sprintf(format, args...))
}

func (t *timerUnit) spec() *TimerSpec { return t.run.spec }

func (t *timerUnit) description() string {
	if s := t.run.spec; s != nil && s.Description != "" {
		return s.Description
	}
	return t.name
}

// setTarget registers the timer for the state changes of the unit it
// triggers.
func (t *timerUnit) setTarget() {
	target := ""
	if s := t.run.spec; s != nil {
		target = s.Unit
	}
	t.mu.Lock()
	old := t.target
	t.target = target
	t.mu.Unlock()
	if old != target {
		t.m.watchUnit(t, old, target)
	}
}

// note queues a state of the triggered unit for the loop.
func (t *timerUnit) note(st service.UnitState) {
	t.notesMu.Lock()
	t.notes = append(t.notes, st)
	t.notesMu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *timerUnit) ask(ctx context.Context, kind string, def *timerDef) error {
	reply := make(chan error, 1)
	select {
	case t.reqs <- timerRequest{kind: kind, def: def, reply: reply}:
	case <-t.done:
		return errDetached
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop runs the timer until the manager closes or the timer is
// unloaded.
func (t *timerUnit) loop() {
	defer close(t.done)
	if t.resume {
		t.resume = false
		t.resumeRun()
	}
	for {
		select {
		case r := <-t.reqs:
			if t.handle(r) {
				return
			}
		case <-t.wake:
			t.notesMu.Lock()
			notes := t.notes
			t.notes = nil
			t.notesMu.Unlock()
			for _, st := range notes {
				t.onUnitState(st)
			}
		case <-t.clockC:
			t.clockC = nil
			t.onClock()
		case err := <-t.jobDone:
			t.onJobDone(err)
		case <-t.quit:
			t.detach()
			return
		}
	}
}

func (t *timerUnit) handle(r timerRequest) bool {
	switch r.kind {
	case "load":
		t.def = r.def
		t.mu.Lock()
		t.loaded = r.def
		t.mu.Unlock()
		if timerActiveState(t.sub) != service.Active {
			t.run = r.def
			t.setTarget()
		}
		t.publish()
		r.reply <- nil
	case "unload":
		if timerActiveState(t.sub) == service.Active {
			r.reply <- fmt.Errorf("unit %s: %w", t.name, service.ErrRunning)
			return false
		}
		t.disarm()
		t.m.watchUnit(t, t.target, "")
		os.Remove(t.recordPath())
		os.Remove(t.m.stampPath(t.name))
		r.reply <- nil
		return true
	case "start":
		r.reply <- t.start()
	case "stop":
		if timerActiveState(t.sub) == service.Active {
			t.logf("Stopped %s.", t.description())
		}
		t.enterDead(timerSuccess)
		r.reply <- nil
	}
	return false
}

// start is timer_start: the last trigger comes from the stamp of a
// persistent timer, and the timer waits for its first elapse.
func (t *timerUnit) start() error {
	if timerActiveState(t.sub) == service.Active {
		return nil
	}
	t.run = t.def
	t.setTarget()
	spec := t.spec()
	if spec == nil {
		if t.run.load == service.Masked {
			return fmt.Errorf("unit %s is masked", t.name)
		}
		return fmt.Errorf("unit %s: %w", t.name, t.run.err)
	}
	if _, ok := t.m.unitFile(spec.Unit); !ok {
		return fmt.Errorf("unit %s: refusing to start, unit %s to trigger not loaded: %w", t.name, spec.Unit, service.ErrNotFound)
	}
	if ok, c := checkConditions(spec.Conditions); !ok {
		t.logf("%s was skipped because of an unmet condition check (%s).", t.description(), describeCondition("Condition", c))
		return nil
	}
	if ok, c := checkConditions(spec.Asserts); !ok {
		t.logf("Assertion failed for %s: %s.", t.description(), describeCondition("Assert", c))
		return fmt.Errorf("unit %s: assertion failed: %s", t.name, describeCondition("Assert", c))
	}
	now := t.m.clock.Now()
	t.lastTrigger = time.Time{}
	for i, v := range spec.Values {
		if v.Base == OnActive {
			delete(t.disabled, i)
		}
	}
	if spec.Persistent {
		t.readStamp(now)
	}
	t.activeAt = now
	t.result = timerSuccess
	t.initUnitState()
	t.logf("Started %s.", t.description())
	t.enterWaiting(false)
	return nil
}

// initUnitState reads the triggered unit's state when the timer starts.
func (t *timerUnit) initUnitState() {
	st, ok := t.m.unitSnapshot(t.spec().Unit)
	if !ok {
		return
	}
	t.unitActive = st.Active != service.Inactive && st.Active != service.Failed
	if st.Since.IsZero() {
		return
	}
	if t.unitActive {
		t.unitActiveAt = st.Since
	} else {
		t.unitInactiveAt = st.Since
	}
}

// enterWaiting is timer_enter_waiting: it computes the next elapse of
// every value, and waits for the earliest, or the timer has elapsed for
// good.
func (t *timerUnit) enterWaiting(timeChange bool) {
	spec := t.spec()
	if _, ok := t.m.unitFile(spec.Unit); !ok {
		t.logf("Unit to trigger vanished.")
		t.enterDead(timerResources)
		return
	}
	now := t.m.clock.Now()
	active := timerActiveState(t.sub) == service.Active
	t.nextMono, t.nextReal = time.Time{}, time.Time{}
	leaveAround := false
	for i, v := range spec.Values {
		if t.disabled[i] {
			continue
		}
		if v.Base == OnCalendar {
			base := now
			switch {
			case !t.lastTrigger.IsZero():
				base = t.lastTrigger
			case active:
				base = t.activeAt
			}
			next, ok := v.Calendar.Next(base)
			if !ok {
				continue
			}
			// Not before the manager started, as systemd does not
			// schedule before its own start.
			if next.Before(t.m.startTime) {
				next = t.m.startTime
			}
			if t.nextReal.IsZero() || next.Before(t.nextReal) {
				t.nextReal = next
			}
			continue
		}
		var base time.Time
		switch v.Base {
		case OnActive:
			base = now
			if active {
				base = t.activeAt
			}
		case OnBoot:
			base = t.m.bootTime
		case OnStartup:
			base = t.m.startTime
		case OnUnitActive, OnUnitInactive:
			leaveAround = true
			base = t.unitActiveAt
			if v.Base == OnUnitInactive {
				base = t.unitInactiveAt
			}
			if t.lastTrigger.After(base) {
				base = t.lastTrigger
			}
			if base.IsZero() {
				continue
			}
		}
		next := base.Add(v.Offset)
		// Spent when due already (systemd: strictly before now, which
		// the clock's resolution makes the same but for a clock that
		// stands still).
		if !t.lastTrigger.IsZero() && !timeChange && !next.After(now) && (v.Base == OnActive || v.Base == OnBoot || v.Base == OnStartup) {
			t.disabled[i] = true
			continue
		}
		if t.nextMono.IsZero() || next.Before(t.nextMono) {
			t.nextMono = next
		}
	}
	if t.nextMono.IsZero() && t.nextReal.IsZero() {
		t.logf("Timer has elapsed.")
		if spec.RemainAfterElapse || leaveAround {
			t.setSub(timerElapsed)
		} else {
			t.enterDead(timerSuccess)
		}
		return
	}
	t.wakeAt = time.Time{}
	for _, next := range []*time.Time{&t.nextMono, &t.nextReal} {
		if next.IsZero() {
			continue
		}
		if spec.RandomizedDelay > 0 {
			*next = next.Add(rand.N(spec.RandomizedDelay))
		}
		wake := t.m.sleepBetween(*next, spec.Accuracy, next == &t.nextMono)
		if t.wakeAt.IsZero() || wake.Before(t.wakeAt) {
			t.wakeAt = wake
		}
	}
	t.armClock(now)
	t.setSub(timerWaiting)
}

// armClock sets the clock for wakeAt. The clock is checked again at least
// every minute, so that a change of the wall clock delays a calendar
// timer by a minute at most.
func (t *timerUnit) armClock(now time.Time) {
	t.disarm()
	d := min(max(t.wakeAt.Sub(now), 0), time.Minute)
	t.clock = t.m.clock.NewTimer(d)
	t.clockC = t.clock.Chan()
}

func (t *timerUnit) disarm() {
	if t.clock != nil {
		t.clock.Stop()
		t.clock, t.clockC = nil, nil
	}
}

func (t *timerUnit) onClock() {
	if t.sub != timerWaiting {
		return
	}
	now := t.m.clock.Now()
	if now.Before(t.wakeAt) {
		t.armClock(now)
		return
	}
	t.enterRunning(now)
}

// enterRunning is timer_enter_running: the timer elapsed; its unit is
// started, and the timer is running while the unit is active.
func (t *timerUnit) enterRunning(now time.Time) {
	spec := t.spec()
	if _, ok := t.m.unitFile(spec.Unit); !ok {
		t.logf("Unit to trigger vanished.")
		t.enterDead(timerResources)
		return
	}
	t.lastTrigger = now
	if spec.Persistent {
		t.writeStamp(now)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.jobCancel = cancel
	target, m, done := spec.Unit, t.m, t.jobDone
	go func() {
		done <- m.startTransaction(ctx, target)
	}()
	t.nextMono, t.nextReal = time.Time{}, time.Time{}
	t.setSub(timerRunning)
}

// onJobDone takes the end of the start job of the triggered unit: a unit
// that is not active by now (a oneshot that ran, a unit that failed) has
// the timer wait again.
func (t *timerUnit) onJobDone(err error) {
	t.jobCancel()
	t.jobCancel = nil
	if err != nil && !errors.Is(err, context.Canceled) {
		t.logf("Failed to start %s: %v", t.spec().Unit, err)
	}
	if t.sub != timerRunning {
		return
	}
	if st, ok := t.m.unitSnapshot(t.spec().Unit); !ok || st.Active == service.Inactive || st.Active == service.Failed {
		t.enterWaiting(false)
	}
}

// onUnitState is timer_trigger_notify: a change of the triggered unit's
// state.
func (t *timerUnit) onUnitState(st service.UnitState) {
	if spec := t.spec(); spec == nil || st.Name != spec.Unit {
		return
	}
	active := st.Active != service.Inactive && st.Active != service.Failed
	switch {
	case active && !t.unitActive:
		t.unitActiveAt = st.Since
	case !active && t.unitActive:
		t.unitInactiveAt = st.Since
	}
	t.unitActive = active
	// Values counting from the unit's changes count again.
	for i, v := range t.spec().Values {
		if v.Base == OnUnitActive || v.Base == OnUnitInactive {
			delete(t.disabled, i)
		}
	}
	switch t.sub {
	case timerWaiting, timerElapsed:
		if t.jobCancel == nil {
			t.enterWaiting(false)
		}
	case timerRunning:
		if !active && t.jobCancel == nil {
			t.enterWaiting(false)
		}
	}
	t.publish()
}

// resumeRun goes on with a timer taken over active from a record.
func (t *timerUnit) resumeRun() {
	if t.spec() == nil {
		t.enterDead(timerResources)
		return
	}
	if st, ok := t.m.unitSnapshot(t.spec().Unit); ok {
		t.unitActive = st.Active != service.Inactive && st.Active != service.Failed
	}
	if t.sub == timerRunning && t.unitActive {
		t.publish()
		return
	}
	t.enterWaiting(false)
}

func (t *timerUnit) enterDead(result string) {
	t.disarm()
	if t.jobCancel != nil {
		t.jobCancel()
		t.jobCancel = nil
	}
	t.result = result
	t.nextMono, t.nextReal = time.Time{}, time.Time{}
	if result == timerSuccess {
		t.setSub(timerDead)
	} else {
		t.logf("Failed with result '%s'.", result)
		t.setSub(timerFailed)
	}
}

func (t *timerUnit) setSub(sub string) {
	if timerActiveState(sub) != timerActiveState(t.sub) || t.since.IsZero() {
		t.since = t.m.clock.Now()
	}
	t.sub = sub
	t.publish()
}

// state is the timer's UnitState as it stands.
func (t *timerUnit) state() service.UnitState {
	st := service.UnitState{
		Name:        t.name,
		Load:        t.def.load,
		Active:      timerActiveState(t.sub),
		Sub:         t.sub,
		Since:       t.since,
		Result:      t.result,
		LastTrigger: t.lastTrigger.Round(0),
	}
	if s := t.def.spec; s != nil {
		st.Description, st.Hash = s.Description, s.Hash
	}
	if s := t.run.spec; s != nil && st.Active == service.Active {
		st.Triggers = s.Unit
	} else if s := t.def.spec; s != nil {
		st.Triggers = s.Unit
	}
	if t.sub == timerWaiting {
		next := t.nextReal
		if !t.nextMono.IsZero() {
			// A monotonic elapse shown on the wall clock, as
			// systemctl list-timers shows it.
			now := t.m.clock.Now()
			mono := now.Add(t.nextMono.Sub(now))
			if next.IsZero() || mono.Before(next) {
				next = mono
			}
		}
		st.NextElapse = next.Round(0)
	}
	return st
}

func (t *timerUnit) publish() {
	st := t.state()
	t.mu.Lock()
	changed := st != t.snap
	t.snap = st
	t.mu.Unlock()
	if !changed {
		return
	}
	t.saveRecord()
	t.m.broadcast(st)
}

func (t *timerUnit) unitName() string { return t.name }

func (t *timerUnit) snapshot() service.UnitState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.snap
}

// detach lets go of the timer when the manager closes; its record says
// where the next manager goes on.
func (t *timerUnit) detach() {
	t.saveRecord()
	t.disarm()
	if t.jobCancel != nil {
		t.jobCancel()
	}
	t.m.watchUnit(t, t.target, "")
}

// timerRecord is what the manager keeps of a timer in the run directory
// (RUNDIR/timers/NAME.json), for the next manager to go on with it.
type timerRecord struct {
	Name           string    `json:"name"`
	Unit           []byte    `json:"unit"`
	Sub            string    `json:"subState"`
	Result         string    `json:"result"`
	Since          time.Time `json:"since"`
	ActiveAt       time.Time `json:"activeAt,omitzero"`
	LastTrigger    time.Time `json:"lastTrigger,omitzero"`
	UnitActiveAt   time.Time `json:"unitActiveAt,omitzero"`
	UnitInactiveAt time.Time `json:"unitInactiveAt,omitzero"`
	Disabled       []int     `json:"disabled,omitempty"`
}

func (m *Manager) timersDir() string { return filepath.Join(m.opts.RunDir, "timers") }

func (t *timerUnit) recordPath() string { return filepath.Join(t.m.timersDir(), t.name+".json") }

func (t *timerUnit) saveRecord() {
	rec := timerRecord{
		Name: t.name, Unit: t.run.content, Sub: t.sub, Result: t.result, Since: t.since,
		ActiveAt: t.activeAt.Round(0), LastTrigger: t.lastTrigger.Round(0),
		UnitActiveAt: t.unitActiveAt.Round(0), UnitInactiveAt: t.unitInactiveAt.Round(0),
	}
	for i := range t.disabled {
		rec.Disabled = append(rec.Disabled, i)
	}
	data, err := json.Marshal(rec)
	if err == nil {
		err = replaceFile(t.recordPath(), data)
	}
	if err != nil {
		t.logf("Failed to save the timer's state: %v", err)
	}
}

// readTimerRecords reads the records a previous manager left.
func (m *Manager) readTimerRecords() (map[string]*timerRecord, error) {
	entries, err := os.ReadDir(m.timersDir())
	if err != nil {
		return nil, err
	}
	out := map[string]*timerRecord{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(m.timersDir(), e.Name()))
		if err != nil {
			return nil, err
		}
		var rec timerRecord
		if err := json.Unmarshal(data, &rec); err != nil || rec.Name != name || checkName(name) != nil || !isTimer(name) {
			return nil, fmt.Errorf("timer record %s: malformed", e.Name())
		}
		out[name] = &rec
	}
	return out, nil
}

// adopt takes the timer over from a previous manager's record: an active
// timer goes on waiting (or running, while its unit is active) from the
// times recorded; a missed elapse fires at once. It runs before the
// timer's loop starts.
func (t *timerUnit) adopt(rec *timerRecord) {
	t.result, t.since = rec.Result, rec.Since
	t.activeAt, t.lastTrigger = rec.ActiveAt, rec.LastTrigger
	t.unitActiveAt, t.unitInactiveAt = rec.UnitActiveAt, rec.UnitInactiveAt
	for _, i := range rec.Disabled {
		t.disabled[i] = true
	}
	switch rec.Sub {
	case timerWaiting, timerRunning, timerElapsed:
		def := t.m.defineTimer(t.name, rec.Unit)
		if def.spec == nil {
			return
		}
		t.run, t.sub, t.resume = def, rec.Sub, true
		t.setTarget()
	case timerFailed:
		t.sub = timerFailed
	}
	t.publish()
}

// stampPath is where a persistent timer keeps the time of its last
// trigger: UNITDIR/.timers/stamp-NAME, beside the unit files, since it
// must outlive reboots (systemd's /var/lib/systemd/timers).
func (m *Manager) stampPath(name string) string {
	return filepath.Join(m.opts.UnitDir, ".timers", "stamp-"+name)
}

// readStamp sets the last trigger from the timer's stamp when it is in
// the past, and makes the stamp of a timer that has none, as systemd
// does: its time counts as a trigger from then on.
func (t *timerUnit) readStamp(now time.Time) {
	path := t.m.stampPath(t.name)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.writeStamp(now)
		return
	}
	if err != nil {
		t.logf("Cannot read the timer's stamp: %v", err)
		return
	}
	stamp, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(data)))
	if err != nil {
		// A stamp made by hand: its modification time counts.
		fi, err := os.Stat(path)
		if err != nil {
			return
		}
		stamp = fi.ModTime()
	}
	if !stamp.Before(now) {
		t.logf("Not using persistent file timestamp %s as it is in the future.", stamp.Format(time.RFC3339))
		return
	}
	t.lastTrigger = stamp
}

// writeStamp replaces the timer's stamp atomically.
func (t *timerUnit) writeStamp(at time.Time) {
	path := t.m.stampPath(t.name)
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = fsutil.WriteFileAtomic(path, []byte(at.UTC().Format(time.RFC3339Nano)+"\n"), 0o644)
	}
	if err == nil {
		err = os.Chtimes(path, at, at)
	}
	if err != nil {
		t.logf("Cannot write the timer's stamp: %v", err)
	}
}

// sleepBetween is sd-event's sleep_between: the time in [next,
// next+accuracy] at which to wake, the same spot in each minute (or 10
// seconds, second, 250 ms) for every timer of the machine where the span
// allows, so that wakeups coalesce. Monotonic times are placed on the
// clock since boot, calendar times on the wall clock.
func (m *Manager) sleepBetween(next time.Time, accuracy time.Duration, monotonic bool) time.Time {
	var a int64
	if monotonic {
		a = next.Sub(m.bootTime).Microseconds()
	} else {
		a = next.UnixMicro()
	}
	b := a + accuracy.Microseconds()
	if a <= 0 || b <= a+1 {
		return next
	}
	c := b
	for _, step := range []int64{60e6, 10e6, 1e6, 250e3} {
		x := (b/step)*step + m.perturb%step
		if x >= b {
			if x < step {
				break
			}
			x -= step
		}
		if x >= a {
			c = x
			break
		}
	}
	return next.Add(time.Duration(c-a) * time.Microsecond)
}

// machinePerturbation is systemd's per-boot offset of coalesced wakeups,
// from the boot ID, in microseconds below a minute.
func machinePerturbation() int64 {
	id, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return rand.Int64N(60e6)
	}
	h := fnv.New64a()
	h.Write(bytes.TrimSpace(id))
	return int64(h.Sum64() % 60e6)
}

// machineBootTime is when the machine booted, on clock's time line: now
// less CLOCK_BOOTTIME.
func machineBootTime(clock Clock) time.Time {
	now := clock.Now()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return now
	}
	return now.Add(-time.Duration(ts.Nano()))
}

// watchUnit moves timer t's registration for the states of the unit it
// triggers from unit old to unit new ("" for none).
func (m *Manager) watchUnit(t *timerUnit, old, new string) {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	if w := m.watch[old]; w != nil {
		delete(w, t)
		if len(w) == 0 {
			delete(m.watch, old)
		}
	}
	if new == "" {
		return
	}
	if m.watch[new] == nil {
		m.watch[new] = map[*timerUnit]bool{}
	}
	m.watch[new][t] = true
}

// noteTimers passes a unit's state to the timers that trigger it.
func (m *Manager) noteTimers(st service.UnitState) {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	for t := range m.watch[st.Name] {
		t.note(st)
	}
}

// unitFile is the file a unit would be made from, and whether there is
// one.
func (m *Manager) unitFile(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fileOf(name)
}

// unitSnapshot is the state of service name, if the manager has it.
func (m *Manager) unitSnapshot(name string) (service.UnitState, bool) {
	m.mu.Lock()
	u := m.units[name]
	m.mu.Unlock()
	if u == nil {
		return service.UnitState{}, false
	}
	return u.snapshot(), true
}

// timerFor is the timer named name, an instance of a loaded template
// made on first use.
func (m *Manager) timerFor(name string) (*timerUnit, error) {
	return loadedFor(m, name, m.timers, m.defineTimerSource, m.newTimer)
}

// checkTimer refuses a file that makes no timer; an empty one masks the
// unit. A template is checked as its instances will read it, with an
// instance name.
func (m *Manager) checkTimer(name string, content []byte, def *timerDef) error {
	if isTemplate(name) {
		def = m.defineTimer(strings.Replace(name, "@.", "@check.", 1), content)
	}
	if def.spec == nil && def.load != service.Masked {
		return fmt.Errorf("load %s: %w", name, def.err)
	}
	return nil
}

// actTimer starts or stops a timer.
func (m *Manager) actTimer(ctx context.Context, name, kind string) error {
	t, err := m.timerFor(name)
	if err != nil {
		return err
	}
	return t.ask(ctx, kind, nil)
}
