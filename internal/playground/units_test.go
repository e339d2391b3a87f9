package playground

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/client"
	"atoll.dev/atoll/internal/journal"
)

// A machine's daemon killed with -9 and started again: the unit it ran
// keeps running with the same main process, the new daemon adopts it, and
// its journal has every line, those written while no daemon ran included.
func TestUnitsSurviveKill9OfTheDaemon(t *testing.T) {
	c, opts := upCluster(t, UpOptions{Machines: 1})
	m := c.Machines[0]
	local := client.Local{RunDir: m.RunDir}
	ctx := context.Background()

	const file = "[Service]\nExecStart=/bin/sh -c 'i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done'\n"
	if _, err := local.LoadUnit(ctx, "ticker.service", []byte(file)); err != nil {
		t.Fatal(err)
	}
	st, err := local.UnitAction(ctx, "ticker.service", "start")
	if err != nil {
		t.Fatal(err)
	}
	pid := st.MainPID
	if st.Active != api.Active || pid == 0 {
		t.Fatalf("after start: %+v", st)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	before := waitTicks(t, local, 5)

	if err := c.Stop(opts, m.Name, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !running(pid) {
		t.Fatalf("the unit's main process %d died with the daemon", pid)
	}
	time.Sleep(500 * time.Millisecond) // ticks written while no daemon runs
	if err := c.Start(opts, m.Name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the restarted daemon adopts the unit", func(ctx context.Context) error {
		st, err := local.Unit(ctx, "ticker.service")
		if err != nil {
			return err
		}
		if st.Active != api.Active || st.MainPID != pid {
			return fmt.Errorf("state %s/%s, main PID %d; want active with %d", st.Active, st.Sub, st.MainPID, pid)
		}
		return nil
	})
	after := waitTicks(t, local, before+20)
	if after <= before {
		t.Fatalf("journal ends at tick %d after the restart, was %d before", after, before)
	}

	st, err = local.UnitAction(ctx, "ticker.service", "stop")
	if err != nil || st.Active != api.Inactive {
		t.Fatalf("stop after the adoption: %+v, %v", st, err)
	}
	if running(pid) {
		t.Errorf("main process %d still there after stop", pid)
	}
}

// running says whether a process runs: it exists and is not a zombie. An
// adopted unit's process is no child of the new daemon, so once killed it
// waits as a zombie for its new parent to reap it.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// waitTicks waits until the ticker's journal reaches tick n and checks
// that it holds every tick from 1 on, in order; it returns the last.
func waitTicks(t *testing.T, local client.Local, n int) int {
	t.Helper()
	last := 0
	eventually(t, fmt.Sprintf("tick %d in the journal", n), func(ctx context.Context) error {
		body, err := local.Journal(ctx, "ticker.service", client.JournalOptions{})
		if err != nil {
			return err
		}
		defer body.Close()
		last = 0
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			var e journal.Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				return fmt.Errorf("journal line %q: %v", sc.Text(), err)
			}
			tick, ok := strings.CutPrefix(e.Line, "tick ")
			if !ok {
				continue
			}
			i, err := strconv.Atoi(tick)
			if err != nil || i != last+1 {
				t.Fatalf("journal has %q after tick %d: a line was lost or repeated", e.Line, last)
			}
			last = i
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if last < n {
			return fmt.Errorf("journal at tick %d", last)
		}
		return nil
	})
	return last
}
