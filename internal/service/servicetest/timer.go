package servicetest

import (
	"strings"
	"testing"
	"time"

	"atoll.dev/atoll/internal/service"
)

// A timer starts its service when it elapses; while it waits it shows when
// it will and what it starts (systemctl list-timers' columns), and once it
// will not elapse again it is active/elapsed with its last trigger. The
// clock is the real one here, both backends' (builtin's timer tests drive
// an injected clock).
func testTimer(t *testing.T, e *env) {
	svc := e.name("tick")
	timer := strings.TrimSuffix(svc, ".service") + ".timer"
	e.load(svc, "[Service]\nType=oneshot\nExecStart=/bin/echo fired\n")
	e.load(timer, "[Timer]\nOnActiveSec=2s\nAccuracySec=1ms\n")
	before := time.Now()
	e.start(timer)
	st := e.state(timer)
	if st.Active != service.Active || st.Triggers != svc {
		t.Fatalf("after start: %s/%s triggering %q, want active triggering %s", st.Active, st.Sub, st.Triggers, svc)
	}
	if st.Sub == "waiting" && st.NextElapse.Before(before) {
		t.Errorf("waiting, next elapse %v: want one after the start (%v)", st.NextElapse, before)
	}
	e.waitLine(svc, "fired")
	st = e.waitState(timer, "elapsed", func(st service.UnitState) bool { return st.Sub == "elapsed" })
	if st.Active != service.Active || !st.NextElapse.IsZero() {
		t.Errorf("elapsed: %s/%s next %v, want active and no next elapse", st.Active, st.Sub, st.NextElapse)
	}
	if st.LastTrigger.Before(before.Add(-time.Second)) {
		t.Errorf("last trigger %v, want one after the start (%v)", st.LastTrigger, before)
	}
	if n := e.count(svc, "fired"); n != 1 {
		t.Errorf("the service ran %d times, want once", n)
	}
	e.stop(timer)
	e.wantState(timer, service.Inactive, "dead")
}
