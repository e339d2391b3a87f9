package engine_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/fleet/engine"
	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/store/storetest"
	"atoll.dev/atoll/internal/unit"
)

type harness struct {
	t   *testing.T
	reg *registry.Registry
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	opts := storetest.ClusterOptions(t, 1)
	m := storetest.Start(t, opts[0])
	storetest.WaitReady(t, m)
	return &harness{t: t, reg: registry.New(m.Client(), "/test/fleet")}
}

// machine registers a machine on a lease of its own and returns the lease.
func (h *harness) machine(id string, metadata map[string]string) clientv3.LeaseID {
	h.t.Helper()
	ctx := context.Background()
	lease, err := h.reg.Client().Grant(ctx, 600)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.reg.Register(ctx, lease.ID, registry.Machine{ID: id, Metadata: metadata}); err != nil {
		h.t.Fatal(err)
	}
	return lease.ID
}

func (h *harness) submit(name, text string, desired registry.DesiredState) {
	h.t.Helper()
	f, _, err := unit.Parse(name, strings.NewReader(text))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.reg.Submit(context.Background(), f, desired); err != nil {
		h.t.Fatal(err)
	}
}

// engine runs a candidate until the test ends or the returned stop is called.
func (h *harness) engine(id string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		engine.Run(ctx, engine.Options{Registry: h.reg, MachineID: id, SessionTTL: 2 * time.Second, Resync: time.Second})
	}()
	stop = func() { cancel(); <-done }
	h.t.Cleanup(stop)
	return stop
}

// schedule is unit -> sorted machines.
func (h *harness) schedule() map[string][]string {
	h.t.Helper()
	s, err := h.reg.Snapshot(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, p := range s.Schedule {
		out[p.Unit] = append(out[p.Unit], p.Machine)
	}
	return out
}

func (h *harness) unplaced() map[string]registry.Unplaced {
	s, err := h.reg.Snapshot(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return s.Unplaced
}

// eventually polls cond until it holds; the test's own timeout bounds it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 0 && i%500 == 0 {
			t.Logf("still waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const service = "[Service]\nExecStart=/bin/sleep 1000\n"

func TestSpreadsUnitsLeastLoaded(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"m1", "m2", "m3"} {
		h.machine(id, nil)
	}
	for i := 1; i <= 6; i++ {
		h.submit(fmt.Sprintf("web@%d.service", i), service, registry.Launched)
	}
	h.engine("m1")
	eventually(t, "6 units placed", func() bool { return len(h.schedule()) == 6 })
	load := map[string]int{}
	for u, ms := range h.schedule() {
		if len(ms) != 1 {
			t.Fatalf("%s on %v", u, ms)
		}
		load[ms[0]]++
	}
	if load["m1"] != 2 || load["m2"] != 2 || load["m3"] != 2 {
		t.Fatalf("load %v, want 2 each", load)
	}
}

// A machine whose lease expires loses its units to the others; nothing
// else moves.
func TestMovesUnitsOfADeadMachineOnly(t *testing.T) {
	h := newHarness(t)
	leases := map[string]clientv3.LeaseID{}
	for _, id := range []string{"m1", "m2", "m3"} {
		leases[id] = h.machine(id, nil)
	}
	for i := 1; i <= 6; i++ {
		h.submit(fmt.Sprintf("web@%d.service", i), service, registry.Launched)
	}
	h.engine("m1")
	eventually(t, "6 units placed", func() bool { return len(h.schedule()) == 6 })
	before := h.schedule()
	if _, err := h.reg.Client().Revoke(context.Background(), leases["m2"]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "m2's units moved", func() bool {
		for _, ms := range h.schedule() {
			if ms[0] == "m2" {
				return false
			}
		}
		return len(h.schedule()) == 6
	})
	after := h.schedule()
	for u, ms := range before {
		if ms[0] != "m2" && after[u][0] != ms[0] {
			t.Errorf("%s moved from %s to %s though its machine lives", u, ms[0], after[u][0])
		}
	}
}

// A new leader, after the old one stops, reads the schedule and moves
// nothing.
func TestLeaderChangeMovesNothing(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"m1", "m2", "m3"} {
		h.machine(id, nil)
	}
	for i := 1; i <= 9; i++ {
		h.submit(fmt.Sprintf("web@%d.service", i), service, registry.Launched)
	}
	stop1 := h.engine("m1")
	eventually(t, "9 units placed", func() bool { return len(h.schedule()) == 9 })
	h.engine("m2")
	before := h.schedule()
	stop1()
	// The new leader places a new unit, so it has reconciled at least once.
	h.submit("late.service", service, registry.Launched)
	eventually(t, "the new leader placing late.service", func() bool { return len(h.schedule()["late.service"]) == 1 })
	after := h.schedule()
	delete(after, "late.service")
	if !maps.EqualFunc(before, after, slices.Equal) {
		t.Fatalf("schedule changed across leaders:\nbefore %v\nafter  %v", before, after)
	}
}

func TestUnplaceableSaysWhyAndIsPlacedOnceItFits(t *testing.T) {
	h := newHarness(t)
	h.machine("m1", map[string]string{"region": "eu"})
	h.machine("m2", map[string]string{"region": "eu"})
	h.submit("us.service", service+"[X-Fleet]\nMachineMetadata=region=us\n", registry.Launched)
	h.engine("m1")
	eventually(t, "an unplaced record", func() bool { return h.unplaced()["us.service"].Reason != "" })
	u := h.unplaced()["us.service"]
	if u.Rejected["MachineMetadata"] != 2 || !strings.Contains(u.Reason, "MachineMetadata") {
		t.Fatalf("unplaced %+v", u)
	}
	h.machine("m3", map[string]string{"region": "us"})
	eventually(t, "us.service placed on m3", func() bool { return slices.Equal(h.schedule()["us.service"], []string{"m3"}) })
	eventually(t, "the record cleared", func() bool { _, ok := h.unplaced()["us.service"]; return !ok })
}

func TestGlobalUnitsAndDesiredState(t *testing.T) {
	h := newHarness(t)
	h.machine("m1", map[string]string{"role": "web"})
	h.machine("m2", map[string]string{"role": "db"})
	h.machine("m3", map[string]string{"role": "web"})
	h.submit("agent.service", service+"[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n", registry.Launched)
	h.submit("one.service", service, registry.Loaded)
	h.engine("m1")
	eventually(t, "global unit on m1 and m3", func() bool {
		return slices.Equal(h.schedule()["agent.service"], []string{"m1", "m3"}) && len(h.schedule()["one.service"]) == 1
	})
	if err := h.reg.SetMetadata(context.Background(), "m2", "role", "web"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "global unit on m2 too", func() bool {
		return slices.Equal(h.schedule()["agent.service"], []string{"m1", "m2", "m3"})
	})
	if err := h.reg.SetDesiredState(context.Background(), "one.service", registry.Inactive); err != nil {
		t.Fatal(err)
	}
	if err := h.reg.Destroy(context.Background(), "agent.service"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "nothing scheduled", func() bool { return len(h.schedule()) == 0 })
}

func TestMachineOfAndReplaces(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"m1", "m2", "m3"} {
		h.machine(id, nil)
	}
	// The follower sorts before its peer: it is placed after it all the same.
	h.submit("a-follower.service", service+"[X-Fleet]\nMachineOf=z-db.service\n", registry.Launched)
	h.submit("z-db.service", service+"[X-Fleet]\nMachineID=m2\n", registry.Launched)
	h.engine("m1")
	eventually(t, "both on m2", func() bool {
		s := h.schedule()
		return slices.Equal(s["z-db.service"], []string{"m2"}) && slices.Equal(s["a-follower.service"], []string{"m2"})
	})
	// new.service replaces old.service on old's machine; old moves away.
	h.submit("old.service", service+"[X-Fleet]\nMachineID=m3\n", registry.Launched)
	eventually(t, "old on m3", func() bool { return slices.Equal(h.schedule()["old.service"], []string{"m3"}) })
	h.submit("old.service", service, registry.Launched) // unpinned: free to move
	h.submit("new.service", service+"[X-Fleet]\nReplaces=old.service\nMachineMetadata=zone=c\n", registry.Launched)
	if err := h.reg.SetMetadata(context.Background(), "m3", "zone", "c"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new on m3, old elsewhere", func() bool {
		s := h.schedule()
		return slices.Equal(s["new.service"], []string{"m3"}) && len(s["old.service"]) == 1 && s["old.service"][0] != "m3"
	})
}

// A unit file no unit names any more is deleted; one still named stays.
func TestUnusedUnitFilesAreDeleted(t *testing.T) {
	h := newHarness(t)
	h.machine("m1", nil)
	h.submit("a.service", service, registry.Launched)
	h.submit("b.service", service, registry.Launched) // the same file as a
	h.submit("a.service", service+"Environment=V=2\n", registry.Launched)
	h.engine("m1")
	files := func() int {
		s, err := h.reg.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(s.Files)
	}
	eventually(t, "two files, both named", func() bool { return len(h.schedule()) == 2 && files() == 2 })
	if err := h.reg.Destroy(context.Background(), "b.service"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b's file deleted", func() bool { return files() == 1 })
	u, err := h.reg.Unit(context.Background(), "a.service")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.reg.File(context.Background(), "a.service", u.Hash); err != nil {
		t.Fatalf("a's file: %v", err)
	}
}
