package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"atoll.dev/atoll/api"
)

// A Part is one long-running piece of the daemon. Run blocks until ctx ends
// (then it returns nil or ctx.Err()) or the part fails (then it returns the
// error, and the supervisor starts it again after a backoff).
type Part interface {
	Name() string
	Run(ctx context.Context) error
}

// Backoff bounds between restarts of a failing part. A part that ran for
// at least backoffReset before failing starts again from backoffMin.
const (
	backoffMin   = 500 * time.Millisecond
	backoffMax   = 30 * time.Second
	backoffReset = time.Minute
)

// nextBackoff doubles the previous delay within [backoffMin, backoffMax],
// and starts over when the part had been running long enough.
func nextBackoff(prev, ran time.Duration) time.Duration {
	if prev == 0 || ran >= backoffReset {
		return backoffMin
	}
	return min(2*prev, backoffMax)
}

// supervisor runs parts, each in its own goroutine, restarts those that
// fail, and stops them in the reverse of their start order.
type supervisor struct {
	log *slog.Logger
	now func() time.Time
	// backoff picks the delay before the next start; nextBackoff outside
	// tests.
	backoff func(prev, ran time.Duration) time.Duration

	mu     sync.Mutex
	status map[string]*api.PartStatus
	order  []string

	running []runningPart
}

type runningPart struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newSupervisor(log *slog.Logger) *supervisor {
	return &supervisor{
		log:     log,
		now:     time.Now,
		backoff: nextBackoff,
		status:  map[string]*api.PartStatus{},
	}
}

// start launches part under ctx. Call it in dependency order.
func (s *supervisor) start(ctx context.Context, part Part) {
	name := part.Name()
	s.mu.Lock()
	s.status[name] = &api.PartStatus{Name: name, State: api.PartStarting, Since: s.now()}
	s.order = append(s.order, name)
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.running = append(s.running, runningPart{cancel: cancel, done: done})
	go func() {
		defer close(done)
		s.loop(ctx, part)
	}()
}

func (s *supervisor) loop(ctx context.Context, part Part) {
	name := part.Name()
	var delay time.Duration
	for {
		started := s.now()
		s.set(name, func(st *api.PartStatus) { st.State = api.PartRunning; st.Since = started })
		err := runGuarded(ctx, part)
		if ctx.Err() != nil {
			s.set(name, func(st *api.PartStatus) { st.State = api.PartStopped; st.Since = s.now() })
			return
		}
		if err == nil {
			err = errors.New("stopped without an error")
		}
		delay = s.backoff(delay, s.now().Sub(started))
		s.log.Warn("part failed; restarting", "part", name, "err", err, "in", delay)
		s.set(name, func(st *api.PartStatus) {
			st.State = api.PartRestarting
			st.Restarts++
			st.LastError = err.Error()
			st.Since = s.now()
		})
		select {
		case <-ctx.Done():
			s.set(name, func(st *api.PartStatus) { st.State = api.PartStopped; st.Since = s.now() })
			return
		case <-time.After(delay):
		}
	}
}

// runGuarded runs the part, turning a panic into an error so that one
// broken part never takes the daemon down.
func runGuarded(ctx context.Context, part Part) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return part.Run(ctx)
}

func (s *supervisor) set(name string, update func(*api.PartStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	update(s.status[name])
}

// parts returns every part's status in start order.
func (s *supervisor) parts() []api.PartStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]api.PartStatus, 0, len(s.order))
	for _, name := range s.order {
		out = append(out, *s.status[name])
	}
	return out
}

// stop cancels the parts in reverse start order, waiting for each to end
// before stopping the next, so a part never outlives what it depends on.
func (s *supervisor) stop() {
	for i := len(s.running) - 1; i >= 0; i-- {
		s.running[i].cancel()
		<-s.running[i].done
	}
	s.running = nil
}
