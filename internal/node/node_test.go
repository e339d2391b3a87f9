package node

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/client"
	"atoll.dev/atoll/internal/discovery"
	"atoll.dev/atoll/internal/fleet/fleetapi"
	"atoll.dev/atoll/internal/node/config"
	"atoll.dev/atoll/internal/store"
	"atoll.dev/atoll/internal/store/storetest"
	"atoll.dev/atoll/internal/testutil"
)

// testMachine is one daemon started in-process on loopback.
type testMachine struct {
	name  string
	paths Paths
	sys   *System
	local client.Local
}

// startMachine writes node.yaml with yamlBody (plus loopback address and
// free ports) and starts a daemon on it.
func startMachine(t *testing.T, name, yamlBody string) *testMachine {
	t.Helper()
	m := prepareMachine(t, name, yamlBody)
	m.start(t)
	return m
}

// prepareMachine writes the machine's node.yaml without starting it.
func prepareMachine(t *testing.T, name, yamlBody string) *testMachine {
	t.Helper()
	ports := storetest.FreePorts(t, 2)
	root := t.TempDir()
	// Unix socket paths are short; keep the run directory near /tmp.
	runDir, err := os.MkdirTemp("", "atoll-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	paths := Paths{Root: root, RunDir: runDir}
	cfg := fmt.Sprintf("name: %s\npublic-ip: 127.0.0.1\nstore:\n  client-port: %d\n  peer-port: %d\n  heartbeat-interval: 50ms\n  election-timeout: 500ms\n%s",
		name, ports[0], ports[1], yamlBody)
	if err := os.MkdirAll(filepath.Dir(paths.ConfigFile()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(paths.ConfigFile(), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testMachine{name: name, paths: paths, local: client.Local{RunDir: runDir}}
}

func (m *testMachine) start(t *testing.T) {
	t.Helper()
	sys, err := Start(context.Background(), Options{Paths: m.paths, LogOutput: io.Discard})
	if err != nil {
		t.Fatalf("start %s: %v", m.name, err)
	}
	m.sys = sys
	t.Cleanup(m.stop)
}

func (m *testMachine) stop() {
	if m.sys != nil {
		m.sys.Close()
		m.sys = nil
	}
}

func (m *testMachine) clientURL() string {
	ports := m.sys.config().Store
	return fmt.Sprintf("http://127.0.0.1:%d", ports.ClientPort)
}

// waitHealthy polls the daemon's API until it reports healthy.
func (m *testMachine) waitHealthy(t *testing.T) api.Health {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last api.Health
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		last, lastErr = m.local.Health(ctx)
		cancel()
		if lastErr == nil && last.Healthy {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not healthy after 30s: %+v (err %v)", m.name, last, lastErr)
	return last
}

func TestSingleMachineServesHealthAndMachine(t *testing.T) {
	m := startMachine(t, "solo", "metadata:\n  region: lab\n")
	h := m.waitHealthy(t)
	if h.Store.Role != api.RoleMember || !h.Store.IsLeader {
		t.Errorf("store = %+v, want the member that leads its cluster of one", h.Store)
	}
	var names []string
	for _, p := range h.Parts {
		names = append(names, p.Name+"="+p.State)
	}
	if got, want := strings.Join(names, ","), "store=running,api=running,fleet=running"; got != want {
		t.Errorf("parts = %s, want %s", got, want)
	}
	info, err := m.local.Machine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "solo" || info.PublicIP != "127.0.0.1" || info.Metadata["region"] != "lab" || len(info.ID) != 32 {
		t.Errorf("machine = %+v, want name solo, IP 127.0.0.1, region=lab and a 32-character ID", info)
	}
	st, err := os.Stat(m.paths.Socket())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("socket %s: mode %v (err %v), want 0600", m.paths.Socket(), st.Mode().Perm(), err)
	}

	// The machine ID survives a restart; the store keeps its data.
	id := info.ID
	if _, err := m.sys.store.client.Put(context.Background(), "/kept", "yes"); err != nil {
		t.Fatal(err)
	}
	m.stop()
	if _, err := os.Stat(m.paths.Socket()); err == nil {
		t.Errorf("socket %s left behind after a clean stop", m.paths.Socket())
	}
	m.start(t)
	m.waitHealthy(t)
	info, err = m.local.Machine(context.Background())
	if err != nil || info.ID != id {
		t.Errorf("machine ID after restart = %q (err %v), want %q", info.ID, err, id)
	}
	resp, err := m.sys.store.client.Get(context.Background(), "/kept")
	if err != nil || len(resp.Kvs) != 1 {
		t.Errorf("key written before the restart: %v (err %v), want it kept", resp, err)
	}
}

func TestReloadAppliesMetadataAndRefusesBadConfig(t *testing.T) {
	m := startMachine(t, "r1", "metadata:\n  disk: hdd\n")
	m.waitHealthy(t)
	cfgPath := m.paths.ConfigFile()
	data, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(data), "disk: hdd", "disk: ssd", 1)), 0o644)
	need, err := m.sys.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if len(need) != 0 {
		t.Errorf("reload says %v need a restart, want nothing", need)
	}
	info, _ := m.local.Machine(context.Background())
	if info.Metadata["disk"] != "ssd" {
		t.Errorf("metadata after reload = %v, want disk=ssd", info.Metadata)
	}
	// fleet's agent registers again with the new metadata.
	fc, err := fleetapi.NewClient("unix://"+m.paths.Socket(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		machines, err := fc.Machines(context.Background())
		if err == nil && len(machines) == 1 && machines[0].Metadata["disk"] == "ssd" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.WriteFile(cfgPath, []byte(string(data)+"log-level: loud\n"), 0o644)
	if _, err := m.sys.Reload(); err == nil || !strings.Contains(err.Error(), "node.yaml:") {
		t.Errorf("reload of a bad config: err = %v, want an error with file:line", err)
	}
	info, _ = m.local.Machine(context.Background())
	if info.Metadata["disk"] != "ssd" {
		t.Errorf("a refused reload changed metadata to %v", info.Metadata)
	}
}

func TestStartRefusesBadConfigWithFileAndLine(t *testing.T) {
	root := t.TempDir()
	paths := Paths{Root: root, RunDir: t.TempDir()}
	os.MkdirAll(filepath.Dir(paths.ConfigFile()), 0o755)
	os.WriteFile(paths.ConfigFile(), []byte("name: m1\nstore:\n  role: leader\n"), 0o644)
	_, err := Start(context.Background(), Options{Paths: paths, LogOutput: io.Discard})
	if err == nil {
		t.Fatal("started with store.role: leader")
	}
	if !strings.Contains(err.Error(), "node.yaml:3") || !strings.Contains(err.Error(), "store.role") {
		t.Errorf("err = %v, want it to name node.yaml:3 and store.role", err)
	}
}

func TestSecondDaemonOnSameRunDirIsRefused(t *testing.T) {
	m := startMachine(t, "first", "")
	_, err := Start(context.Background(), Options{Paths: Paths{Root: t.TempDir(), RunDir: m.paths.RunDir}, LogOutput: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "already serves") {
		t.Errorf("second daemon: err = %v, want a refusal naming the socket", err)
	}
	m.waitHealthy(t)
}

// A machine joins a running cluster as a learner, is promoted, then leaves
// and carries on as a client; after a restart it is still a client.
func TestJoinThenLeaveBecomesClient(t *testing.T) {
	m1 := startMachine(t, "m1", "")
	m1.waitHealthy(t)
	m2 := startMachine(t, "m2", fmt.Sprintf("  join: [%s]\n", m1.clientURL()))
	m2.waitHealthy(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := m1.sys.store.client.MemberList(context.Background())
		if err == nil && len(list.Members) == 2 && !list.Members[0].IsLearner && !list.Members[1].IsLearner {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("m2 not promoted to a voting member: %v (err %v)", list, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// m2 applies its promotion after m1 reports it; leave refuses a learner.
	for {
		h, err := m2.local.Health(context.Background())
		if err == nil && h.Store.Role != api.RoleLearner {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("m2 does not see its own promotion: %+v (err %v)", h.Store, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	left, err := m2.local.Leave(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Endpoints) != 1 || left.Endpoints[0] != m1.clientURL() {
		t.Errorf("endpoints after leave = %v, want [%s]", left.Endpoints, m1.clientURL())
	}
	h := m2.waitHealthy(t)
	if h.Store.Role != api.RoleClient {
		t.Errorf("role after leave = %s, want client", h.Store.Role)
	}
	m2.stop()
	m2.start(t)
	if h := m2.waitHealthy(t); h.Store.Role != api.RoleClient {
		t.Errorf("role after leave and restart = %s, want client", h.Store.Role)
	}
	matches, _ := filepath.Glob(m2.paths.StoreDir() + ".left-*")
	if len(matches) != 1 {
		t.Errorf("data of the removed member: %v, want it kept in one store.left-* directory", matches)
	}
}

// Discovery with size 3 and five machines: three members, two clients,
// and the clients reach the members' store.
func TestDiscoveryThreeMembersTwoClients(t *testing.T) {
	srv, err := discovery.NewServer(discovery.ServerOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	var dc discovery.Client
	token, err := dc.NewToken(context.Background(), hs.URL, 3)
	if err != nil {
		t.Fatal(err)
	}
	var machines []*testMachine
	for i := 1; i <= 5; i++ {
		machines = append(machines, startMachine(t, fmt.Sprintf("d%d", i), fmt.Sprintf("  discovery: %s\n", token)))
	}
	roles := map[string]int{}
	for _, m := range machines {
		roles[m.waitHealthy(t).Store.Role]++
	}
	if roles[api.RoleMember] != 3 || roles[api.RoleClient] != 2 {
		t.Errorf("roles = %v, want 3 members and 2 clients", roles)
	}
	for _, m := range machines {
		if _, err := m.sys.store.client.Put(context.Background(), "/from/"+m.name, "x"); err != nil {
			t.Errorf("write through %s: %v", m.name, err)
		}
	}
}

// A full store (its quota reached) refuses writes; health says so and
// names the alarm, instead of reporting a healthy store.
func TestFullStoreIsReportedUnhealthy(t *testing.T) {
	m := startMachine(t, "full", "  quota-backend-bytes: 16MiB\n")
	m.waitHealthy(t)
	value := strings.Repeat("x", 1<<20)
	var err error
	for i := 0; i < 64 && err == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = m.sys.store.client.Put(ctx, fmt.Sprintf("/fill/%d", i), value)
		cancel()
	}
	if err == nil || !strings.Contains(err.Error(), "database space exceeded") {
		t.Fatalf("writing 64 MiB into a 16 MiB quota: err = %v, want database space exceeded", err)
	}
	h, err := m.local.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.Healthy || len(h.Store.Alarms) != 1 || !strings.HasPrefix(h.Store.Alarms[0], "NOSPACE on ") {
		t.Errorf("health of a full store = healthy %v, alarms %v; want unhealthy with a NOSPACE alarm", h.Healthy, h.Store.Alarms)
	}
}

// A learner whose daemon stopped before its promotion is promoted once the
// daemon starts again from its data.
func TestLearnerRestartedBeforePromotionIsPromoted(t *testing.T) {
	m1 := startMachine(t, "m1", "")
	m1.waitHealthy(t)

	// Make m2 a learner by hand, with the member options its daemon will
	// use, and stop it before anyone promotes it.
	m2 := prepareMachine(t, "m2", fmt.Sprintf("  join: [%s]\n", m1.clientURL()))
	cfg, _, err := config.Load(m2.paths.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	opts, err := MemberOptionsFor(m2.paths, cfg)
	if err != nil {
		t.Fatal(err)
	}
	initial, err := store.Join(context.Background(), m1.sys.store.client, opts.Name, opts.PeerURL())
	if err != nil {
		t.Fatal(err)
	}
	opts.InitialCluster, opts.ClusterState = initial, store.ClusterStateExisting
	learner, err := store.StartMember(opts)
	if err != nil {
		t.Fatal(err)
	}
	<-learner.Ready()
	if !learner.IsLearner() {
		t.Fatal("the hand-made member is not a learner; the test proves nothing")
	}
	learner.Close()

	m2.start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := m1.sys.store.client.MemberList(context.Background())
		voters := 0
		if err == nil {
			for _, member := range list.Members {
				if !member.IsLearner {
					voters++
				}
			}
		}
		if voters == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted learner was not promoted: %v (err %v)", list, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A member removed behind its daemon's back (etcdctl member remove) stops;
// the daemon notices and carries on as a client of the others.
func TestMemberRemovedByOperatorBecomesClient(t *testing.T) {
	m1 := startMachine(t, "m1", "")
	m1.waitHealthy(t)
	m2 := startMachine(t, "m2", fmt.Sprintf("  join: [%s]\n", m1.clientURL()))
	var m2ID uint64
	deadline := time.Now().Add(30 * time.Second)
	for m2ID == 0 {
		list, err := m1.sys.store.client.MemberList(context.Background())
		if err == nil {
			for _, member := range list.Members {
				if member.Name == "m2" && !member.IsLearner {
					m2ID = member.ID
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("m2 never became a voting member")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// etcd refuses removals until the members that stay have been
	// connected for a few seconds; retry like an operator would.
	for {
		_, err := m1.sys.store.client.MemberRemove(context.Background(), m2ID)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remove m2: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		h, err := m2.local.Health(context.Background())
		if err == nil && h.Healthy && h.Store.Role == api.RoleClient {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("m2 after its removal: %+v (err %v), want a healthy client", h, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// An unknown key does not stop the daemon; it is logged with file:line and
// a suggestion.
func TestUnknownKeyIsWarnedWithFileAndLine(t *testing.T) {
	root := t.TempDir()
	runDir, err := os.MkdirTemp("", "atoll-run-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(runDir)
	paths := Paths{Root: root, RunDir: runDir}
	ports := storetest.FreePorts(t, 2)
	os.MkdirAll(filepath.Dir(paths.ConfigFile()), 0o755)
	os.WriteFile(paths.ConfigFile(), []byte(fmt.Sprintf("name: w1\nmetdata:\n  a: b\npublic-ip: 127.0.0.1\nstore:\n  client-port: %d\n  peer-port: %d\n", ports[0], ports[1])), 0o644)
	var logs testutil.Buffer
	sys, err := Start(context.Background(), Options{Paths: paths, LogOutput: &logs})
	if err != nil {
		t.Fatalf("an unknown key stopped the daemon: %v", err)
	}
	defer sys.Close()
	if !strings.Contains(logs.String(), `node.yaml:2: unknown key \"metdata\" (did you mean \"metadata\"?)`) {
		t.Errorf("log = %s\nwant a warning naming node.yaml:2 and suggesting metadata", logs.String())
	}
}

// Two daemons on one root would share one etcd data directory; the second
// is refused at once, and the first keeps running.
func TestSecondDaemonOnSameRootIsRefused(t *testing.T) {
	m := startMachine(t, "first", "")
	otherRun, err := os.MkdirTemp("", "atoll-run-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(otherRun)
	_, err = Start(context.Background(), Options{Paths: Paths{Root: m.paths.Root, RunDir: otherRun}, LogOutput: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "another atoll node runs on this root") {
		t.Fatalf("second daemon on the same root: err = %v, want a refusal", err)
	}
	m.waitHealthy(t)
	// Once the first stops, the root is free again.
	m.stop()
	m.start(t)
	m.waitHealthy(t)
}
