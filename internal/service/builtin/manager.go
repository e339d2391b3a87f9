package builtin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	sdunit "github.com/coreos/go-systemd/v22/unit"

	"atoll.dev/atoll/internal/fsutil"
	"atoll.dev/atoll/internal/service"
)

// Options configure a Manager.
type Options struct {
	// UnitDir holds the unit files Load writes, and the enablement
	// links of [Install] (TARGET.wants/NAME), as /etc/systemd/system.
	UnitDir string
	// RunDir holds what lives as long as the units' processes: a record
	// of each unit's state, its output FIFOs and its notification socket,
	// under RunDir/units (/run/atoll on a machine).
	RunDir string
	// CgroupParent is where units' cgroups are made, in every hierarchy:
	// DefaultCgroupParent if empty; a playground machine takes one of
	// its own.
	CgroupParent string
	// Logger gets the units' output and the manager's messages about
	// them; nil discards them.
	Logger Logger
	// Clock times timeouts, restarts and start limits; nil is the real
	// clock.
	Clock Clock
	// Defaults are the defaults of settings units leave out; zero
	// fields take systemd's.
	Defaults Defaults
	// Environment is every process's environment before the unit's own
	// (Environment=, EnvironmentFile=). Nil gives systemd's: a PATH and
	// nothing of the daemon's environment.
	Environment []string
	// ParseUnit reads a unit file or drop-in into options, specifiers
	// expanded for name (an instance's name for a template's file);
	// source names the file in errors: the unit's name, or a drop-in's
	// path under UnitDir (web.service.d/10-limits.conf). Nil reads it
	// with go-systemd's sdunit.Deserialize, which expands no specifier
	// and gives no line numbers.
	ParseUnit func(name, source string, content []byte) ([]*sdunit.UnitOption, error)
	// BootTime is when the machine booted, on Clock's time line, for
	// timers' OnBootSec=; zero reads it from CLOCK_BOOTTIME. A
	// playground machine may give its own start.
	BootTime time.Time
}

// Clock is what the manager asks the time of.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a Clock's timer.
type Timer interface {
	Chan() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) Chan() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool             { return t.t.Stop() }

// DefaultPath is the PATH systemd gives system services, the environment
// of every process when Options.Environment is nil.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"

// Manager is the builtin supervisor: service.Manager for service units,
// each run by a goroutine of its own in a cgroup of its own.
type Manager struct {
	opts   Options
	logger Logger
	clock  Clock
	env    []string
	parse  func(name, source string, content []byte) ([]*sdunit.UnitOption, error)

	mu      sync.Mutex
	files   map[string][]byte     // unit and template files by name
	dropins map[string][]dropIn   // drop-ins by directory (web.service.d)
	units   map[string]*unit      // units and instances
	timers  map[string]*timerUnit // timers and their instances
	closed  bool

	// bootTime and startTime are the bases of OnBootSec= and
	// OnStartupSec=; perturb places coalesced timer wakeups (µs).
	bootTime, startTime time.Time
	perturb             int64
	// watch has the timers by the unit they trigger.
	watchMu sync.Mutex
	watch   map[string]map[*timerUnit]bool

	subsMu    sync.Mutex // apart from mu: units publish with mu held
	subs      map[*subscriber]bool
	closeOnce sync.Once

	shared *shared // the poller and cgroup hierarchies (shared.go)
}

var _ service.Manager = (*Manager)(nil)

// New starts a manager over opts' directories. Units a previous manager
// left running (their records in RunDir) are taken over, not restarted;
// enabled units that are not running are started, in the background.
func New(opts Options) (*Manager, error) {
	if opts.UnitDir == "" || opts.RunDir == "" {
		return nil, errors.New("builtin: UnitDir and RunDir are required")
	}
	if opts.CgroupParent == "" {
		opts.CgroupParent = DefaultCgroupParent
	}
	m := &Manager{
		opts:   opts,
		logger: opts.Logger,
		clock:  opts.Clock,
		env:    opts.Environment,
		parse:  opts.ParseUnit,
		files:  map[string][]byte{},
		units:  map[string]*unit{},
		timers: map[string]*timerUnit{},
		subs:   map[*subscriber]bool{},
		watch:  map[string]map[*timerUnit]bool{},
	}
	if m.logger == nil {
		m.logger = discardLogger{}
	}
	if m.clock == nil {
		m.clock = realClock{}
	}
	if m.env == nil {
		m.env = []string{DefaultPath}
	}
	if m.parse == nil {
		m.parse = func(_, source string, content []byte) ([]*sdunit.UnitOption, error) {
			opts, err := sdunit.DeserializeOptions(bytes.NewReader(content))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", source, err)
			}
			return opts, nil
		}
	}
	m.startTime, m.bootTime = m.clock.Now(), opts.BootTime
	if m.bootTime.IsZero() {
		m.bootTime = machineBootTime(m.clock)
	}
	m.perturb = machinePerturbation()
	for _, dir := range []string{opts.UnitDir, m.unitsDir(), m.timersDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("builtin: %w", err)
		}
	}
	var err error
	if m.files, m.dropins, err = m.readUnitDir(); err != nil {
		return nil, fmt.Errorf("builtin: %w", err)
	}
	records, err := readRecords(m.unitsDir())
	if err != nil {
		return nil, fmt.Errorf("builtin: %w", err)
	}
	timerRecords, err := m.readTimerRecords()
	if err != nil {
		return nil, fmt.Errorf("builtin: %w", err)
	}
	if m.shared, err = newShared(); err != nil {
		return nil, fmt.Errorf("builtin: %w", err)
	}
	for name := range m.files {
		if isTemplate(name) {
			continue
		}
		src, _ := m.sourceOf(name)
		if isTimer(name) {
			m.timers[name] = m.newTimer(name, m.defineTimerSource(name, src))
		} else {
			m.units[name] = m.newUnit(name, m.defineSource(name, src))
		}
	}
	for name, rec := range records {
		if checkName(name) != nil || isTemplate(name) || isTimer(name) {
			continue
		}
		u := m.units[name]
		if u == nil {
			// A unit unloaded, or an instance: its file is its
			// template's, or only the record's now.
			def := m.define(name, rec.Unit)
			if src, ok := m.sourceOf(name); ok {
				def = m.defineSource(name, src)
			}
			u = m.newUnit(name, def)
			m.units[name] = u
		}
		u.adopt(rec)
	}
	for name, rec := range timerRecords {
		if isTemplate(name) {
			continue
		}
		t := m.timers[name]
		if t == nil {
			def := m.defineTimer(name, rec.Unit)
			if src, ok := m.sourceOf(name); ok {
				def = m.defineTimerSource(name, src)
			}
			t = m.newTimer(name, def)
			m.timers[name] = t
		}
		t.adopt(rec)
	}
	for _, u := range m.units {
		if u.snapshot().Name == "" {
			u.publish()
		}
		go u.loop()
	}
	for _, t := range m.timers {
		if t.snapshot().Name == "" {
			t.publish()
		}
		go t.loop()
	}
	// Enabled units, instances included, that do not run yet.
	for _, name := range m.enabledNames() {
		if isTimer(name) {
			if t, err := m.timerFor(name); err != nil {
				m.logger.Append(name, fmt.Sprintf("Cannot start enabled unit: %v", err))
			} else if timerActiveState(t.snapshot().Sub) != service.Active {
				go t.ask(context.Background(), "start", nil)
			}
			continue
		}
		u, err := m.unitFor(name)
		if err != nil {
			m.logger.Append(name, fmt.Sprintf("Cannot start enabled unit: %v", err))
			continue
		}
		if activeState(u.snapshot().Sub) != service.Active {
			go m.startTransaction(context.Background(), name)
		}
	}
	return m, nil
}

func (m *Manager) unitsDir() string { return filepath.Join(m.opts.RunDir, "units") }

func (m *Manager) cgroupPath(name string) string { return unitCgroupPath(m.opts.CgroupParent, name) }

// define reads a unit file for unit name.
func (m *Manager) define(name string, content []byte) *definition {
	def := &definition{content: content, load: service.Loaded}
	if !strings.HasSuffix(name, ".service") {
		def.load, def.err = service.LoadError, errors.New("the builtin manager runs .service and .timer units only")
		return def
	}
	if len(bytes.TrimSpace(content)) == 0 {
		def.load, def.err = service.Masked, errors.New("unit is masked")
		return def
	}
	opts, err := m.parse(name, name, content)
	if err != nil {
		def.load, def.err = service.LoadError, err
		return def
	}
	spec, warnings, err := m.opts.Defaults.ParseSpec(name, opts)
	def.warnings = warnings
	if err != nil {
		def.load, def.err = service.BadSetting, err
		return def
	}
	def.spec = spec
	return def
}

// newUnit makes the unit for def, its warnings going to its journal.
func (m *Manager) newUnit(name string, def *definition) *unit {
	for _, w := range def.warnings {
		m.logger.Append(name, w)
	}
	return newUnit(m, name, def)
}

// fileOf is the unit file of name: its own, or its template's.
func (m *Manager) fileOf(name string) ([]byte, bool) {
	if content, ok := m.files[name]; ok {
		return content, true
	}
	if t, ok := templateOf(name); ok {
		content, ok := m.files[t]
		return content, ok
	}
	return nil, false
}

// ask sends a request to the unit's loop and waits for its answer or ctx.
func (u *unit) ask(ctx context.Context, kind string, def *definition) error {
	reply := make(chan error, 1)
	select {
	case u.reqs <- request{kind: kind, def: def, reply: reply}:
	case <-u.done:
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

// Load writes the unit file to UnitDir and makes it known. A file that
// does not make a service is refused with the reason; an empty file
// masks the unit.
func (m *Manager) Load(ctx context.Context, name string, content []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if isTimer(name) {
		return loadInto(ctx, m, name, content, m.timers, m.defineTimerSource, m.checkTimer, m.newTimer)
	}
	return loadInto(ctx, m, name, content, m.units, m.defineSource, checkService, m.newUnit)
}

// checkService refuses a file that makes no service; an empty one masks
// the unit.
func checkService(name string, _ []byte, def *definition) error {
	if def.spec == nil && def.load != service.Masked {
		return fmt.Errorf("load %s: %w", name, def.err)
	}
	return nil
}

// loadInto is Load for the units of one type, kept in units (m.units or
// m.timers, under m.mu): define reads a file with its drop-ins, check
// refuses what cannot be loaded (given the file as sent too), and newUnit
// makes a unit not known yet. A loaded unit takes
// the new definition (a running one at its next start), and so do the
// instances of a template that have no file of their own.
func loadInto[U loadedUnit[D], D any](ctx context.Context, m *Manager, name string, content []byte, units map[string]U,
	define func(string, unitSource) D, check func(string, []byte, D) error, newUnit func(string, D) U) error {
	m.mu.Lock()
	src := m.sourceWith(name, content)
	m.mu.Unlock()
	def := define(name, src)
	if err := check(name, content, def); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errDetached
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(m.opts.UnitDir, name), content, 0o644); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("load %s: %w", name, err)
	}
	m.files[name] = content
	type update struct {
		u   U
		def D
	}
	var updates []update
	var none U
	if isTemplate(name) {
		for iname, u := range units {
			if t, _ := templateOf(iname); t == name {
				if _, own := m.files[iname]; !own {
					updates = append(updates, update{u, define(iname, m.sourceWith(iname, content))})
				}
			}
		}
	} else if u := units[name]; u != none {
		updates = append(updates, update{u, def})
	} else {
		u := newUnit(name, def)
		units[name] = u
		u.publish()
		go u.loop()
	}
	m.mu.Unlock()
	for _, up := range updates {
		if err := up.u.ask(ctx, "load", up.def); err != nil {
			return fmt.Errorf("load %s: %w", up.u.unitName(), err)
		}
	}
	return nil
}

// Unload forgets a unit that is not running: its file, its enablement,
// its record. A template goes with its instances, none of which may run.
func (m *Manager) Unload(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if isTimer(name) {
		return unloadFrom(ctx, m, name, m.timers)
	}
	return unloadFrom(ctx, m, name, m.units)
}

// loadedUnit is a unit of one type as the manager keeps it, run by its
// own loop: a service (*unit, defined by *definition) or a timer
// (*timerUnit, defined by *timerDef).
type loadedUnit[D any] interface {
	comparable
	unitName() string
	ask(ctx context.Context, kind string, def D) error
	snapshot() service.UnitState
	publish()
	loop()
}

// unloadFrom is Unload for the units of one type, kept in units (m.units
// or m.timers, under m.mu): the unit, or a template with the instances
// that have no file of their own, none of which may run.
func unloadFrom[U loadedUnit[D], D any](ctx context.Context, m *Manager, name string, units map[string]U) error {
	var none U
	m.mu.Lock()
	if _, ok := m.files[name]; !ok && units[name] == none {
		m.mu.Unlock()
		return fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	var victims []U
	for uname, u := range units {
		if uname == name {
			victims = append(victims, u)
		} else if t, _ := templateOf(uname); t == name && isTemplate(name) {
			if _, own := m.files[uname]; !own {
				victims = append(victims, u)
			}
		}
	}
	m.mu.Unlock()
	for _, u := range victims {
		if a := u.snapshot().Active; a != service.Inactive && a != service.Failed {
			return fmt.Errorf("unit %s: %w", u.unitName(), service.ErrRunning)
		}
	}
	var def D // no definition: the unit goes
	for _, u := range victims {
		if err := u.ask(ctx, "unload", def); err != nil {
			return err
		}
		m.mu.Lock()
		delete(units, u.unitName())
		m.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.files, name)
	if err := os.Remove(filepath.Join(m.opts.UnitDir, name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("unload %s: %w", name, err)
	}
	return m.unlinkInstall(name)
}

// unitFor is the service named name, an instance of a loaded template
// made on first use.
func (m *Manager) unitFor(name string) (*unit, error) {
	return loadedFor(m, name, m.units, m.defineSource, m.newUnit)
}

// loadedFor is the unit of one type named name, from units (m.units or
// m.timers): an instance of a loaded template is defined and made on
// first use.
func loadedFor[U loadedUnit[D], D any](m *Manager, name string, units map[string]U,
	define func(string, unitSource) D, newUnit func(string, D) U) (U, error) {
	var none U
	if err := checkName(name); err != nil {
		return none, err
	}
	if isTemplate(name) {
		return none, fmt.Errorf("unit %s: %w", name, service.ErrTemplate)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return none, errDetached
	}
	if u := units[name]; u != none {
		return u, nil
	}
	src, ok := m.sourceOf(name)
	if !ok {
		return none, fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	u := newUnit(name, define(name, src))
	units[name] = u
	u.publish()
	go u.loop()
	return u, nil
}

func (m *Manager) act(ctx context.Context, name, kind string) error {
	u, err := m.unitFor(name)
	if err != nil {
		return err
	}
	return u.ask(ctx, kind, nil)
}

// Start starts a unit, with the units it Requires=, BindsTo= and Wants=
// in the order After= and Before= give (see deps.go), and returns once it
// is active (a oneshot without RemainAfterExit=: once it has run), or
// failed, or ctx ends. A unit whose Condition*= do not hold is left
// inactive without an error.
func (m *Manager) Start(ctx context.Context, name string) error {
	if isTimer(name) {
		return m.actTimer(ctx, name, "start")
	}
	return m.startTransaction(ctx, name)
}

// Stop stops a unit, after the active units that depend on it
// (Requires=, BindsTo=, PartOf=), and returns once it is inactive or
// failed, or ctx ends.
func (m *Manager) Stop(ctx context.Context, name string) error {
	if isTimer(name) {
		return m.actTimer(ctx, name, "stop")
	}
	_, err := m.stopTransaction(ctx, name)
	return err
}

// Restart stops a unit if it runs, then starts it with its file as
// loaded last; the units depending on it restart with it.
func (m *Manager) Restart(ctx context.Context, name string) error {
	if isTimer(name) {
		if err := m.actTimer(ctx, name, "stop"); err != nil {
			return err
		}
		return m.actTimer(ctx, name, "start")
	}
	return m.restartTransaction(ctx, name)
}

// Reload runs the unit's ExecReload=.
func (m *Manager) Reload(ctx context.Context, name string) error {
	if isTimer(name) {
		return fmt.Errorf("unit %s: a timer cannot be reloaded", name)
	}
	return m.act(ctx, name, "reload")
}

// State reports one unit; a name never loaded reads not-found.
func (m *Manager) State(_ context.Context, name string) (service.UnitState, error) {
	if err := checkName(name); err != nil {
		return service.UnitState{}, err
	}
	m.mu.Lock()
	u := m.units[name]
	t := m.timers[name]
	_, known := m.fileOf(name)
	m.mu.Unlock()
	var st service.UnitState
	switch {
	case u != nil:
		st = u.snapshot()
	case t != nil:
		st = t.snapshot()
	case known && !isTemplate(name):
		st = service.UnitState{Name: name, Load: service.Loaded, Active: service.Inactive, Sub: subDead}
	default:
		return service.UnitState{Name: name, Load: service.NotFound, Active: service.Inactive, Sub: subDead}, nil
	}
	st.Enabled = m.enabled(name)
	return st, nil
}

// List reports every unit and instance the manager has, by name.
func (m *Manager) List(_ context.Context) ([]service.UnitState, error) {
	m.mu.Lock()
	units := make([]*unit, 0, len(m.units))
	for _, u := range m.units {
		units = append(units, u)
	}
	timers := make([]*timerUnit, 0, len(m.timers))
	for _, t := range m.timers {
		timers = append(timers, t)
	}
	m.mu.Unlock()
	// The links are read once for all units, not once per unit.
	enabled := map[string]bool{}
	for _, name := range m.enabledNames() {
		enabled[name] = true
	}
	out := make([]service.UnitState, 0, len(units)+len(timers))
	for _, u := range units {
		st := u.snapshot()
		st.Enabled = m.fileState(u.name, enabled[u.name])
		out = append(out, st)
	}
	for _, t := range timers {
		st := t.snapshot()
		st.Enabled = m.fileState(t.name, enabled[t.name])
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b service.UnitState) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Cat returns the unit's file as loaded (an instance's is its
// template's), its drop-ins after it as systemctl cat shows them.
func (m *Manager) Cat(_ context.Context, name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	src, ok := m.sourceOf(name)
	if !ok {
		return nil, fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	return bytes.Clone(src.text()), nil
}

// Close stops supervising and leaves every unit running: their records,
// FIFOs and sockets stay for the next manager. It waits for the units'
// goroutines and ends subscriptions.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		units := make([]*unit, 0, len(m.units))
		for _, u := range m.units {
			units = append(units, u)
		}
		timers := make([]*timerUnit, 0, len(m.timers))
		for _, t := range m.timers {
			timers = append(timers, t)
		}
		m.mu.Unlock()
		// Timers first, so that none starts a unit that is closing.
		for _, t := range timers {
			close(t.quit)
		}
		for _, t := range timers {
			<-t.done
		}
		for _, u := range units {
			close(u.quit)
		}
		for _, u := range units {
			<-u.done
		}
		m.shared.close()
		m.subsMu.Lock()
		for s := range m.subs {
			s.cancel()
		}
		m.subsMu.Unlock()
	})
	return nil
}

// Enable links the unit into the targets of its [Install] WantedBy= and
// RequiredBy= (UnitDir/TARGET.wants/NAME): an enabled unit is started
// when a manager starts.
func (m *Manager) Enable(_ context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if isTemplate(name) {
		return fmt.Errorf("unit %s: %w", name, service.ErrTemplate)
	}
	m.mu.Lock()
	src, ok := m.sourceOf(name)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	var wantedBy, requiredBy []string
	if isTimer(name) {
		def := m.defineTimerSource(name, src)
		if def.spec == nil {
			return fmt.Errorf("enable %s: %w", name, def.err)
		}
		wantedBy, requiredBy = def.spec.WantedBy, def.spec.RequiredBy
	} else {
		def := m.defineSource(name, src)
		if def.spec == nil {
			return fmt.Errorf("enable %s: %w", name, def.err)
		}
		wantedBy, requiredBy = def.spec.WantedBy, def.spec.RequiredBy
	}
	links := map[string][]string{".wants": wantedBy, ".requires": requiredBy}
	if len(wantedBy)+len(requiredBy) == 0 {
		return fmt.Errorf("enable %s: the unit has no [Install] WantedBy= or RequiredBy=", name)
	}
	for suffix, targets := range links {
		for _, target := range targets {
			if checkName(target) != nil {
				return fmt.Errorf("enable %s: bad target %q", name, target)
			}
			dir := filepath.Join(m.opts.UnitDir, target+suffix)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("enable %s: %w", name, err)
			}
			link := filepath.Join(dir, name)
			os.Remove(link)
			if err := os.Symlink(filepath.Join("..", unitFileName(name)), link); err != nil {
				return fmt.Errorf("enable %s: %w", name, err)
			}
		}
	}
	return nil
}

// Disable removes the unit's enablement links.
func (m *Manager) Disable(_ context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return m.unlinkInstall(name)
}

func (m *Manager) unlinkInstall(name string) error {
	links, err := m.installLinks(name)
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := os.Remove(l); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("disable %s: %w", name, err)
		}
	}
	return nil
}

func (m *Manager) installLinks(name string) ([]string, error) {
	var out []string
	for _, pattern := range []string{"*.wants", "*.requires"} {
		links, err := filepath.Glob(filepath.Join(m.opts.UnitDir, pattern, name))
		if err != nil {
			return nil, err
		}
		out = append(out, links...)
	}
	return out, nil
}

// enabledNames are the units linked into a target, once each.
func (m *Manager) enabledNames() []string {
	var names []string
	for _, pattern := range []string{"*.wants/*", "*.requires/*"} {
		links, _ := filepath.Glob(filepath.Join(m.opts.UnitDir, pattern))
		for _, l := range links {
			if name := filepath.Base(l); checkName(name) == nil && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// enabled is systemd's UnitFileState of name: enabled, disabled, or
// static for a unit without an [Install] section.
func (m *Manager) enabled(name string) string {
	links, _ := m.installLinks(name)
	return m.fileState(name, len(links) > 0)
}

// fileState is enabled's answer for a unit whose links were looked up.
func (m *Manager) fileState(name string, linked bool) string {
	if linked {
		return "enabled"
	}
	m.mu.Lock()
	content, ok := m.fileOf(name)
	m.mu.Unlock()
	if !ok {
		return ""
	}
	if !bytes.Contains(content, []byte("[Install]")) {
		return "static"
	}
	return "disabled"
}

// unitFileName is the file an enablement link points to: the unit's, or
// its template's for an instance.
func unitFileName(name string) string {
	if t, ok := templateOf(name); ok {
		return t
	}
	return name
}

// Subscribe sends every change of a unit's state until ctx ends or the
// manager closes. Changes are queued for a slow reader, never dropped.
func (m *Manager) Subscribe(ctx context.Context) (<-chan service.UnitState, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &subscriber{queue: service.NewStateQueue(), out: make(chan service.UnitState), cancel: cancel}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		cancel()
		return nil, errDetached
	}
	m.subsMu.Lock()
	m.subs[s] = true
	m.subsMu.Unlock()
	go func() {
		s.run(ctx)
		m.subsMu.Lock()
		delete(m.subs, s)
		m.subsMu.Unlock()
	}()
	return s.out, nil
}

func (m *Manager) broadcast(st service.UnitState) {
	m.noteTimers(st)
	if st.Load == service.NotFound && (st.Active == service.Inactive || st.Active == service.Failed) {
		// A unit whose file DaemonReload found gone, stopped now.
		if isTimer(st.Name) {
			go m.dropOrphanTimerNamed(st.Name)
		} else {
			go m.dropOrphan(st.Name)
		}
	}
	m.subsMu.Lock()
	defer m.subsMu.Unlock()
	for s := range m.subs {
		s.push(st)
	}
}

// subscriber queues states for one Subscribe channel.
type subscriber struct {
	queue  *service.StateQueue
	out    chan service.UnitState
	cancel context.CancelFunc
}

func (s *subscriber) push(st service.UnitState) { s.queue.Push(st) }

func (s *subscriber) run(ctx context.Context) {
	defer close(s.out)
	s.queue.Send(ctx, s.out)
}
