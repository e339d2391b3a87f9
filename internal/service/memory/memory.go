// Package memory is a service.Manager that runs nothing: units are loaded,
// started and stopped in memory only, with systemd's states. It stands in
// for a machine's manager where what is measured or tested is what drives
// the manager (fleet's agent, in tests and in bench/fleet, which runs a
// thousand agents in one process); nothing in the atoll binary uses it.
package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/unit"
)

// Manager keeps units in memory.
type Manager struct {
	mu    sync.Mutex
	files map[string][]byte
	state map[string]service.UnitState
	subs  []*sub
	// Starts counts the successful starts of each unit.
	starts map[string]int
}

type sub struct {
	ctx context.Context
	q   *service.StateQueue
}

// New returns an empty manager.
func New() *Manager {
	return &Manager{files: map[string][]byte{}, state: map[string]service.UnitState{}, starts: map[string]int{}}
}

func (m *Manager) set(st service.UnitState) {
	st.Since = time.Now()
	m.state[st.Name] = st
	live := m.subs[:0]
	for _, s := range m.subs {
		if s.ctx.Err() == nil {
			s.q.Push(st)
			live = append(live, s)
		}
	}
	m.subs = live
}

func checkName(name string) (unit.Name, error) {
	n, err := unit.ParseName(name)
	if err != nil {
		return n, fmt.Errorf("unit %s: %w", name, err)
	}
	return n, nil
}

// Load keeps the file.
func (m *Manager) Load(_ context.Context, name string, content []byte) error {
	if _, err := checkName(name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[name] = slices.Clone(content)
	if _, ok := m.state[name]; !ok {
		m.set(service.UnitState{Name: name, Load: service.Loaded, Active: service.Inactive, Sub: "dead"})
	}
	return nil
}

// Unload forgets a unit that is not running.
func (m *Manager) Unload(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.state[name]
	if !ok {
		return fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	if st.Active == service.Active {
		return fmt.Errorf("unit %s: %w", name, service.ErrRunning)
	}
	delete(m.files, name)
	delete(m.state, name)
	m.set(service.UnitState{Name: name, Load: service.NotFound, Active: service.Inactive, Sub: "dead"})
	delete(m.state, name)
	return nil
}

func (m *Manager) transition(name string, active service.ActiveState, sub string) error {
	n, err := checkName(name)
	if err != nil {
		return err
	}
	if n.Template {
		return fmt.Errorf("unit %s: %w", name, service.ErrTemplate)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.state[name]
	if !ok {
		return fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	if active == service.Active && st.Active != service.Active {
		m.starts[name]++
	}
	st.Active, st.Sub = active, sub
	m.set(st)
	return nil
}

// Start makes a loaded unit active.
func (m *Manager) Start(_ context.Context, name string) error {
	return m.transition(name, service.Active, "running")
}

// Stop makes a unit inactive.
func (m *Manager) Stop(_ context.Context, name string) error {
	return m.transition(name, service.Inactive, "dead")
}

// Restart stops and starts a unit.
func (m *Manager) Restart(ctx context.Context, name string) error {
	if err := m.Stop(ctx, name); err != nil {
		return err
	}
	return m.Start(ctx, name)
}

// Reload does nothing to a known unit.
func (m *Manager) Reload(_ context.Context, name string) error {
	_, err := m.State(context.Background(), name)
	return err
}

// Enable and Disable do nothing to a known unit.
func (m *Manager) Enable(ctx context.Context, name string) error  { return m.Reload(ctx, name) }
func (m *Manager) Disable(ctx context.Context, name string) error { return m.Reload(ctx, name) }

// State reports a unit.
func (m *Manager) State(_ context.Context, name string) (service.UnitState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.state[name]
	if !ok {
		return service.UnitState{Name: name, Load: service.NotFound, Active: service.Inactive, Sub: "dead"},
			fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	return st, nil
}

// List reports every unit, by name.
func (m *Manager) List(context.Context) ([]service.UnitState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []service.UnitState
	for _, name := range slices.Sorted(maps.Keys(m.state)) {
		out = append(out, m.state[name])
	}
	return out, nil
}

// Subscribe sends every state change until ctx ends.
func (m *Manager) Subscribe(ctx context.Context) (<-chan service.UnitState, error) {
	q := service.NewStateQueue()
	m.mu.Lock()
	m.subs = append(m.subs, &sub{ctx: ctx, q: q})
	m.mu.Unlock()
	out := make(chan service.UnitState)
	go q.Send(ctx, out)
	return out, nil
}

// Cat returns a unit's file.
func (m *Manager) Cat(_ context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[name]
	if !ok {
		return nil, fmt.Errorf("unit %s: %w", name, service.ErrNotFound)
	}
	return slices.Clone(b), nil
}

// DaemonReload does nothing.
func (m *Manager) DaemonReload(context.Context) error { return nil }

// Close does nothing: the units "keep running".
func (m *Manager) Close() error { return nil }

// Starts reports how many times a unit was started.
func (m *Manager) Starts(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.starts[name]
}

// Running lists the active units, by name.
func (m *Manager) Running() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name, st := range m.state {
		if st.Active == service.Active {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

var _ service.Manager = (*Manager)(nil)
