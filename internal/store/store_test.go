package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/store"
	"atoll.dev/atoll/internal/store/storetest"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, opts ...store.MemberOptions) *clientv3.Client {
	t.Helper()
	var eps []string
	for _, o := range opts {
		u := o.ClientURL()
		eps = append(eps, u.String())
	}
	cli, err := store.Dial(store.ClientOptions{Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func mustGet(t *testing.T, ctx context.Context, cli *clientv3.Client, key string) string {
	t.Helper()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %d keys, want 1", key, len(resp.Kvs))
	}
	return string(resp.Kvs[0].Value)
}

func TestThreeMembersReplicate(t *testing.T) {
	ctx := ctxFor(t)
	opts := storetest.ClusterOptions(t, 3)
	var members []*store.Member
	for _, o := range opts {
		members = append(members, storetest.Start(t, o))
	}
	storetest.WaitReady(t, members...)
	if _, err := dial(t, opts[0]).Put(ctx, "/k", "v"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, ctx, dial(t, opts[2]), "/k"); got != "v" {
		t.Errorf("value read on m3 = %q, want %q", got, "v")
	}
	if err := store.Probe(ctx, members[1].Client()); err != nil {
		t.Errorf("probe through m2's in-process client: %v", err)
	}
}

// A learner joins a running cluster, catches up, is promoted, and then
// leaves cleanly while the rest keep serving.
func TestJoinPromoteLeave(t *testing.T) {
	ctx := ctxFor(t)
	all := storetest.ClusterOptions(t, 2)
	first := all[0]
	first.InitialCluster = ""
	m1 := storetest.Start(t, first)
	storetest.WaitReady(t, m1)
	if _, err := m1.Client().Put(ctx, "/before-join", "kept"); err != nil {
		t.Fatal(err)
	}

	second := all[1]
	cli := dial(t, first)
	initial, err := store.Join(ctx, cli, second.Name, second.PeerURL())
	if err != nil {
		t.Fatal(err)
	}
	// Joining again (a retry after a crash) must not add a second member.
	if again, err := store.Join(ctx, cli, second.Name, second.PeerURL()); err != nil || again != initial {
		t.Fatalf("second Join = %q, %v; want %q, nil", again, err, initial)
	}
	second.InitialCluster = initial
	second.ClusterState = store.ClusterStateExisting
	m2 := storetest.Start(t, second)
	storetest.WaitReady(t, m2)
	if err := store.Promote(ctx, cli, m2.ID(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	list, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Members) != 2 {
		t.Fatalf("members after join = %d, want 2", len(list.Members))
	}
	for _, m := range list.Members {
		if m.IsLearner {
			t.Errorf("member %s is still a learner after Promote", m.Name)
		}
	}
	if got := mustGet(t, ctx, dial(t, second), "/before-join"); got != "kept" {
		t.Errorf("joined member reads %q, want %q", got, "kept")
	}

	remaining, err := m2.Leave(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u := first.ClientURL()
	if len(remaining) != 1 || remaining[0] != u.String() {
		t.Errorf("remaining = %v, want [%s]", remaining, u.String())
	}
	select {
	case <-m2.Stopped():
	case <-time.After(20 * time.Second):
		t.Fatal("the member that left did not stop")
	}
	if _, err := m1.Client().Put(ctx, "/after-leave", "ok"); err != nil {
		t.Errorf("write after the other member left: %v", err)
	}
	list, err = m1.Client().MemberList(ctx)
	if err != nil || len(list.Members) != 1 {
		t.Errorf("members after leave = %v (err %v), want 1", list, err)
	}
}

func TestLeaveRefusesLastMember(t *testing.T) {
	ctx := ctxFor(t)
	o := storetest.ClusterOptions(t, 1)[0]
	m := storetest.Start(t, o)
	storetest.WaitReady(t, m)
	if _, err := m.Leave(ctx); err == nil {
		t.Fatal("the last member left its cluster; want a refusal")
	}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := ctxFor(t)
	o := storetest.ClusterOptions(t, 1)[0]
	m := storetest.Start(t, o)
	storetest.WaitReady(t, m)
	for _, k := range []string{"/a", "/b", "/c"} {
		if _, err := m.Client().Put(ctx, k, "value of "+k); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "snap.db")
	n, err := store.Backup(ctx, m.Client(), file)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(file); err != nil || info.Size() != n {
		t.Fatalf("backup file: %v, size want %d", err, n)
	}
	m.Close()

	restored := storetest.ClusterOptions(t, 1)[0]
	restored.DataDir = o.DataDir // restore over the old one: it must be moved aside
	u := restored.PeerURL()
	aside, err := store.Restore(store.RestoreOptions{Snapshot: file, DataDir: restored.DataDir, Name: "r1", PeerURL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	if aside == "" || !store.HasData(aside) {
		t.Errorf("old data directory moved to %q, want a directory holding the old member", aside)
	}
	restored.Name = "r1"
	r := storetest.Start(t, restored)
	storetest.WaitReady(t, r)
	for _, k := range []string{"/a", "/b", "/c"} {
		if got := mustGet(t, ctx, r.Client(), k); got != "value of "+k {
			t.Errorf("restored %s = %q, want %q", k, got, "value of "+k)
		}
	}
	list, err := r.Client().MemberList(ctx)
	if err != nil || len(list.Members) != 1 || list.Members[0].Name != "r1" {
		t.Errorf("restored cluster members = %v (err %v), want one member r1", list, err)
	}
}

func TestRestoreRejectsCorruptSnapshot(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "snap.db")
	os.WriteFile(file, []byte("this is not a bolt database"), 0o600)
	dataDir := filepath.Join(dir, "store")
	_, err := store.Restore(store.RestoreOptions{Snapshot: file, DataDir: dataDir, Name: "r1", PeerURL: "http://127.0.0.1:2380"})
	if err == nil {
		t.Fatal("restoring garbage succeeded")
	}
	if _, statErr := os.Stat(dataDir); statErr == nil {
		t.Errorf("a failed restore created %s", dataDir)
	}
}
