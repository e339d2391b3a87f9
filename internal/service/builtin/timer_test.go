package builtin

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdunit "github.com/coreos/go-systemd/v22/unit"

	"atoll.dev/atoll/internal/service"
)

func TestParseTimerSpec(t *testing.T) {
	opts := []*sdunit.UnitOption{
		{Section: "Unit", Name: "Description", Value: "nightly backup"},
		{Section: "Timer", Name: "OnBootSec", Value: "5min"},
		{Section: "Timer", Name: "OnCalendar", Value: "bogus"},
		{Section: "Timer", Name: "OnUnitActiveSec", Value: ""}, // resets the list
		{Section: "Timer", Name: "OnCalendar", Value: "Mon..Fri 02:00"},
		{Section: "Timer", Name: "OnUnitInactiveSec", Value: "1h 30min"},
		{Section: "Timer", Name: "Persistent", Value: "yes"},
		{Section: "Timer", Name: "RandomizedDelaySec", Value: "10min"},
		{Section: "Timer", Name: "WakeSystem", Value: "true"},
		{Section: "Install", Name: "WantedBy", Value: "timers.target"},
	}
	spec, warnings, err := ParseTimerSpec("backup.timer", opts)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, v := range spec.Values {
		values = append(values, v.String())
	}
	if got, want := strings.Join(values, " "), "OnCalendar=Mon..Fri *-*-* 02:00:00 OnUnitInactiveSec=1h30m0s"; got != want {
		t.Errorf("values %q, want %q", got, want)
	}
	if spec.Unit != "backup.service" || !spec.Persistent || spec.Accuracy != time.Minute || spec.RandomizedDelay != 10*time.Minute ||
		!spec.RemainAfterElapse || spec.Description != "nightly backup" || strings.Join(spec.WantedBy, " ") != "timers.target" {
		t.Errorf("spec %+v: want Unit=backup.service, Persistent, AccuracySec=1min, RandomizedDelaySec=10min, RemainAfterElapse, the description and WantedBy", spec)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "OnCalendar=bogus") || !strings.Contains(warnings[1], "WakeSystem") {
		t.Errorf("warnings %q, want one for OnCalendar=bogus and one for WakeSystem=", warnings)
	}

	for _, tc := range []struct {
		opts []*sdunit.UnitOption
		want string
	}{
		{nil, "timer has no OnActiveSec="},
		{[]*sdunit.UnitOption{{Section: "Timer", Name: "OnActiveSec", Value: "1s"}, {Section: "Timer", Name: "Unit", Value: "other.timer"}}, "a timer cannot trigger a timer"},
		{[]*sdunit.UnitOption{{Section: "Timer", Name: "OnActiveSec", Value: "1s"}, {Section: "Timer", Name: "Unit", Value: "data.mount"}}, "triggers services only"},
		{[]*sdunit.UnitOption{{Section: "Timer", Name: "OnActiveSec", Value: "1s"}, {Section: "Timer", Name: "Unit", Value: "bad/name.service"}}, "invalid unit name"},
	} {
		_, _, err := ParseTimerSpec("x.timer", tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "x.timer") {
			t.Errorf("ParseTimerSpec(%v): error %v, want one naming x.timer and %q", tc.opts, err, tc.want)
		}
	}
}

func TestSleepBetween(t *testing.T) {
	m := &Manager{perturb: 17_500_000} // 17.5s into each minute
	at := time.Date(2024, 1, 1, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		accuracy time.Duration
		want     time.Duration // after at
	}{
		{time.Minute, 17500 * time.Millisecond},     // the minute's spot
		{10 * time.Second, 7500 * time.Millisecond}, // the 10 seconds' spot
		{time.Microsecond, 0},
		{300 * time.Millisecond, 250 * time.Millisecond}, // the quarter second's
	} {
		if got := m.sleepBetween(at, tc.accuracy, false).Sub(at); got != tc.want {
			t.Errorf("accuracy %v: wakes %v after the elapse, want %v", tc.accuracy, got, tc.want)
		}
	}
}

// stepClock is a Clock that moves only when told, for timers.
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*stepTimer
}

type stepTimer struct {
	clock *stepClock
	at    time.Time
	c     chan time.Time
	done  bool
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &stepTimer{clock: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	if !t.at.After(c.now) {
		t.done = true
		t.c <- c.now
	}
	c.timers = append(c.timers, t)
	return t
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.done && !t.at.After(c.now) {
			t.done = true
			t.c <- c.now
		}
	}
}

// set moves the clock to at, as after a time the manager was down.
func (c *stepClock) set(at time.Time) {
	c.mu.Lock()
	d := at.Sub(c.now)
	c.mu.Unlock()
	c.advance(d)
}

func (t *stepTimer) Chan() <-chan time.Time { return t.c }

func (t *stepTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// timerEnv is a manager's directories for timer tests. As root the
// timers' services run in cgroups; otherwise they fail to start, which is
// all some tests need.
type timerEnv struct {
	t                             *testing.T
	unitDir, runDir, cgroupParent string
	clock                         *stepClock
	boot                          time.Time
	log                           *memLogger
}

func newTimerEnv(t *testing.T) *timerEnv {
	e := &timerEnv{t: t, log: newMemLogger()}
	if os.Geteuid() == 0 {
		te := newTestEnv(t)
		e.unitDir, e.runDir, e.cgroupParent = te.unitDir, te.runDir, te.cgroupParent
	} else {
		dir := t.TempDir()
		e.unitDir, e.runDir, e.cgroupParent = filepath.Join(dir, "units"), filepath.Join(dir, "run"), "/atoll-test/unprivileged"
	}
	e.clock = &stepClock{now: time.Date(2024, 3, 9, 12, 0, 0, 0, time.UTC)}
	e.boot = e.clock.now.Add(-time.Hour)
	return e
}

// manager starts a manager over the directories, closed when the test
// ends.
func (e *timerEnv) manager() *Manager {
	e.t.Helper()
	m, err := New(Options{UnitDir: e.unitDir, RunDir: e.runDir, CgroupParent: e.cgroupParent, Logger: e.log, Clock: e.clock, BootTime: e.boot})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { m.Close() })
	return m
}

// waitTimer waits until the timer's state satisfies ok.
func waitTimer(t *testing.T, m *Manager, name, what string, ok func(service.UnitState) bool) service.UnitState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := m.State(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never %s; last state %s/%s, next elapse %v, last trigger %v", name, what, st.Active, st.Sub, st.NextElapse, st.LastTrigger)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitingFor(next time.Time) func(service.UnitState) bool {
	return func(st service.UnitState) bool { return st.Sub == timerWaiting && st.NextElapse.Equal(next) }
}

func TestTimerMonotonicAndStop(t *testing.T) {
	e := newTimerEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "tick.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
	load(t, m, "tick.timer", "[Timer]\nOnActiveSec=1h\nOnBootSec=3h\nAccuracySec=1us\n[Install]\nWantedBy=timers.target\n")
	start := e.clock.Now()
	if err := m.Start(ctx, "tick.timer"); err != nil {
		t.Fatal(err)
	}
	st := waitTimer(t, m, "tick.timer", "waiting an hour", waitingFor(start.Add(time.Hour)))
	if st.Active != service.Active || st.Triggers != "tick.service" || !st.LastTrigger.IsZero() {
		t.Errorf("started timer: %+v, want active, triggering tick.service, never triggered", st)
	}
	e.clock.advance(time.Hour)
	// OnActiveSec= is spent; OnBootSec= is two hours later.
	st = waitTimer(t, m, "tick.timer", "waiting for the boot value", waitingFor(e.boot.Add(3*time.Hour)))
	if !st.LastTrigger.Equal(start.Add(time.Hour)) {
		t.Errorf("last trigger %v, want %v", st.LastTrigger, start.Add(time.Hour))
	}
	waitState(t, m, "tick.service", "run", func(s service.UnitState) bool { return !s.Since.IsZero() && s.Active != service.Activating })
	e.clock.advance(time.Hour)
	st = waitTimer(t, m, "tick.timer", "elapsed", func(s service.UnitState) bool { return s.Sub == timerElapsed })
	if st.Active != service.Active || !st.NextElapse.IsZero() || !st.LastTrigger.Equal(e.boot.Add(3*time.Hour)) {
		t.Errorf("elapsed timer: %+v, want active, no next elapse, last trigger at boot+3h", st)
	}

	// Stop, disable, and start again: OnActiveSec= counts anew.
	if err := m.Enable(ctx, "tick.timer"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(e.unitDir, "timers.target.wants", "tick.timer")); err != nil {
		t.Errorf("enable: %v", err)
	}
	if err := m.Stop(ctx, "tick.timer"); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, "tick.timer", service.Inactive, timerDead)
	if err := m.Disable(ctx, "tick.timer"); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.State(ctx, "tick.timer"); st.Enabled != "disabled" {
		t.Errorf("disabled timer's unit file state %q", st.Enabled)
	}
	e.clock.advance(10 * time.Hour)
	if st, _ := m.State(ctx, "tick.timer"); st.Sub != timerDead || !st.NextElapse.IsZero() {
		t.Errorf("stopped timer moved: %+v", st)
	}
	if err := m.Start(ctx, "tick.timer"); err != nil {
		t.Fatal(err)
	}
	waitTimer(t, m, "tick.timer", "waiting an hour again", waitingFor(e.clock.Now().Add(time.Hour)))
	if err := m.Unload(ctx, "tick.timer"); err == nil {
		t.Error("unloaded a running timer")
	}
	m.Stop(ctx, "tick.timer")
	if err := m.Unload(ctx, "tick.timer"); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.State(ctx, "tick.timer"); st.Load != service.NotFound {
		t.Errorf("unloaded timer reads %s", st.Load)
	}
}

func TestTimerCalendarAndFailingService(t *testing.T) {
	e := newTimerEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "report.service", "[Service]\nType=oneshot\nExecStart=/bin/false\n")
	load(t, m, "report.timer", "[Timer]\nOnCalendar=*-*-* 03:00:00 UTC\nOnCalendar=Sat 13:30 UTC\nAccuracySec=1us\n")
	if err := m.Start(ctx, "report.timer"); err != nil {
		t.Fatal(err)
	}
	// 2024-03-09 is a Saturday, noon.
	sat := time.Date(2024, 3, 9, 13, 30, 0, 0, time.UTC)
	waitTimer(t, m, "report.timer", "waiting for 13:30", waitingFor(sat))
	e.clock.set(sat)
	st := waitTimer(t, m, "report.timer", "waiting for 03:00", waitingFor(time.Date(2024, 3, 10, 3, 0, 0, 0, time.UTC)))
	if !st.LastTrigger.Equal(sat) || st.Active != service.Active {
		t.Errorf("after 13:30: %+v, want active, last trigger at 13:30", st)
	}
	svc := waitState(t, m, "report.service", "fail", func(s service.UnitState) bool { return s.Active == service.Failed })
	if svc.Result != string(ResultExitCode) && svc.Result != string(ResultResources) {
		t.Errorf("service result %s", svc.Result)
	}
	// The service failing does not fail the timer, which fires again.
	e.clock.set(time.Date(2024, 3, 10, 3, 0, 0, 0, time.UTC))
	waitTimer(t, m, "report.timer", "waiting for the next 03:00", waitingFor(time.Date(2024, 3, 11, 3, 0, 0, 0, time.UTC)))
}

func TestTimerUnitActiveRearms(t *testing.T) {
	requireRoot(t)
	e := newTimerEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "poll.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
	load(t, m, "poll.timer", "[Timer]\nOnActiveSec=10s\nOnUnitActiveSec=15min\nAccuracySec=1us\n")
	start := e.clock.Now()
	if err := m.Start(ctx, "poll.timer"); err != nil {
		t.Fatal(err)
	}
	st := waitTimer(t, m, "poll.timer", "waiting 10s", waitingFor(start.Add(10*time.Second)))
	for i := 1; i <= 3; i++ {
		at := st.NextElapse
		e.clock.set(at)
		st = waitTimer(t, m, "poll.timer", "waiting again", func(s service.UnitState) bool {
			return s.Sub == timerWaiting && s.LastTrigger.Equal(at)
		})
		svc, _ := m.State(ctx, "poll.service")
		if svc.Active != service.Inactive || svc.Result != string(ResultSuccess) || !svc.Since.Equal(at) {
			t.Fatalf("round %d: service %s/%s result %s since %v, want it run at %v", i, svc.Active, svc.Sub, svc.Result, svc.Since, at)
		}
		// The unit became active at the trigger: 15min from then.
		if want := at.Add(15 * time.Minute); !st.NextElapse.Equal(want) {
			t.Fatalf("round %d: next elapse %v, want %v", i, st.NextElapse, want)
		}
	}
}

func TestTimerPersistentAcrossRestarts(t *testing.T) {
	e := newTimerEnv(t)
	daily := "[Timer]\nOnCalendar=*-*-* 03:00:00 UTC\nAccuracySec=1us\nPersistent=true\n[Install]\nWantedBy=timers.target\n"
	m := e.manager()
	ctx := ctxT(t)
	load(t, m, "backup.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
	load(t, m, "backup.timer", daily)
	load(t, m, "plain.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
	load(t, m, "plain.timer", strings.Replace(daily, "Persistent=true", "Persistent=false", 1))
	for _, name := range []string{"backup.timer", "plain.timer"} {
		if err := m.Enable(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	night := time.Date(2024, 3, 10, 3, 0, 0, 0, time.UTC)
	waitTimer(t, m, "backup.timer", "waiting", waitingFor(night))
	e.clock.set(night)
	waitTimer(t, m, "backup.timer", "triggered", func(s service.UnitState) bool { return s.LastTrigger.Equal(night) && s.Sub == timerWaiting })
	stamp, err := os.ReadFile(filepath.Join(e.unitDir, ".timers", "stamp-backup.timer"))
	if err != nil || strings.TrimSpace(string(stamp)) != night.Format(time.RFC3339Nano) {
		t.Fatalf("stamp %q, %v; want %s", stamp, err, night.Format(time.RFC3339Nano))
	}
	waitTimer(t, m, "plain.timer", "triggered", func(s service.UnitState) bool { return s.LastTrigger.Equal(night) && s.Sub == timerWaiting })

	// The manager stops; the next one takes the timers over.
	m.Close()
	e.clock.set(night.Add(2 * time.Hour))
	m = e.manager()
	st := waitTimer(t, m, "backup.timer", "taken over", waitingFor(night.Add(24*time.Hour)))
	if !st.LastTrigger.Equal(night) {
		t.Errorf("taken over: last trigger %v, want %v", st.LastTrigger, night)
	}

	// The machine is down over the next night: the run directory is
	// gone, the stamp is not. The persistent timer fires at once, the
	// other waits for the night after.
	m.Close()
	if err := os.RemoveAll(e.runDir); err != nil {
		t.Fatal(err)
	}
	boot := night.Add(30 * time.Hour)
	e.clock.set(boot)
	e.boot = boot
	m = e.manager()
	st = waitTimer(t, m, "backup.timer", "fired at start", func(s service.UnitState) bool { return s.LastTrigger.Equal(boot) })
	if st.Active != service.Active {
		t.Errorf("after the reboot: %+v", st)
	}
	st = waitTimer(t, m, "plain.timer", "waiting", waitingFor(night.Add(48*time.Hour)))
	if !st.LastTrigger.IsZero() {
		t.Errorf("the timer without Persistent= remembers a trigger over a reboot: %v", st.LastTrigger)
	}
	waitTimer(t, m, "backup.timer", "waiting", waitingFor(night.Add(48*time.Hour)))
}

func TestDaemonReload(t *testing.T) {
	e := newTimerEnv(t)
	m := e.manager()
	ctx := ctxT(t)
	write := func(name, content string) {
		t.Helper()
		path := filepath.Join(e.unitDir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	load(t, m, "old.service", "[Unit]\nDescription=old\n[Service]\nExecStart=/bin/true\n")
	load(t, m, "gone.service", "[Service]\nExecStart=/bin/true\n")
	write("new.service", "[Unit]\nDescription=new\n[Service]\nExecStart=/bin/true\n")
	write("new.timer", "[Timer]\nOnActiveSec=1h\n")
	write("old.service", "[Unit]\nDescription=old, changed\n[Service]\nExecStart=/bin/true\n")
	write("old.service.d/10-more.conf", "[Unit]\nDescription=old, changed again\n")
	write("broken.service", "[Service]\nExecStart=/bin/true\nthis is not a line\n")
	write("bad-dropin.service", "[Service]\nExecStart=/bin/true\n")
	write("bad-dropin.service.d/20-x.conf", "[Service]\n\nnonsense\n")
	if err := os.Remove(filepath.Join(e.unitDir, "gone.service")); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.State(ctx, "new.service"); st.Load != service.NotFound {
		t.Fatalf("a file written by hand is known before daemon-reload: %s", st.Load)
	}
	err := m.DaemonReload(ctx)
	if err == nil {
		t.Fatal("daemon-reload read two bad files without an error")
	}
	// The default parser gives no line numbers; the files are named.
	for _, want := range []string{"broken.service", "bad-dropin.service.d/20-x.conf"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("daemon-reload error %q does not name %s", err, want)
		}
	}
	for name, want := range map[string]service.LoadState{
		"new.service": service.Loaded, "new.timer": service.Loaded, "old.service": service.Loaded,
		"broken.service": service.LoadError, "bad-dropin.service": service.LoadError, "gone.service": service.NotFound,
	} {
		if st, _ := m.State(ctx, name); st.Load != want {
			t.Errorf("after daemon-reload %s reads %s, want %s", name, st.Load, want)
		}
	}
	if st, _ := m.State(ctx, "old.service"); st.Description != "old, changed again" {
		t.Errorf("old.service's description %q, want the drop-in's", st.Description)
	}
	cat, err := m.Cat(ctx, "old.service")
	if err != nil || !strings.Contains(string(cat), "# old.service.d/10-more.conf\n[Unit]\nDescription=old, changed again\n") {
		t.Errorf("cat old.service: %q, %v; want the drop-in after a line naming it", cat, err)
	}
	list, _ := m.List(ctx)
	var names []string
	for _, st := range list {
		names = append(names, st.Name)
	}
	if got, want := strings.Join(names, " "), "bad-dropin.service broken.service new.service new.timer old.service"; got != want {
		t.Errorf("units after daemon-reload: %s, want %s", got, want)
	}
	if err := m.Start(ctx, "new.timer"); err != nil {
		t.Fatal(err)
	}
	waitTimer(t, m, "new.timer", "waiting", waitingFor(e.clock.Now().Add(time.Hour)))
}

func TestDaemonReloadWithParserNamesLine(t *testing.T) {
	dir := t.TempDir()
	m, err := New(Options{UnitDir: filepath.Join(dir, "units"), RunDir: filepath.Join(dir, "run"), Clock: &stepClock{now: time.Now()},
		ParseUnit: func(name, source string, content []byte) ([]*sdunit.UnitOption, error) {
			for i, line := range strings.Split(string(content), "\n") {
				if line == "nonsense" {
					return nil, &lineError{source, i + 1}
				}
			}
			return sdunit.DeserializeOptions(strings.NewReader(string(content)))
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	os.MkdirAll(filepath.Join(dir, "units", "web.service.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "units", "web.service"), []byte("[Service]\nExecStart=/bin/true\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "units", "web.service.d", "10-x.conf"), []byte("[Service]\n\nnonsense\n"), 0o644)
	err = m.DaemonReload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "web.service.d/10-x.conf:3") {
		t.Errorf("daemon-reload: %v, want an error naming web.service.d/10-x.conf:3", err)
	}
}

type lineError struct {
	file string
	line int
}

func (e *lineError) Error() string { return e.file + ":" + strconv.Itoa(e.line) + ": not a line" }
