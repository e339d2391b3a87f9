package systemd

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

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	sdjournal "github.com/coreos/go-systemd/v22/journal"
	godbus "github.com/godbus/dbus/v5"

	"atoll.dev/atoll/internal/fsutil"
	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/unit"
)

// DefaultRuntimeDir is systemd's directory of runtime units, which it
// reads first and which is empty after a reboot.
const DefaultRuntimeDir = "/run/systemd/system"

// Options configure a Manager.
type Options struct {
	// RuntimeDir is where unit files are written for systemd to read:
	// DefaultRuntimeDir if empty.
	RuntimeDir string
	// StateDir holds the backend's own copy of every unit file it loaded
	// (StateDir/units) and the names of the units enabled
	// (StateDir/enabled), which New puts back into RuntimeDir after a
	// reboot. It is required (/var/lib/atoll/systemd on a machine).
	StateDir string
}

// Manager is service.Manager over systemd's D-Bus API. Its methods are
// safe for concurrent use.
type Manager struct {
	opts Options
	conn *sddbus.Conn
	// done ends watch, which hands PropertiesChanged signals to the
	// subscriptions.
	done chan struct{}

	mu     sync.Mutex
	files  map[string]unitFile // the unit files loaded, templates too
	subs   map[*subscription]bool
	closed bool
}

// unitFile is a unit file as loaded and fleet's hash of it.
type unitFile struct {
	content []byte
	hash    string
}

var _ service.Manager = (*Manager)(nil)

// New connects to systemd, through its private socket (as root) or else
// the system bus, and restores what StateDir holds: unit files missing
// from RuntimeDir (after a reboot) are written again, enabled units are
// linked again, systemd reloads, and the enabled units that are not
// active are started. New does not wait for those starts; their outcome
// is in the units' states and journals. ctx bounds the restore, not the
// Manager's life.
func New(ctx context.Context, opts Options) (*Manager, error) {
	if opts.StateDir == "" {
		return nil, errors.New("systemd: StateDir is required")
	}
	if opts.RuntimeDir == "" {
		opts.RuntimeDir = DefaultRuntimeDir
	}
	m := &Manager{opts: opts, files: map[string]unitFile{}, subs: map[*subscription]bool{}, done: make(chan struct{})}
	for _, dir := range []string{opts.RuntimeDir, m.stateUnits(), m.stateEnabled()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("systemd: %w", err)
		}
	}
	// godbus closes a connection when the context it was made with
	// ends: the connection lives until Close, not until ctx ends.
	connCtx := context.WithoutCancel(ctx)
	conn, err := sddbus.NewSystemdConnectionContext(connCtx)
	if err != nil {
		var busErr error
		if conn, busErr = sddbus.NewSystemConnectionContext(connCtx); busErr != nil {
			return nil, fmt.Errorf("systemd: connect: %w", errors.Join(err, busErr))
		}
		// On the bus, systemd signals to its subscribers only; on its
		// private socket, to every connection.
		if err := conn.Subscribe(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("systemd: subscribe: %w", err)
		}
	}
	m.conn = conn
	updates := make(chan *sddbus.PropertiesUpdate, updateBuffer)
	// go-systemd reports updates it had to drop here; a subscriber then
	// misses a change, which the next one makes good.
	dropped := make(chan error, 1)
	conn.SetPropertiesSubscriber(updates, dropped)
	if err := m.restore(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	go m.watch(updates, dropped, m.done)
	return m, nil
}

// stateReadTimeout bounds the reads of a unit's state that subscriptions
// make.
const stateReadTimeout = 10 * time.Second

func (m *Manager) stateUnits() string   { return filepath.Join(m.opts.StateDir, "units") }
func (m *Manager) stateEnabled() string { return filepath.Join(m.opts.StateDir, "enabled") }
func (m *Manager) runtimePath(name string) string {
	return filepath.Join(m.opts.RuntimeDir, name)
}

// restore reads StateDir and brings systemd in line with it.
func (m *Manager) restore(ctx context.Context) error {
	entries, err := os.ReadDir(m.stateUnits())
	if err != nil {
		return fmt.Errorf("systemd: %w", err)
	}
	reload := false
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || checkName(name) != nil {
			continue
		}
		content, err := os.ReadFile(filepath.Join(m.stateUnits(), name))
		if err != nil {
			return fmt.Errorf("systemd: %w", err)
		}
		f, err := parseFile(name, content)
		if err != nil {
			return fmt.Errorf("systemd: %w", err)
		}
		m.files[name] = f
		if onDisk, err := os.ReadFile(m.runtimePath(name)); err != nil || !bytes.Equal(onDisk, content) {
			if err := fsutil.WriteFileAtomic(m.runtimePath(name), content, 0o644); err != nil {
				return fmt.Errorf("systemd: restore %s: %w", name, err)
			}
			reload = true
		}
	}
	enabled, err := m.enabledNames()
	if err != nil {
		return err
	}
	if len(enabled) > 0 {
		// Idempotent: the links are made again only where they are
		// missing.
		if _, _, err := m.conn.EnableUnitFilesContext(ctx, enabled, true, true); err != nil {
			return fmt.Errorf("systemd: enable %s: %w", strings.Join(enabled, " "), err)
		}
		reload = true
	}
	if reload {
		if err := m.conn.ReloadContext(ctx); err != nil {
			return fmt.Errorf("systemd: daemon-reload: %w", err)
		}
	}
	for _, name := range enabled {
		if _, err := m.conn.StartUnitContext(ctx, name, "replace", nil); err != nil {
			// Said where `atoll unit journal` reads the unit's log.
			sdjournal.Send(fmt.Sprintf("Cannot start enabled unit %s: %v", name, err), sdjournal.PriErr,
				map[string]string{"UNIT": name, "SYSLOG_IDENTIFIER": "atoll"})
		}
	}
	return nil
}

// enabledNames are the units StateDir records as enabled, sorted.
func (m *Manager) enabledNames() ([]string, error) {
	entries, err := os.ReadDir(m.stateEnabled())
	if err != nil {
		return nil, fmt.Errorf("systemd: %w", err)
	}
	var names []string
	for _, e := range entries {
		if checkName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (m *Manager) isEnabled(name string) bool {
	_, err := os.Stat(filepath.Join(m.stateEnabled(), name))
	return err == nil
}

// checkName refuses what is not a unit name (which also keeps a name
// from being a path).
func checkName(name string) error {
	_, err := unit.ParseName(name)
	return err
}

// parseFile reads a unit file as package unit does, for its hash.
func parseFile(name string, content []byte) (unitFile, error) {
	f, _, err := unit.Parse(name, bytes.NewReader(content))
	if err != nil {
		return unitFile{}, err
	}
	return unitFile{content: bytes.Clone(content), hash: f.Hash().String()}, nil
}

// fileOf is the file a unit runs from, its own or its template's, and
// whether this backend loaded it.
func (m *Manager) fileOf(name string) (unitFile, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.files[name]; ok {
		return f, true
	}
	if t := templateOf(name); t != "" {
		f, ok := m.files[t]
		return f, ok
	}
	return unitFile{}, false
}

// templateOf is the template of an instance, "" for any other name.
func templateOf(name string) string {
	n, err := unit.ParseName(name)
	if err != nil || !n.IsInstance() {
		return ""
	}
	return n.TemplateName()
}

func isTemplate(name string) bool {
	n, err := unit.ParseName(name)
	return err == nil && n.Template
}

// ours checks that name is a unit this backend can act on: loaded by it,
// or an instance of a template it loaded.
func (m *Manager) ours(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if isTemplate(name) {
		return fmt.Errorf("unit %s: %w", name, service.ErrTemplate)
	}
	if _, ok := m.fileOf(name); !ok {
		return fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	return nil
}

func (m *Manager) checkOpen() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	return nil
}

var errClosed = errors.New("systemd: manager closed")

// Load writes the unit file to RuntimeDir and has systemd reload. A unit
// that systemd then cannot load (a bad setting, a syntax it refuses) is
// taken back and refused with systemd's reason. The file is kept in
// StateDir once systemd took it.
func (m *Manager) Load(ctx context.Context, name string, content []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := m.checkOpen(); err != nil {
		return err
	}
	f, err := parseFile(name, content)
	if err != nil {
		return fmt.Errorf("load %s: %w", name, err)
	}
	previous, hadPrevious := m.ownFile(name)
	if err := fsutil.WriteFileAtomic(m.runtimePath(name), content, 0o644); err != nil {
		return fmt.Errorf("load %s: %w", name, err)
	}
	if err := m.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("load %s: daemon-reload: %w", name, err)
	}
	if !isTemplate(name) {
		if reason := m.loadProblem(ctx, name); reason != "" {
			if hadPrevious {
				err = fsutil.WriteFileAtomic(m.runtimePath(name), previous.content, 0o644)
			} else {
				err = os.Remove(m.runtimePath(name))
			}
			if err == nil {
				err = m.conn.ReloadContext(ctx)
			}
			if err != nil {
				return fmt.Errorf("load %s: systemd refused it (%s), and taking it back failed: %w", name, reason, err)
			}
			return fmt.Errorf("load %s: systemd refused it: %s", name, reason)
		}
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(m.stateUnits(), name), content, 0o644); err != nil {
		return fmt.Errorf("load %s: %w", name, err)
	}
	m.mu.Lock()
	m.files[name] = f
	m.mu.Unlock()
	return nil
}

// ownFile is the file loaded under name itself, not a template's.
func (m *Manager) ownFile(name string) (unitFile, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[name]
	return f, ok
}

// loadProblem is why systemd could not load a unit, "" if it could. A
// masked unit (an empty file) is not a problem.
func (m *Manager) loadProblem(ctx context.Context, name string) string {
	props, err := m.conn.GetUnitPropertiesContext(ctx, name)
	if err != nil {
		return err.Error()
	}
	load, _ := props["LoadState"].(string)
	switch service.LoadState(load) {
	case service.Loaded, service.Masked:
		return ""
	}
	reason := load
	if le, ok := props["LoadError"].([]any); ok && len(le) == 2 {
		if msg, _ := le[1].(string); msg != "" {
			reason += ": " + msg
		}
	}
	return reason
}

// Unload forgets a unit that is not running: its files, its enablement.
// A template goes with its instances, none of which may run.
func (m *Manager) Unload(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := m.checkOpen(); err != nil {
		return err
	}
	if _, ok := m.ownFile(name); !ok {
		return fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	victims := []string{name}
	if isTemplate(name) {
		instances, err := m.instances(ctx, name)
		if err != nil {
			return fmt.Errorf("unload %s: %w", name, err)
		}
		victims = instances
	}
	for _, v := range victims {
		st, err := m.State(ctx, v)
		if err != nil {
			return fmt.Errorf("unload %s: %w", name, err)
		}
		if st.Active != service.Inactive && st.Active != service.Failed {
			return fmt.Errorf("unit %s: %w", v, service.ErrRunning)
		}
	}
	enabled, err := m.enabledNames()
	if err != nil {
		return err
	}
	var disable []string
	for _, e := range enabled {
		if e == name || isTemplate(name) && templateOf(e) == name {
			disable = append(disable, e)
		}
	}
	if len(disable) > 0 {
		if _, err := m.conn.DisableUnitFilesContext(ctx, disable, true); err != nil {
			return fmt.Errorf("unload %s: disable: %w", name, err)
		}
		for _, e := range disable {
			if err := os.Remove(filepath.Join(m.stateEnabled(), e)); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("unload %s: %w", name, err)
			}
		}
	}
	for _, path := range []string{m.runtimePath(name), filepath.Join(m.stateUnits(), name)} {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("unload %s: %w", name, err)
		}
	}
	m.mu.Lock()
	delete(m.files, name)
	m.mu.Unlock()
	if err := m.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("unload %s: daemon-reload: %w", name, err)
	}
	// A failed unit stays in systemd's memory until its failure is
	// reset; without a file it then goes.
	for _, v := range victims {
		m.conn.ResetFailedUnitContext(ctx, v)
	}
	return nil
}

// instances are the instances of template that systemd has loaded.
func (m *Manager) instances(ctx context.Context, template string) ([]string, error) {
	n, err := unit.ParseName(template)
	if err != nil {
		return nil, err
	}
	units, err := m.conn.ListUnitsByPatternsContext(ctx, nil, []string{globEscape(n.Prefix) + "@*." + n.Type})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, u := range units {
		if templateOf(u.Name) == template {
			names = append(names, u.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// globEscape escapes what fnmatch would read as a pattern in a unit
// name: only the backslash of \xNN escapes can occur.
func globEscape(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }

// Start starts a unit and returns once its start job is done: the unit
// is active (a oneshot without RemainAfterExit=: has run), or was
// skipped by a condition, or the job failed (an error wrapping
// service.ErrFailed). Type=simple units count as started once forked, as
// in systemd.
func (m *Manager) Start(ctx context.Context, name string) error {
	return m.job(ctx, "start", name, m.conn.StartUnitContext)
}

// Stop stops a unit, and the units that Requires=, BindsTo= or PartOf=
// it, and returns once its stop job is done.
func (m *Manager) Stop(ctx context.Context, name string) error {
	return m.job(ctx, "stop", name, m.conn.StopUnitContext)
}

// Restart restarts a unit with its file as loaded last.
func (m *Manager) Restart(ctx context.Context, name string) error {
	return m.job(ctx, "restart", name, m.conn.RestartUnitContext)
}

// Reload runs the unit's ExecReload=.
func (m *Manager) Reload(ctx context.Context, name string) error {
	return m.job(ctx, "reload", name, m.conn.ReloadUnitContext)
}

type jobCall func(ctx context.Context, name, mode string, ch chan<- string) (int, error)

// job queues a job in "replace" mode, as systemctl does, and waits for
// its result.
func (m *Manager) job(ctx context.Context, verb, name string, call jobCall) error {
	if err := m.ours(name); err != nil {
		return err
	}
	if err := m.checkOpen(); err != nil {
		return err
	}
	done := make(chan string, 1)
	if _, err := call(ctx, name, "replace", done); err != nil {
		return fmt.Errorf("%s %s: %w", verb, name, mapError(err))
	}
	var result string
	select {
	case result = <-done:
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", verb, name, ctx.Err())
	}
	if result == "done" {
		return nil
	}
	unitResult := ""
	if st, err := m.State(ctx, name); err == nil {
		unitResult = st.Result
	}
	return fmt.Errorf("%s %s: job %s, unit result %s: %w", verb, name, result, unitResult, service.ErrFailed)
}

// mapError turns systemd's D-Bus errors into the service package's.
func mapError(err error) error {
	name := ""
	var value godbus.Error
	var ptr *godbus.Error
	switch {
	case errors.As(err, &value):
		name = value.Name
	case errors.As(err, &ptr):
		name = ptr.Name
	}
	switch name {
	case "org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.systemd1.LoadFailed":
		return fmt.Errorf("%w: %w", service.ErrNotFound, err)
	}
	return err
}

// Enable links the unit into the targets of its [Install] section, as
// `systemctl enable --runtime` does, and records it in StateDir so that
// New links and starts it again after a reboot.
func (m *Manager) Enable(ctx context.Context, name string) error {
	if err := m.ours(name); err != nil {
		return err
	}
	if err := m.checkOpen(); err != nil {
		return err
	}
	carries, _, err := m.conn.EnableUnitFilesContext(ctx, []string{name}, true, true)
	if err != nil {
		return fmt.Errorf("enable %s: %w", name, mapError(err))
	}
	if !carries {
		return fmt.Errorf("enable %s: the unit has no [Install] WantedBy= or RequiredBy=", name)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(m.stateEnabled(), name), nil, 0o644); err != nil {
		return fmt.Errorf("enable %s: %w", name, err)
	}
	if err := m.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("enable %s: daemon-reload: %w", name, err)
	}
	return nil
}

// Disable removes the unit's links and its record in StateDir.
func (m *Manager) Disable(ctx context.Context, name string) error {
	if err := m.ours(name); err != nil {
		return err
	}
	if err := m.checkOpen(); err != nil {
		return err
	}
	if _, err := m.conn.DisableUnitFilesContext(ctx, []string{name}, true); err != nil {
		return fmt.Errorf("disable %s: %w", name, mapError(err))
	}
	if err := os.Remove(filepath.Join(m.stateEnabled(), name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("disable %s: %w", name, err)
	}
	if err := m.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("disable %s: daemon-reload: %w", name, err)
	}
	return nil
}

// DaemonReload has systemd read its unit files again, as `systemctl
// daemon-reload`.
func (m *Manager) DaemonReload(ctx context.Context) error {
	if err := m.checkOpen(); err != nil {
		return err
	}
	if err := m.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("systemd: daemon-reload: %w", err)
	}
	return nil
}

// Cat returns the unit file as loaded followed by its drop-ins, each
// under a "# PATH" line as `systemctl cat` shows them.
func (m *Manager) Cat(ctx context.Context, name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, ok := m.fileOf(name)
	if !ok {
		return nil, fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	out := bytes.Clone(f.content)
	if isTemplate(name) {
		return out, nil
	}
	prop, err := m.conn.GetUnitPropertyContext(ctx, name, "DropInPaths")
	if err != nil {
		return nil, fmt.Errorf("cat %s: %w", name, mapError(err))
	}
	paths, _ := prop.Value.Value().([]string)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("cat %s: %w", name, err)
		}
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, "\n# "+p+"\n"...)
		out = append(out, data...)
	}
	return out, nil
}

// Close closes the connections to systemd and ends subscriptions. The
// units run on: systemd runs them, not this process.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	subs := make([]*subscription, 0, len(m.subs))
	for s := range m.subs {
		subs = append(subs, s)
	}
	m.mu.Unlock()
	for _, s := range subs {
		s.cancel()
	}
	close(m.done)
	m.conn.Close()
	return nil
}
