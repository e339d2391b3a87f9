package playground

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/client"
	"atoll.dev/atoll/internal/node/config"
	"atoll.dev/atoll/internal/store"
)

// atollBinary is built once by TestMain for the machines to run.
var atollBinary string

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "atoll-playground-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		atollBinary = filepath.Join(dir, "atoll")
		build := exec.Command("go", "build", "-o", atollBinary, "atoll.dev/atoll/cmd/atoll")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build atoll:", err)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veth links and daemon processes")
	}
}

// upCluster starts a cluster in a private directory and removes it when
// the test ends, checking that nothing is left behind.
func upCluster(t *testing.T, up UpOptions) (*Cluster, Options) {
	t.Helper()
	needRoot(t)
	opts := Options{Dir: shortTempDir(t), Binary: atollBinary}
	if up.Name == "" {
		up.Name = strings.ToLower(strings.ReplaceAll(t.Name(), "_", "-"))
		if len(up.Name) > 31 {
			up.Name = up.Name[:31]
		}
	}
	t.Cleanup(func() { downAndCheck(t, opts, up.Name) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Up(ctx, opts, up)
	if err != nil {
		if c != nil {
			for _, m := range c.Machines {
				logData, _ := os.ReadFile(m.Log)
				t.Logf("%s log:\n%s", m.Name, tail(logData, 2000))
			}
		}
		t.Fatalf("up: %v", err)
	}
	return c, opts
}

// shortTempDir is a temporary directory with a short path: machines'
// unix sockets live below it, and t.TempDir's paths are too long.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func tail(data []byte, n int) []byte {
	if len(data) > n {
		return data[len(data)-n:]
	}
	return data
}

// downAndCheck removes the cluster and fails the test if any namespace,
// link, mount, process or file of it survives.
func downAndCheck(t *testing.T, opts Options, name string) {
	t.Helper()
	c, _ := Load(opts, name)
	if err := Down(opts, name); err != nil {
		t.Errorf("down: %v", err)
	}
	if err := Down(opts, name); err != nil {
		t.Errorf("second down (must be idempotent): %v", err)
	}
	namespaces, _ := netnsList()
	for _, ns := range namespaces {
		if netnsPattern(name).MatchString(ns) {
			t.Errorf("namespace %s left after down", ns)
		}
	}
	if links := ourLinks(name); len(links) > 0 {
		t.Errorf("links %v left after down", links)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if bytes.Contains(mounts, []byte("/run/netns/atoll-"+name+"-")) {
		t.Errorf("namespace mounts of %s left after down", name)
	}
	if c != nil {
		for _, m := range c.Machines {
			if m.PID != 0 && alive(m.PID) && isAtoll(m.PID, atollBinary) {
				t.Errorf("daemon of %s (pid %d) still runs after down", m.Name, m.PID)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, name)); err == nil {
		t.Errorf("directory of %s left after down", name)
	}
}

func dialMachines(t *testing.T, c *Cluster, names ...string) *clientv3.Client {
	t.Helper()
	var eps []string
	for _, name := range names {
		m, err := c.Machine(name)
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, c.scheme()+"://"+m.IP+":2379")
	}
	cli, err := store.Dial(store.ClientOptions{Endpoints: eps, TLS: c.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// eventually retries op until it succeeds, for things that become true
// once a cluster has recovered (an election, a catch-up).
func eventually(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = op(ctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after 60s: %v", what, err)
}

func getValue(ctx context.Context, cli *clientv3.Client, key string, opts ...clientv3.OpOption) (string, error) {
	resp, err := cli.Get(ctx, key, opts...)
	if err != nil {
		return "", err
	}
	if len(resp.Kvs) == 0 {
		return "", fmt.Errorf("key %s not found", key)
	}
	return string(resp.Kvs[0].Value), nil
}

func atollIn(t *testing.T, c *Cluster, machine string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	outFile, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	err = c.Exec(context.Background(), machine, append([]string{atollBinary}, args...), nil, outFile, outFile)
	data, _ := os.ReadFile(outFile.Name())
	out.Write(data)
	return out.String(), err
}

func TestKeyWrittenOnOneMachineIsReadOnAnother(t *testing.T) {
	c, _ := upCluster(t, UpOptions{Machines: 3})
	out, err := atollIn(t, c, "m1", "kv", "put", "/greeting", "hello from m1")
	if err != nil {
		t.Fatalf("put on m1: %v: %s", err, out)
	}
	out, err = atollIn(t, c, "m3", "kv", "get", "/greeting")
	if err != nil || strings.TrimSpace(out) != "hello from m1" {
		t.Fatalf("get on m3 = %q (err %v), want %q", out, err, "hello from m1")
	}
	statuses := c.Status(context.Background())
	leaders := 0
	for _, st := range statuses {
		if st.State != StateHealthy || !strings.HasPrefix(st.Role, api.RoleMember) || len(st.ID) != 32 {
			t.Errorf("status of %s = %+v, want a healthy member with a 32-character ID", st.Name, st)
		}
		if strings.Contains(st.Role, "leader") {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("status shows %d leaders, want 1: %+v", leaders, statuses)
	}
	// The cluster file lets the host's CLI reach the store.
	cmd := exec.Command(atollBinary, "--cluster", c.Name, "kv", "get", "/greeting")
	cmd.Env = append(os.Environ(), DirEnv+"="+filepath.Dir(c.Dir))
	hostOut, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(hostOut)) != "hello from m1" {
		t.Errorf("atoll --cluster %s kv get = %q (err %v)", c.Name, hostOut, err)
	}
	cmd = exec.Command(atollBinary, "cluster", "status", "--name", c.Name)
	cmd.Env = cmd.Env[:0]
	cmd.Env = append(os.Environ(), DirEnv+"="+filepath.Dir(c.Dir))
	hostOut, err = cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(hostOut), "MACHINE") || !strings.Contains(string(hostOut), "m3") {
		t.Errorf("atoll cluster status = %q (err %v), want a table of the machines", hostOut, err)
	}
}

func leaderOf(t *testing.T, c *Cluster) string {
	t.Helper()
	for _, st := range c.Status(context.Background()) {
		if strings.Contains(st.Role, "leader") {
			return st.Name
		}
	}
	t.Fatal("no leader in status")
	return ""
}

// Kill -9 the leader's daemon: the others elect a new leader and take
// writes again; the restarted machine catches up on what it missed.
func TestLeaderKilledNewLeaderElectedAndRestartCatchesUp(t *testing.T) {
	c, opts := upCluster(t, UpOptions{Machines: 3})
	leader := leaderOf(t, c)
	var others []string
	for _, m := range c.Machines {
		if m.Name != leader {
			others = append(others, m.Name)
		}
	}
	if err := c.Stop(opts, leader, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cli := dialMachines(t, c, others...)
	eventually(t, "write after the leader was killed", func(ctx context.Context) error {
		_, err := cli.Put(ctx, "/after-kill", "written without "+leader)
		return err
	})
	if err := c.Start(opts, leader); err != nil {
		t.Fatal(err)
	}
	restarted := dialMachines(t, c, leader)
	eventually(t, "the restarted machine catches up", func(ctx context.Context) error {
		v, err := getValue(ctx, restarted, "/after-kill", clientv3.WithSerializable())
		if err == nil && v != "written without "+leader {
			return fmt.Errorf("value %q", v)
		}
		return err
	})
	m, _ := c.Machine(leader)
	eventually(t, "the restarted machine reports healthy", func(ctx context.Context) error {
		h, err := client.Local{RunDir: m.RunDir}.Health(ctx)
		if err == nil && !h.Healthy {
			err = errors.New(h.Store.Error)
		}
		return err
	})
}

// A partitioned member refuses linearizable reads while the majority keeps
// writing; once healed it serves again and has the majority's writes.
func TestPartitionedMemberRefusesReadsMajorityWrites(t *testing.T) {
	c, _ := upCluster(t, UpOptions{Machines: 3})
	if err := c.Partition("m3"); err != nil {
		t.Fatal(err)
	}
	majority := dialMachines(t, c, "m1", "m2")
	eventually(t, "majority write during the partition", func(ctx context.Context) error {
		_, err := majority.Put(ctx, "/during-partition", "majority")
		return err
	})
	tlsDir := filepath.Join(c.Dir, "client")
	localArgs := []string{"kv", "get", "/during-partition", "--endpoints", "https://127.0.0.1:2379",
		"--cacert", filepath.Join(tlsDir, "ca.crt"), "--cert", filepath.Join(tlsDir, "client.crt"), "--key", filepath.Join(tlsDir, "client.key")}
	out, err := atollIn(t, c, "m3", localArgs...)
	if err == nil {
		t.Errorf("linearizable read on the partitioned member succeeded with %q; want a refusal", out)
	}
	for _, st := range c.Status(context.Background()) {
		if st.Name == "m3" && st.State != StatePartitioned {
			t.Errorf("status of m3 = %s, want %s", st.State, StatePartitioned)
		}
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "read on m3 after healing", func(ctx context.Context) error {
		out, err := atollIn(t, c, "m3", localArgs...)
		if err == nil && strings.TrimSpace(out) != "majority" {
			return fmt.Errorf("got %q", out)
		}
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
}

func TestDiscoverySizeThreeFiveMachines(t *testing.T) {
	c, _ := upCluster(t, UpOptions{Machines: 5, Members: 3, Discovery: true})
	roles := map[string]int{}
	for _, st := range c.Status(context.Background()) {
		roles[strings.Fields(st.Role)[0]]++
		if st.State != StateHealthy {
			t.Errorf("%s is %s (%s)", st.Name, st.State, st.Detail)
		}
	}
	if roles[api.RoleMember] != 3 || roles[api.RoleClient] != 2 {
		t.Errorf("roles = %v, want 3 members and 2 clients", roles)
	}
	if got := len(c.Endpoints()); got != 3 {
		t.Errorf("cluster file lists %d member endpoints, want 3", got)
	}
	out, err := atollIn(t, c, "m5", "kv", "put", "/via-client", "ok")
	if err != nil {
		t.Errorf("put through a client machine: %v: %s", err, out)
	}
}

// A member leaves with atoll node leave and carries on as a client; the
// other two keep a working store.
func TestMemberLeavesAndBecomesClient(t *testing.T) {
	c, _ := upCluster(t, UpOptions{Machines: 3})
	out, err := atollIn(t, c, "m2", "node", "leave")
	if err != nil {
		t.Fatalf("node leave: %v: %s", err, out)
	}
	m2, _ := c.Machine("m2")
	eventually(t, "m2 healthy as a client", func(ctx context.Context) error {
		h, err := client.Local{RunDir: m2.RunDir}.Health(ctx)
		if err == nil && (!h.Healthy || h.Store.Role != api.RoleClient) {
			err = fmt.Errorf("healthy=%v role=%s %s", h.Healthy, h.Store.Role, h.Store.Error)
		}
		return err
	})
	cli := dialMachines(t, c, "m1", "m3")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil || len(list.Members) != 2 {
		t.Fatalf("members after leave: %v (err %v), want 2", list, err)
	}
	out, err = atollIn(t, c, "m2", "kv", "put", "/from-m2", "client write")
	if err != nil {
		t.Errorf("write from m2 as a client: %v: %s", err, out)
	}
}

// The real etcdctl (Debian's etcd-client) works against the playground
// with nothing but the exports of atoll cluster env.
func TestEtcdctlAgainstPlayground(t *testing.T) {
	needRoot(t)
	etcdctl, err := exec.LookPath("etcdctl")
	if err != nil {
		t.Skip("needs etcdctl (Debian package etcd-client; make test installs it)")
	}
	c, _ := upCluster(t, UpOptions{Machines: 3})
	env := os.Environ()
	for _, kv := range c.Env() {
		env = append(env, kv[0]+"="+kv[1])
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(etcdctl, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("etcdctl %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("put", "/etcdctl/key", "from etcdctl")
	if out := run("get", "/etcdctl/key", "--print-value-only"); strings.TrimSpace(out) != "from etcdctl" {
		t.Errorf("etcdctl get = %q, want %q", out, "from etcdctl")
	}
	if out := run("member", "list"); strings.Count(out, "started") != 3 {
		t.Errorf("etcdctl member list = %q, want 3 started members", out)
	}
	if out := run("endpoint", "health"); strings.Count(out, "is healthy") != 3 {
		t.Errorf("etcdctl endpoint health = %q, want 3 healthy endpoints", out)
	}
	// What etcdctl wrote, atoll reads.
	if out, err := atollIn(t, c, "m2", "kv", "get", "/etcdctl/key"); err != nil || strings.TrimSpace(out) != "from etcdctl" {
		t.Errorf("atoll kv get of etcdctl's key = %q (err %v)", out, err)
	}
}

// Backup from a running cluster; restore into a machine of a fresh
// cluster, which then serves the data as a one-member cluster.
func TestBackupRestoreRoundTrip(t *testing.T) {
	c, _ := upCluster(t, UpOptions{Machines: 3})
	cli := dialMachines(t, c, "m1", "m2", "m3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 50 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/backup/%02d", i), fmt.Sprintf("value %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	snapshot := filepath.Join(t.TempDir(), "cluster.db")
	cmd := exec.Command(atollBinary, "--cluster", c.Name, "store", "backup", snapshot)
	cmd.Env = append(os.Environ(), DirEnv+"="+filepath.Dir(c.Dir))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("store backup: %v: %s", err, out)
	}

	r, ropts := upCluster(t, UpOptions{Name: "restore-target", Machines: 1})
	if err := r.Stop(ropts, "m1", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	m1, _ := r.Machine("m1")
	cmd = exec.Command(atollBinary, "store", "restore", snapshot, "--root", m1.Root, "--config", m1.configFile())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("store restore: %v: %s", err, out)
	}
	if err := r.Start(ropts, "m1"); err != nil {
		t.Fatal(err)
	}
	restored := dialMachines(t, r, "m1")
	eventually(t, "read the restored data", func(ctx context.Context) error {
		resp, err := restored.Get(ctx, "/backup/", clientv3.WithPrefix())
		if err != nil {
			return err
		}
		if len(resp.Kvs) != 50 {
			return fmt.Errorf("%d keys, want 50", len(resp.Kvs))
		}
		for i, kv := range resp.Kvs {
			if string(kv.Value) != fmt.Sprintf("value %d", i) {
				return fmt.Errorf("%s = %q", kv.Key, kv.Value)
			}
		}
		return nil
	})
}

// Down cleans up after an Up that failed halfway, even once cluster.json
// is gone too: it finds namespaces and links by their names.
func TestDownAfterFailedUp(t *testing.T) {
	needRoot(t)
	opts := Options{Dir: shortTempDir(t), Binary: "/bin/false"}
	name := "failed-up"
	t.Cleanup(func() { Down(opts, name) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Up(ctx, opts, UpOptions{Name: name, Machines: 2})
	if err == nil {
		t.Fatal("up with a daemon that exits at once succeeded")
	}
	if !strings.Contains(err.Error(), "exited") {
		t.Errorf("up error = %v, want it to say the daemon exited", err)
	}
	if links := ourLinks(name); len(links) == 0 {
		t.Fatal("the failed up made no links; the test proves nothing")
	}
	os.Remove(filepath.Join(opts.Dir, name, "cluster.json"))
	downAndCheck(t, opts, name)
}

func TestUpRefusesBadOptions(t *testing.T) {
	needRoot(t)
	opts := Options{Dir: t.TempDir(), Binary: atollBinary}
	tests := []struct {
		up   UpOptions
		want string
	}{
		{UpOptions{Name: "Bad_Name"}, "cluster name"},
		{UpOptions{Name: "x", Machines: 3, Members: 4}, "4 store members"},
		{UpOptions{Name: "x", Machines: 241}, "241 machines"},
	}
	deep := Options{Dir: filepath.Join(t.TempDir(), strings.Repeat("d", 80)), Binary: atollBinary}
	if _, err := Up(context.Background(), deep, UpOptions{Name: "deep"}); err == nil || !strings.Contains(err.Error(), "too deep") {
		t.Errorf("Up in a deep directory = %v, want a refusal saying the directory is too deep", err)
	}
	for _, tt := range tests {
		_, err := Up(context.Background(), opts, tt.up)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Up(%+v) = %v, want an error about %s", tt.up, err, tt.want)
		}
	}
}

func TestNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs only without root: checks the refusal")
	}
	_, err := Up(context.Background(), Options{Dir: t.TempDir()}, UpOptions{})
	if !errors.Is(err, ErrNeedRoot) {
		t.Errorf("Up without root = %v, want ErrNeedRoot", err)
	}
	if err := Down(Options{Dir: t.TempDir()}, "default"); !errors.Is(err, ErrNeedRoot) {
		t.Errorf("Down without root = %v, want ErrNeedRoot", err)
	}
}

// An operator turns a client machine into a store member: stop it, give it
// store.join, start it; it joins as a learner, catches up and is promoted.
func TestClientMachineJoinsAsMember(t *testing.T) {
	c, opts := upCluster(t, UpOptions{Machines: 4, Members: 3})
	cli := dialMachines(t, c, "m1", "m2", "m3")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/before-join", "kept"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(opts, "m4", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	m4, _ := c.Machine("m4")
	cfg, _, err := config.Load(m4.configFile())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.Role = config.RoleMember
	cfg.Store.Join = cfg.Store.Endpoints
	cfg.Store.Endpoints = nil
	data, err := config.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m4.configFile(), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(opts, "m4"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "m4 promoted to a voting member", func(ctx context.Context) error {
		list, err := cli.MemberList(ctx)
		if err != nil {
			return err
		}
		voters := 0
		for _, m := range list.Members {
			if !m.IsLearner && m.Name != "" {
				voters++
			}
		}
		if voters != 4 {
			return fmt.Errorf("%d voting members, want 4", voters)
		}
		return nil
	})
	joined := dialMachines(t, c, "m4")
	eventually(t, "m4 serves the data written before it joined", func(ctx context.Context) error {
		v, err := getValue(ctx, joined, "/before-join")
		if err == nil && v != "kept" {
			err = fmt.Errorf("got %q", v)
		}
		return err
	})
}

// SIGHUP makes a running daemon read node.yaml again: new metadata shows
// at once, without a restart (the PID stays).
func TestSIGHUPReloadsMetadata(t *testing.T) {
	c, _ := upCluster(t, UpOptions{Machines: 1})
	m1, _ := c.Machine("m1")
	cfg, _, err := config.Load(m1.configFile())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metadata["disk"] = "ssd"
	data, err := config.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m1.configFile(), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(m1.PID, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "metadata reloaded", func(ctx context.Context) error {
		info, err := client.Local{RunDir: m1.RunDir}.Machine(ctx)
		if err == nil && info.Metadata["disk"] != "ssd" {
			err = fmt.Errorf("metadata %v", info.Metadata)
		}
		return err
	})
	if !alive(m1.PID) {
		t.Error("the daemon exited on SIGHUP")
	}
}

// Machines reach each other and the host's bridge, and nothing else: no
// default route leaves their namespaces.
func TestMachinesHaveNoRouteOut(t *testing.T) {
	c, _ := upCluster(t, UpOptions{Machines: 2})
	for _, m := range c.Machines {
		out, err := exec.Command("ip", "-n", m.NetNS, "-4", "route", "show").CombinedOutput()
		if err != nil {
			t.Fatalf("ip route in %s: %v: %s", m.NetNS, err, out)
		}
		routes := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(routes) != 1 || !strings.HasPrefix(routes[0], c.Subnet+" ") {
			t.Errorf("routes in %s = %q, want only the cluster's %s", m.NetNS, out, c.Subnet)
		}
	}
}

// Two drills at once, as two commands would run them, each from its own
// copy of cluster.json: neither change is lost.
func TestConcurrentDrillsKeepBothChanges(t *testing.T) {
	c, opts := upCluster(t, UpOptions{Machines: 3})
	first, err := Load(opts, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Load(opts, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- first.Stop(opts, "m1", syscall.SIGTERM) }()
	go func() { errs <- second.Partition("m2") }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	after, err := Load(opts, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	m1, _ := after.Machine("m1")
	m2, _ := after.Machine("m2")
	if m1.PID != 0 || !m2.Partitioned {
		t.Errorf("after stop m1 and partition m2 at once: m1 pid %d, m2 partitioned %v; want 0 and true", m1.PID, m2.Partitioned)
	}
}

// Without TLS, with one member and a client: the client machine writes
// through the member, and the endpoints are plain HTTP.
func TestPlainHTTPClusterWithOneMemberAndAClient(t *testing.T) {
	c, _ := upCluster(t, UpOptions{Machines: 2, Members: 1, NoTLS: true})
	if eps := c.Endpoints(); len(eps) != 1 || !strings.HasPrefix(eps[0], "http://") {
		t.Errorf("endpoints = %v, want one plain HTTP member", eps)
	}
	if c.ClientTLS() != nil {
		t.Error("a cluster without TLS names a client identity")
	}
	if out, err := atollIn(t, c, "m2", "kv", "put", "/plain", "yes"); err != nil {
		t.Fatalf("put on the client machine: %v: %s", err, out)
	}
	out, err := atollIn(t, c, "m1", "kv", "get", "/plain")
	if err != nil || strings.TrimSpace(out) != "yes" {
		t.Errorf("get on the member = %q (err %v), want yes", out, err)
	}
	roles := map[string]string{}
	for _, st := range c.Status(context.Background()) {
		roles[st.Name] = strings.Fields(st.Role)[0]
	}
	if roles["m1"] != api.RoleMember || roles["m2"] != api.RoleClient {
		t.Errorf("roles = %v, want m1 member and m2 client", roles)
	}
}
