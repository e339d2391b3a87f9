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
	// ParseUnit reads a unit file into options, specifiers expanded for
	// name (an instance's name for a template's file). Nil reads it with
	// go-systemd's sdunit.Deserialize, which expands no specifier.
	ParseUnit func(name string, content []byte) ([]*sdunit.UnitOption, error)
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

// defaultPath is the PATH systemd gives system services.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"

// Manager is the builtin supervisor: service.Manager for service units,
// each run by a goroutine of its own in a cgroup of its own.
type Manager struct {
	opts   Options
	logger Logger
	clock  Clock
	env    []string
	parse  func(string, []byte) ([]*sdunit.UnitOption, error)

	mu     sync.Mutex
	files  map[string][]byte // unit and template files by name
	units  map[string]*unit  // units and instances
	closed bool

	subsMu    sync.Mutex // apart from mu: units publish with mu held
	subs      map[*subscriber]bool
	closeOnce sync.Once
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
		subs:   map[*subscriber]bool{},
	}
	if m.logger == nil {
		m.logger = discardLogger{}
	}
	if m.clock == nil {
		m.clock = realClock{}
	}
	if m.env == nil {
		m.env = []string{defaultPath}
	}
	if m.parse == nil {
		m.parse = func(_ string, content []byte) ([]*sdunit.UnitOption, error) {
			return sdunit.DeserializeOptions(bytes.NewReader(content))
		}
	}
	for _, dir := range []string{opts.UnitDir, m.unitsDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("builtin: %w", err)
		}
	}
	entries, err := os.ReadDir(opts.UnitDir)
	if err != nil {
		return nil, fmt.Errorf("builtin: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || checkName(e.Name()) != nil {
			continue
		}
		content, err := os.ReadFile(filepath.Join(opts.UnitDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("builtin: %w", err)
		}
		m.files[e.Name()] = content
	}
	records, err := readRecords(m.unitsDir())
	if err != nil {
		return nil, fmt.Errorf("builtin: %w", err)
	}
	for name, content := range m.files {
		if !isTemplate(name) {
			m.units[name] = m.newUnit(name, m.define(name, content))
		}
	}
	for name, rec := range records {
		if checkName(name) != nil || isTemplate(name) {
			continue
		}
		u := m.units[name]
		if u == nil {
			// A unit unloaded, or an instance: its file is its
			// template's, or only the record's now.
			content, ok := m.fileOf(name)
			if !ok {
				content = rec.Unit
			}
			u = m.newUnit(name, m.define(name, content))
			m.units[name] = u
		}
		u.adopt(rec)
	}
	for _, u := range m.units {
		if u.snapshot().Name == "" {
			u.publish()
		}
		go u.loop()
	}
	// Enabled units, instances included, that do not run yet.
	for _, name := range m.enabledNames() {
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
		def.load, def.err = service.LoadError, errors.New("the builtin manager runs .service units only")
		return def
	}
	if len(bytes.TrimSpace(content)) == 0 {
		def.load, def.err = service.Masked, errors.New("unit is masked")
		return def
	}
	opts, err := m.parse(name, content)
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
	def := m.define(name, content)
	if def.spec == nil && def.load != service.Masked {
		return fmt.Errorf("load %s: %w", name, def.err)
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
		u   *unit
		def *definition
	}
	var updates []update
	if isTemplate(name) {
		for iname, u := range m.units {
			if t, _ := templateOf(iname); t == name {
				if _, own := m.files[iname]; !own {
					updates = append(updates, update{u, m.define(iname, content)})
				}
			}
		}
	} else if u := m.units[name]; u != nil {
		updates = append(updates, update{u, def})
	} else {
		u := m.newUnit(name, def)
		m.units[name] = u
		u.publish()
		go u.loop()
	}
	m.mu.Unlock()
	for _, up := range updates {
		if err := up.u.ask(ctx, "load", up.def); err != nil {
			return fmt.Errorf("load %s: %w", up.u.name, err)
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
	m.mu.Lock()
	if _, ok := m.files[name]; !ok && m.units[name] == nil {
		m.mu.Unlock()
		return fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	var victims []*unit
	for uname, u := range m.units {
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
		if a := activeState(u.snapshot().Sub); a != service.Inactive && a != service.Failed {
			return fmt.Errorf("unit %s: %w", u.name, service.ErrRunning)
		}
	}
	for _, u := range victims {
		if err := u.ask(ctx, "unload", nil); err != nil {
			return err
		}
		m.mu.Lock()
		delete(m.units, u.name)
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

// unitFor is the unit named name, an instance of a loaded template made
// on first use.
func (m *Manager) unitFor(name string) (*unit, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if isTemplate(name) {
		return nil, fmt.Errorf("unit %s: %w", name, service.ErrTemplate)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errDetached
	}
	if u := m.units[name]; u != nil {
		return u, nil
	}
	content, ok := m.fileOf(name)
	if !ok {
		return nil, fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	u := m.newUnit(name, m.define(name, content))
	m.units[name] = u
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
	return m.startTransaction(ctx, name)
}

// Stop stops a unit, after the active units that depend on it
// (Requires=, BindsTo=, PartOf=), and returns once it is inactive or
// failed, or ctx ends.
func (m *Manager) Stop(ctx context.Context, name string) error {
	_, err := m.stopTransaction(ctx, name)
	return err
}

// Restart stops a unit if it runs, then starts it with its file as
// loaded last; the units depending on it restart with it.
func (m *Manager) Restart(ctx context.Context, name string) error {
	return m.restartTransaction(ctx, name)
}

// Reload runs the unit's ExecReload=.
func (m *Manager) Reload(ctx context.Context, name string) error { return m.act(ctx, name, "reload") }

// State reports one unit; a name never loaded reads not-found.
func (m *Manager) State(_ context.Context, name string) (service.UnitState, error) {
	if err := checkName(name); err != nil {
		return service.UnitState{}, err
	}
	m.mu.Lock()
	u := m.units[name]
	_, known := m.fileOf(name)
	m.mu.Unlock()
	var st service.UnitState
	switch {
	case u != nil:
		st = u.snapshot()
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
	m.mu.Unlock()
	// The links are read once for all units, not once per unit.
	enabled := map[string]bool{}
	for _, name := range m.enabledNames() {
		enabled[name] = true
	}
	out := make([]service.UnitState, 0, len(units))
	for _, u := range units {
		st := u.snapshot()
		st.Enabled = m.fileState(u.name, enabled[u.name])
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b service.UnitState) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Cat returns the unit's file as loaded (an instance's is its template's).
func (m *Manager) Cat(_ context.Context, name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	content, ok := m.fileOf(name)
	if !ok {
		return nil, fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	return bytes.Clone(content), nil
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
		m.mu.Unlock()
		for _, u := range units {
			close(u.quit)
		}
		for _, u := range units {
			<-u.done
		}
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
	content, ok := m.fileOf(name)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	def := m.define(name, content)
	if def.spec == nil {
		return fmt.Errorf("enable %s: %w", name, def.err)
	}
	links := map[string][]string{".wants": def.spec.WantedBy, ".requires": def.spec.RequiredBy}
	if len(def.spec.WantedBy)+len(def.spec.RequiredBy) == 0 {
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
	s := &subscriber{out: make(chan service.UnitState), wake: make(chan struct{}, 1), cancel: cancel}
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
	m.subsMu.Lock()
	defer m.subsMu.Unlock()
	for s := range m.subs {
		s.push(st)
	}
}

// subscriber queues states for one Subscribe channel.
type subscriber struct {
	mu     sync.Mutex
	queue  []service.UnitState
	wake   chan struct{}
	out    chan service.UnitState
	cancel context.CancelFunc
}

func (s *subscriber) push(st service.UnitState) {
	s.mu.Lock()
	s.queue = append(s.queue, st)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) run(ctx context.Context) {
	defer close(s.out)
	for {
		s.mu.Lock()
		var next *service.UnitState
		if len(s.queue) > 0 {
			next = &s.queue[0]
			s.queue = s.queue[1:]
		}
		s.mu.Unlock()
		if next == nil {
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case s.out <- *next:
		case <-ctx.Done():
			return
		}
	}
}
