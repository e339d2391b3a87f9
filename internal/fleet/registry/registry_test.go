package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/store/storetest"
	"atoll.dev/atoll/internal/unit"
)

func newRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	opts := storetest.ClusterOptions(t, 1)
	m := storetest.Start(t, opts[0])
	storetest.WaitReady(t, m)
	return registry.New(m.Client(), "/test/fleet")
}

func parse(t *testing.T, name, text string) *unit.File {
	t.Helper()
	f, _, err := unit.Parse(name, strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestUnitLifecycle(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	if r.Prefix() != "/test/fleet/" {
		t.Fatalf("prefix %q", r.Prefix())
	}
	f := parse(t, "web.service", "[Service]\nExecStart=/bin/true\n")
	if err := r.Submit(ctx, f, registry.Loaded); err != nil {
		t.Fatal(err)
	}
	u, err := r.Unit(ctx, "web.service")
	if err != nil {
		t.Fatal(err)
	}
	if u.Hash != f.Hash() || u.DesiredState != registry.Loaded || u.Revision == 0 {
		t.Fatalf("unit %+v", u)
	}
	got, err := r.File(ctx, "web.service", u.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != f.Hash() {
		t.Fatal("file read back has another hash")
	}
	if err := r.SetDesiredState(ctx, "web.service", registry.Launched); err != nil {
		t.Fatal(err)
	}
	if u, _ = r.Unit(ctx, "web.service"); u.DesiredState != registry.Launched {
		t.Fatalf("desired %s", u.DesiredState)
	}
	if err := r.SetDesiredState(ctx, "web.service", "running"); err == nil {
		t.Fatal("an unknown desired state was accepted")
	}
	if err := r.SetDesiredState(ctx, "nope.service", registry.Launched); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("set on a missing unit: %v", err)
	}
	f2 := parse(t, "web.service", "[Service]\nExecStart=/bin/false\n")
	if err := r.Submit(ctx, f2, registry.Launched); err != nil {
		t.Fatal(err)
	}
	s, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Units["web.service"].Hash != f2.Hash() || len(s.Files) != 2 {
		t.Fatalf("snapshot units %+v files %d", s.Units, len(s.Files))
	}
	if err := r.Destroy(ctx, "web.service"); err != nil {
		t.Fatal(err)
	}
	if err := r.Destroy(ctx, "web.service"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("second destroy: %v", err)
	}
	if _, err := r.Unit(ctx, "web.service"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("unit after destroy: %v", err)
	}
}

func TestMachinesStatesAndMetadata(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	lease, err := r.Client().Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	m := registry.Machine{ID: "aaaa", PublicIP: "10.0.0.1", Metadata: map[string]string{"region": "eu", "disk": "hdd"}}
	if err := r.Register(ctx, lease.ID, m); err != nil {
		t.Fatal(err)
	}
	if err := r.SetMetadata(ctx, "aaaa", "disk", "ssd"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetMetadata(ctx, "aaaa", "a/b", "x"); err == nil {
		t.Fatal("a key with a slash was accepted")
	}
	st := registry.UnitState{Unit: "web.service", Machine: "aaaa", ActiveState: "active", Reached: registry.Launched}
	if err := r.PutStates(ctx, lease.ID, []registry.UnitState{st}); err != nil {
		t.Fatal(err)
	}
	s, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Machines["aaaa"]
	if got.PublicIP != "10.0.0.1" || got.Metadata["disk"] != "ssd" || got.Metadata["region"] != "eu" {
		t.Fatalf("machine %+v", got)
	}
	if len(s.States) != 1 || s.States[0].Unit != "web.service" || s.States[0].Machine != "aaaa" || s.States[0].Reached != registry.Launched {
		t.Fatalf("states %+v", s.States)
	}
	if err := r.DeleteMetadata(ctx, "aaaa", "disk"); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteMetadata(ctx, "aaaa", "disk"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// The lease going takes the machine and its states with it.
	if _, err := r.Client().Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	if s, err = r.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if len(s.Machines) != 0 || len(s.States) != 0 {
		t.Fatalf("after the lease: machines %v states %v", s.Machines, s.States)
	}
}

func TestFencedCommit(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	put, err := r.Client().Put(ctx, r.ElectionPrefix()+"leader", "me")
	if err != nil {
		t.Fatal(err)
	}
	fence := registry.Fence{Key: r.ElectionPrefix() + "leader", Rev: put.Header.Revision}
	var ops []clientv3.Op
	for i := range registry.MaxOps + 10 { // more than one transaction
		ops = append(ops, r.OpPlace(registry.Placement{Unit: "u" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + ".service", Machine: "m1", DesiredState: registry.Launched}))
	}
	if err := r.Commit(ctx, fence, ops); err != nil {
		t.Fatal(err)
	}
	sched, _, err := r.MachineSchedule(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(sched) != registry.MaxOps+10 {
		t.Fatalf("%d placements", len(sched))
	}
	// A new leader's key (a new revision) fences the old one out.
	if _, err := r.Client().Put(ctx, fence.Key, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Client().Delete(ctx, fence.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Client().Put(ctx, fence.Key, "other"); err != nil {
		t.Fatal(err)
	}
	err = r.Commit(ctx, fence, []clientv3.Op{r.OpUnplace("m1", "ua.service")})
	if !errors.Is(err, registry.ErrNotLeader) {
		t.Fatalf("deposed leader's write: %v", err)
	}
}

// An agent's watch sees its own schedule only; the engine's sees
// everything but the states.
func TestWatches(t *testing.T) {
	r := newRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, rev, err := r.MachineSchedule(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	mine := r.WatchMachineSchedule(ctx, "m1", rev+1)
	engine := r.WatchEngine(ctx, rev+1)
	put, err := r.Client().Put(ctx, r.ElectionPrefix()+"leader", "me")
	if err != nil {
		t.Fatal(err)
	}
	fence := registry.Fence{Key: r.ElectionPrefix() + "leader", Rev: put.Header.Revision}
	lease, err := r.Client().Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(ctx, fence, []clientv3.Op{
		r.OpPlace(registry.Placement{Unit: "b.service", Machine: "m2", DesiredState: registry.Launched}),
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.PutStates(ctx, lease.ID, []registry.UnitState{{Unit: "b.service", Machine: "m2"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetMetadata(ctx, "m2", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(ctx, fence, []clientv3.Op{
		r.OpPlace(registry.Placement{Unit: "a.service", Machine: "m1", DesiredState: registry.Launched}),
		r.OpSetUnplaced(registry.Unplaced{Unit: "c.service", Reason: "no machines"}),
	}); err != nil {
		t.Fatal(err)
	}
	b := <-mine
	if b.Err != nil || len(b.Events) != 1 || b.Events[0].Key.Unit != "a.service" || b.Events[0].Key.Kind != registry.KindPlacement {
		t.Fatalf("agent's first batch: %+v", b)
	}
	kinds := map[registry.Kind]int{}
	for kinds[registry.KindUnplaced] == 0 || kinds[registry.KindPlacement] < 2 {
		b := <-engine
		if b.Err != nil {
			t.Fatal(b.Err)
		}
		for _, e := range b.Events {
			kinds[e.Key.Kind]++
		}
	}
	if kinds[registry.KindState] != 0 || kinds[registry.KindPlacement] != 2 || kinds[registry.KindMetadata] != 1 {
		t.Fatalf("engine saw %v", kinds)
	}
}

// UnitSnapshot reads one unit's part of the registry, and nothing of the
// others'.
func TestUnitSnapshot(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	lease, err := r.Client().Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"m1", "m2"} {
		if err := r.Register(ctx, lease.ID, registry.Machine{ID: m, Metadata: map[string]string{"disk": "hdd"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.SetMetadata(ctx, "m1", "disk", "ssd"); err != nil {
		t.Fatal(err)
	}
	web := parse(t, "web.service", "[Service]\nExecStart=/bin/true\n")
	db := parse(t, "db.service", "[Service]\nExecStart=/bin/false\n")
	for _, f := range []*unit.File{web, db} {
		if err := r.Submit(ctx, f, registry.Launched); err != nil {
			t.Fatal(err)
		}
	}
	put, err := r.Client().Put(ctx, r.ElectionPrefix()+"leader", "me")
	if err != nil {
		t.Fatal(err)
	}
	fence := registry.Fence{Key: r.ElectionPrefix() + "leader", Rev: put.Header.Revision}
	if err := r.Commit(ctx, fence, []clientv3.Op{
		r.OpPlace(registry.Placement{Unit: "web.service", Machine: "m1", Hash: web.Hash(), DesiredState: registry.Launched}),
		r.OpPlace(registry.Placement{Unit: "db.service", Machine: "m2", Hash: db.Hash(), DesiredState: registry.Launched}),
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.PutStates(ctx, lease.ID, []registry.UnitState{
		{Unit: "web.service", Machine: "m1", Reached: registry.Launched},
		{Unit: "db.service", Machine: "m2", Reached: registry.Launched},
	}); err != nil {
		t.Fatal(err)
	}
	s, err := r.UnitSnapshot(ctx, "web.service")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Units) != 1 || len(s.Files) != 1 || s.Files[web.Hash()] == nil ||
		len(s.Schedule) != 1 || s.Schedule[0].Machine != "m1" ||
		len(s.Machines) != 1 || s.Machines["m1"].Metadata["disk"] != "ssd" ||
		len(s.States) != 1 || s.States[0].Machine != "m1" {
		t.Fatalf("web's snapshot: units %v files %d schedule %v machines %v states %v", s.Units, len(s.Files), s.Schedule, s.Machines, s.States)
	}
	// Unplaced, it reads as such.
	if err := r.Commit(ctx, fence, []clientv3.Op{r.OpUnplace("m1", "web.service")}); err != nil {
		t.Fatal(err)
	}
	if s, err = r.UnitSnapshot(ctx, "web.service"); err != nil || len(s.Schedule) != 0 || len(s.Units) != 1 {
		t.Fatalf("after unplacing: %+v, %v", s, err)
	}
	if s, err = r.UnitSnapshot(ctx, "none.service"); err != nil || len(s.Units) != 0 {
		t.Fatalf("a unit that does not exist: %+v, %v", s, err)
	}
}

// A file is deleted only if no unit was written since the engine's view:
// a unit submitted meanwhile may name it (its submit does not rewrite a
// file that is there).
func TestDeleteFileRefusesWhileAUnitMayNameIt(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	put, err := r.Client().Put(ctx, r.ElectionPrefix()+"leader", "me")
	if err != nil {
		t.Fatal(err)
	}
	fence := registry.Fence{Key: r.ElectionPrefix() + "leader", Rev: put.Header.Revision}
	f := parse(t, "a.service", "[Service]\nExecStart=/bin/true\n")
	if err := r.Submit(ctx, f, registry.Loaded); err != nil {
		t.Fatal(err)
	}
	if err := r.Destroy(ctx, "a.service"); err != nil {
		t.Fatal(err)
	}
	snap, err := r.Snapshot(ctx) // the engine's view: the file is named by no unit
	if err != nil {
		t.Fatal(err)
	}
	f.Name = "b.service" // the same file, submitted after the view
	if err := r.Submit(ctx, f, registry.Loaded); err != nil {
		t.Fatal(err)
	}
	deleted, err := r.DeleteFile(ctx, fence, f.Hash(), snap.FileRevisions[f.Hash()], snap.Revision)
	if err != nil || deleted {
		t.Fatalf("delete with a stale view: deleted %v, err %v; want refused", deleted, err)
	}
	if _, err := r.File(ctx, "b.service", f.Hash()); err != nil {
		t.Fatalf("b's file: %v", err)
	}
}
