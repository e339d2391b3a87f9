package node

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"atoll.dev/atoll/api"
)

type funcPart struct {
	name string
	run  func(ctx context.Context) error
}

func (p funcPart) Name() string                  { return p.name }
func (p funcPart) Run(ctx context.Context) error { return p.run(ctx) }

func TestNextBackoff(t *testing.T) {
	tests := []struct {
		prev, ran, want time.Duration
	}{
		{0, 0, backoffMin},
		{backoffMin, time.Second, 2 * backoffMin},
		{20 * time.Second, time.Second, backoffMax},
		{backoffMax, time.Second, backoffMax},
		{backoffMax, backoffReset, backoffMin},
	}
	for _, tt := range tests {
		if got := nextBackoff(tt.prev, tt.ran); got != tt.want {
			t.Errorf("nextBackoff(%v, %v) = %v, want %v", tt.prev, tt.ran, got, tt.want)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func partByName(parts []api.PartStatus, name string) api.PartStatus {
	for _, p := range parts {
		if p.Name == name {
			return p
		}
	}
	return api.PartStatus{}
}

// A panicking part is restarted and reported; its neighbour keeps running.
func TestSupervisorRestartsFailingPartAndKeepsOthers(t *testing.T) {
	s := newSupervisor(slog.New(slog.DiscardHandler))
	var attempts atomic.Int32
	s.start(context.Background(), funcPart{"steady", func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	}})
	s.start(context.Background(), funcPart{"flaky", func(ctx context.Context) error {
		if attempts.Add(1) == 1 {
			panic("boom")
		}
		<-ctx.Done()
		return nil
	}})
	waitFor(t, "flaky to run again", func() bool {
		return partByName(s.parts(), "flaky").State == api.PartRunning && attempts.Load() == 2
	})
	flaky := partByName(s.parts(), "flaky")
	if flaky.Restarts != 1 || flaky.LastError != "panic: boom" {
		t.Errorf("flaky = %+v, want 1 restart with last error %q", flaky, "panic: boom")
	}
	if st := partByName(s.parts(), "steady"); st.State != api.PartRunning || st.Restarts != 0 {
		t.Errorf("steady = %+v, want running with no restart", st)
	}
	s.stop()
	for _, p := range s.parts() {
		if p.State != api.PartStopped {
			t.Errorf("after stop, part %s is %s, want %s", p.Name, p.State, api.PartStopped)
		}
	}
}

func TestSupervisorStopsInReverseOrder(t *testing.T) {
	s := newSupervisor(slog.New(slog.DiscardHandler))
	var stopped []string
	stopCh := make(chan string, 3)
	for _, name := range []string{"a", "b", "c"} {
		s.start(context.Background(), funcPart{name, func(ctx context.Context) error {
			<-ctx.Done()
			stopCh <- name
			return nil
		}})
	}
	waitFor(t, "all parts running", func() bool {
		for _, p := range s.parts() {
			if p.State != api.PartRunning {
				return false
			}
		}
		return true
	})
	s.stop()
	close(stopCh)
	for name := range stopCh {
		stopped = append(stopped, name)
	}
	if got, want := stopped, []string{"c", "b", "a"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("stop order = %v, want %v", got, want)
	}
}
