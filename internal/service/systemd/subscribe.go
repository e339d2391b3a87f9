package systemd

import (
	"context"
	"sync"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"atoll.dev/atoll/internal/service"
)

// Subscriptions follow systemd's PropertiesChanged signals, which
// go-systemd hands over for the Unit interface (SetPropertiesSubscriber).
// systemd sends that interface's signal at every change of a unit, with
// the new ActiveState, SubState and the like, together with one for the
// unit's type (Service), so a signal for the Unit interface is the cue:
// its values are taken as they are, in order, and the Service interface's
// (MainPID, Result, StatusText...) are read when it comes. What signals
// never carry (Description, UnitFileState) is read once per unit and
// subscription.

// updateBuffer holds the signals of a burst (a daemon-reload sends one
// per unit): go-systemd drops an update that finds the channel full.
const updateBuffer = 4096

// watch takes the updates go-systemd hands over and passes those of this
// backend's units to the subscriptions, until done is closed.
func (m *Manager) watch(updates <-chan *sddbus.PropertiesUpdate, dropped <-chan error, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-dropped:
		case u := <-updates:
			if u == nil || isTemplate(u.UnitName) {
				continue
			}
			if _, ours := m.fileOf(u.UnitName); !ours {
				continue
			}
			props := make(map[string]any, len(u.Changed))
			for k, v := range u.Changed {
				props[k] = v.Value()
			}
			m.mu.Lock()
			subs := make([]*subscription, 0, len(m.subs))
			for s := range m.subs {
				subs = append(subs, s)
			}
			m.mu.Unlock()
			if len(subs) == 0 {
				continue
			}
			var typeProps map[string]any
			if iface := typeInterface(u.UnitName); iface != "" {
				ctx, cancel := context.WithTimeout(context.Background(), stateReadTimeout)
				typeProps, _ = m.conn.GetUnitTypePropertiesContext(ctx, u.UnitName, iface)
				cancel()
			}
			for _, s := range subs {
				s.update(u.UnitName, props, typeProps)
			}
		}
	}
}

// A subscription turns the updates of the units into UnitStates for one
// Subscribe channel, queued for a slow reader.
type subscription struct {
	m      *Manager
	cancel context.CancelFunc

	mu     sync.Mutex
	states map[string]service.UnitState // per unit: the state sent last
	queue  *service.StateQueue
}

// update applies one signal's values, and those of the unit type's
// interface as read, to the unit's state, and queues it if it changed.
func (s *subscription) update(name string, unitProps, typeProps map[string]any) {
	s.mu.Lock()
	prev, known := s.states[name]
	s.mu.Unlock()
	st := prev
	if !known {
		// Description and UnitFileState come in no signal.
		ctx, cancel := context.WithTimeout(context.Background(), stateReadTimeout)
		full, err := s.m.State(ctx, name)
		cancel()
		if err != nil {
			return
		}
		st = full
	}
	applyUnitProperties(&st, unitProps)
	applyTypeProperties(&st, typeProps)
	if f, ok := s.m.fileOf(name); ok {
		st.Hash = f.hash
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states[name] = st
	if known && st == prev {
		return
	}
	s.queue.Push(st)
}

// Subscribe sends every change of the state of this backend's units
// (and of its templates' instances) until ctx ends or the manager
// closes, then closes the channel. Changes are queued for a slow reader,
// never dropped.
func (m *Manager) Subscribe(ctx context.Context) (<-chan service.UnitState, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &subscription{m: m, cancel: cancel, states: map[string]service.UnitState{}, queue: service.NewStateQueue()}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		cancel()
		return nil, errClosed
	}
	m.subs[s] = true
	m.mu.Unlock()
	out := make(chan service.UnitState)
	go s.run(ctx, out)
	return out, nil
}

func (s *subscription) run(ctx context.Context, out chan<- service.UnitState) {
	defer func() {
		s.cancel()
		s.m.mu.Lock()
		delete(s.m.subs, s)
		s.m.mu.Unlock()
		close(out)
	}()
	s.queue.Send(ctx, out)
}
