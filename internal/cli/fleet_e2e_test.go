package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/fleet/fleetapi"
	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/journal"
	"atoll.dev/atoll/internal/store/storetest"
	"atoll.dev/atoll/internal/unit"
)

// The fleet verbs against the real API: fleetapi's server on a registry
// in a real embedded etcd. There is no engine or agent: the tests write
// what they would (placements, machine presence, unit states), and use
// --no-block where only an engine could make a unit reach a state.

const (
	fleetM1 = "113f16a7c2a94d3f8e6b5a4c3d2e1f00"
	fleetM2 = "2b7e1516aed24a8c9d0f1e2d3c4b5a69"
)

// fleetTestEnv is one API over its own registry prefix, served on a unix
// socket in a run directory (so that the default endpoint finds it) and
// on TCP.
type fleetTestEnv struct {
	t      *testing.T
	reg    *registry.Registry
	runDir string // holds atoll.sock
	url    string // the same API over http
	dir    string // where the tests write unit files
}

func startFleetEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	m := storetest.Start(t, storetest.ClusterOptions(t, 1)[0])
	storetest.WaitReady(t, m)
	return m.Client()
}

func newFleetTestEnv(t *testing.T, c *clientv3.Client, j *fakeJournal) *fleetTestEnv {
	t.Helper()
	prefix := "/fleettest/" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "/"
	reg := registry.New(c, prefix)
	o := fleetapi.Options{
		Registry:  func(context.Context) (*registry.Registry, error) { return reg, nil },
		Version:   "test",
		MachineID: fleetM1,
	}
	if j != nil {
		o.Journal = j
	}
	srv := fleetapi.NewServer(o)

	// A short run directory: unix socket paths are limited to 108 bytes.
	runDir, err := os.MkdirTemp("", "fleet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	l, err := net.Listen("unix", filepath.Join(runDir, "atoll.sock"))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &fleetTestEnv{t: t, reg: reg, runDir: runDir, url: ts.URL, dir: t.TempDir()}
}

// fleet runs `atoll --run-dir RUNDIR fleet ARGS...`.
func (e *fleetTestEnv) fleet(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	return run(e.t, append([]string{"--run-dir", e.runDir, "fleet"}, args...)...)
}

// mustFleet runs a verb that must succeed and returns its stdout.
func (e *fleetTestEnv) mustFleet(args ...string) string {
	e.t.Helper()
	code, stdout, stderr := e.fleet(args...)
	if code != 0 {
		e.t.Fatalf("fleet %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// file writes a unit file in the test's directory and returns its path.
func (e *fleetTestEnv) file(name, text string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *fleetTestEnv) register(id, ip string, metadata map[string]string) {
	e.t.Helper()
	if err := e.reg.Register(context.Background(), clientv3.NoLease, registry.Machine{ID: id, PublicIP: ip, Metadata: metadata}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *fleetTestEnv) hash(name string) unit.Hash {
	e.t.Helper()
	u, err := e.reg.Unit(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.Hash
}

// place writes what the engine writes for a placed unit.
func (e *fleetTestEnv) place(name, machine string, desired registry.DesiredState) {
	e.t.Helper()
	p := registry.Placement{Unit: name, Machine: machine, Hash: e.hash(name), DesiredState: desired}
	if _, err := e.reg.Client().Txn(context.Background()).Then(e.reg.OpPlace(p)).Commit(); err != nil {
		e.t.Fatal(err)
	}
}

// report writes what an agent reports of a unit it converged.
func (e *fleetTestEnv) report(name, machine string, reached registry.DesiredState, active, sub string) {
	e.t.Helper()
	st := registry.UnitState{Unit: name, Machine: machine, Hash: e.hash(name), LoadState: "loaded",
		ActiveState: active, SubState: sub, Reached: reached, Since: time.Now()}
	if err := e.reg.PutStates(context.Background(), clientv3.NoLease, []registry.UnitState{st}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *fleetTestEnv) unplaced(name, reason string) {
	e.t.Helper()
	u := registry.Unplaced{Unit: name, Hash: e.hash(name), Reason: reason}
	if _, err := e.reg.Client().Txn(context.Background()).Then(e.reg.OpSetUnplaced(u)).Commit(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *fleetTestEnv) desired(name string) registry.DesiredState {
	e.t.Helper()
	u, err := e.reg.Unit(context.Background(), name)
	if err != nil {
		e.t.Fatalf("unit %s: %v", name, err)
	}
	return u.DesiredState
}

// fakeJournal is one machine's journal: fixed entries, and with Follow
// it blocks until the reader goes.
type fakeJournal struct {
	entries []journal.Entry
}

func (j *fakeJournal) Read(ctx context.Context, name string, o journal.ReadOptions, fn func(journal.Entry) error) error {
	var mine []journal.Entry
	for _, e := range j.entries {
		if e.Unit == name {
			mine = append(mine, e)
		}
	}
	if o.Lines > 0 && len(mine) > o.Lines {
		mine = mine[len(mine)-o.Lines:]
	}
	for _, e := range mine {
		if err := fn(e); err != nil {
			return err
		}
	}
	if o.Follow {
		<-ctx.Done()
	}
	return nil
}

const helloUnit = `[Unit]
Description=Hello World

[Service]
ExecStart=/bin/sh -c "while true; do echo Hello, World!; sleep 1; done"
`

func TestFleetEndToEnd(t *testing.T) {
	etcd := startFleetEtcd(t)

	t.Run("SubmitListCatDestroy", func(t *testing.T) {
		e := newFleetTestEnv(t, etcd, nil)
		hello := e.file("hello.service", helloUnit)
		if out := e.mustFleet("submit", strings.TrimSuffix(hello, ".service")); out != "Unit hello.service inactive\n" {
			t.Errorf("submit: stdout %q, want %q", out, "Unit hello.service inactive\n")
		}
		// Submitting again is idempotent and quiet.
		if out := e.mustFleet("submit", hello); out != "" {
			t.Errorf("second submit: stdout %q, want nothing", out)
		}
		want := fmt.Sprintf("UNIT\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET\nhello.service\t%s\tinactive\tinactive\t-\n", e.hash("hello.service").Short())
		if out := e.mustFleet("list-unit-files"); out != want {
			t.Errorf("list-unit-files:\ngot  %q\nwant %q", out, want)
		}
		f, _, err := unit.Parse("hello.service", strings.NewReader(helloUnit))
		if err != nil {
			t.Fatal(err)
		}
		if out := e.mustFleet("cat", "hello"); out != string(f.Bytes()) {
			t.Errorf("cat:\ngot  %q\nwant %q", out, f.Bytes())
		}
		if out := e.mustFleet("destroy", "hello.service", "nothere.service"); out != "Destroyed hello.service\n" {
			t.Errorf("destroy: stdout %q, want %q", out, "Destroyed hello.service\n")
		}
		if out := e.mustFleet("list-unit-files", "--no-legend"); out != "" {
			t.Errorf("list-unit-files after destroy: %q, want nothing", out)
		}
		code, _, stderr := e.fleet("cat", "hello")
		if code != 1 || stderr != "Unit hello.service not found\n" {
			t.Errorf("cat of a destroyed unit: exit %d, stderr %q; want 1 and fleetctl's message", code, stderr)
		}
		code, _, stderr = e.fleet("destroy", "nothere")
		if code != 0 || stderr != "Units not found in registry\n" {
			t.Errorf("destroy of nothing: exit %d, stderr %q; want 0 and fleetctl's message", code, stderr)
		}
	})

	t.Run("TemplatesAndBraces", func(t *testing.T) {
		e := newFleetTestEnv(t, etcd, nil)
		e.file("web@.service", "[Service]\nExecStart=/bin/web %i\n")
		// Quoted: no shell expanded it.
		out := e.mustFleet("submit", filepath.Join(e.dir, "web@{1..3}"))
		want := "Unit web@1.service inactive\nUnit web@2.service inactive\nUnit web@3.service inactive\n"
		if out != want {
			t.Errorf("submit web@{1..3}: stdout %q, want %q", out, want)
		}
		// The template from the registry, with no local file.
		e.mustFleet("submit", filepath.Join(e.dir, "web@.service"))
		other := t.TempDir()
		out = e.mustFleet("start", "--no-block", filepath.Join(other, "web@{a,b}"))
		// Each trigger line twice, as fleetctl prints them.
		want = "Unit web@a.service inactive\nUnit web@b.service inactive\n" + strings.Repeat("Triggered unit web@a.service start\nTriggered unit web@b.service start\n", 2)
		if out != want {
			t.Errorf("start web@{a,b} from the registry's template: stdout %q, want %q", out, want)
		}
		for _, name := range []string{"web@1.service", "web@a.service"} {
			if e.hash(name) != e.hash("web@.service") {
				t.Errorf("%s: hash %s, want the template's %s", name, e.hash(name).Short(), e.hash("web@.service").Short())
			}
		}
		if got := e.desired("web@a.service"); got != registry.Launched {
			t.Errorf("web@a.service desired state %q, want launched", got)
		}
		// No template anywhere.
		code, _, stderr := e.fleet("submit", filepath.Join(other, "nope@1"))
		if code != 1 || !strings.Contains(stderr, "Error creating units: failed getting Unit(") ||
			!strings.Contains(stderr, "unable to find template Unit(nope@.service) in Registry or on filesystem") {
			t.Errorf("submit without a template: exit %d, stderr %q", code, stderr)
		}
		// The units before a missing one are created; the command fails.
		code, stdout, stderr := e.fleet("submit", e.file("one.service", helloUnit), filepath.Join(other, "y1"))
		if code != 1 || stdout != "" || !strings.Contains(stderr, "Error creating units: unable to find Unit(y1.service) in Registry or on filesystem") {
			t.Errorf("submit with a missing unit: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		e.hash("one.service")
		// A brace expression that is not one is refused by name, as
		// fleetctl refuses it.
		code, _, stderr = e.fleet("submit", filepath.Join(other, "foo.{1-3}"))
		if code != 1 || !strings.Contains(stderr, "Error creating units") {
			t.Errorf("submit foo.{1-3}: exit %d, stderr %q; want 1", code, stderr)
		}
	})

	t.Run("ScheduledUnitsAndMachines", func(t *testing.T) {
		e := newFleetTestEnv(t, etcd, nil)
		e.register(fleetM1, "10.0.0.3", map[string]string{"region": "us", "disk": "ssd"})
		e.register(fleetM2, "10.0.0.4", nil)
		e.mustFleet("load", "--no-block", e.file("hello.service", helloUnit))
		e.place("hello.service", fleetM1, registry.Loaded)
		e.report("hello.service", fleetM1, registry.Loaded, "inactive", "dead")

		want := "MACHINE\t\tIP\t\tMETADATA\n113f16a7...\t10.0.0.3\tdisk=ssd,region=us\n2b7e1516...\t10.0.0.4\t-\n"
		if out := e.mustFleet("list-machines"); out != want {
			t.Errorf("list-machines:\ngot  %q\nwant %q", out, want)
		}
		want = "UNIT\t\tMACHINE\t\t\tACTIVE\t\tSUB\nhello.service\t113f16a7.../10.0.0.3\tinactive\tdead\n"
		if out := e.mustFleet("list-units"); out != want {
			t.Errorf("list-units:\ngot  %q\nwant %q", out, want)
		}
		want = "hello.service\t" + fleetM1 + "/10.0.0.3\t" + e.hash("hello.service").String() + "\n"
		if out := e.mustFleet("list-units", "--no-legend", "-l", "--fields", "unit,machine,hash"); out != want {
			t.Errorf("list-units --full --fields:\ngot  %q\nwant %q", out, want)
		}
		want = "hello.service\tloaded\tloaded\t113f16a7.../10.0.0.3\n"
		if out := e.mustFleet("list-unit-files", "--no-legend", "--fields", "unit,dstate,state,target"); out != want {
			t.Errorf("list-unit-files:\ngot  %q\nwant %q", out, want)
		}

		// start blocks until the agent reports the unit launched and
		// active; the "agent" does so while it waits.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e.desired("hello.service") != registry.Launched {
				time.Sleep(50 * time.Millisecond)
			}
			e.place("hello.service", fleetM1, registry.Launched)
			e.report("hello.service", fleetM1, registry.Launched, "active", "running")
		}()
		out := e.mustFleet("start", "hello")
		wg.Wait()
		if out != "Unit hello.service launched on 113f16a7.../10.0.0.3\n" {
			t.Errorf("start: stdout %q, want the launched line", out)
		}
		// Already launched: nothing to do.
		if out := e.mustFleet("start", "hello"); out != "" {
			t.Errorf("second start: stdout %q, want nothing", out)
		}

		code, _, stderr := e.fleet("list-units", "--fields", "unit,bogus")
		if code != 1 || stderr != "Invalid key in output format: \"bogus\"\n" {
			t.Errorf("list-units --fields unit,bogus: exit %d, stderr %q; want 1 and fleetctl's message", code, stderr)
		}
		code, _, stderr = e.fleet("list-machines", "--fields", "")
		if code != 1 || stderr != "Must define output format\n" {
			t.Errorf("list-machines --fields '': exit %d, stderr %q; want 1 and fleetctl's message", code, stderr)
		}
	})

	t.Run("StopUnloadRestart", func(t *testing.T) {
		e := newFleetTestEnv(t, etcd, nil)
		e.register(fleetM1, "10.0.0.3", nil)
		e.mustFleet("submit", e.file("idle.service", helloUnit))
		code, _, stderr := e.fleet("stop", "idle")
		if code != 1 || stderr != "Unable to stop unit idle.service in state inactive\n" {
			t.Errorf("stop of an inactive unit: exit %d, stderr %q", code, stderr)
		}
		code, _, stderr = e.fleet("restart", "idle")
		if code != 0 || stderr != "Unable to restart unit idle.service in state inactive\n" {
			t.Errorf("restart of an inactive unit: exit %d, stderr %q", code, stderr)
		}

		e.mustFleet("start", "--no-block", e.file("run.service", helloUnit))
		e.place("run.service", fleetM1, registry.Launched)
		e.report("run.service", fleetM1, registry.Launched, "active", "running")
		code, stdout, stderr := e.fleet("stop", "--no-block", "run")
		if code != 0 || stdout != "Triggered unit run.service stop\n" || stderr != "Successfully stopped units [run.service].\n" {
			t.Errorf("stop --no-block: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if got := e.desired("run.service"); got != registry.Loaded {
			t.Errorf("after stop: desired %q, want loaded", got)
		}

		// A rolling restart of a launched unit: stopped, then started,
		// the "agent" following.
		if err := e.reg.SetDesiredState(context.Background(), "run.service", registry.Launched); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			seen := registry.Launched
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				u, err := e.reg.Unit(context.Background(), "run.service")
				if err != nil || u.DesiredState == seen {
					continue
				}
				seen = u.DesiredState
				active, sub := "active", "running"
				if seen == registry.Loaded {
					active, sub = "inactive", "dead"
				}
				e.place("run.service", fleetM1, seen)
				e.report("run.service", fleetM1, seen, active, sub)
			}
		}()
		out := e.mustFleet("restart", "run")
		close(stop)
		<-done
		want := "Unit run.service loaded on 113f16a7.../10.0.0.3\nUnit run.service launched on 113f16a7.../10.0.0.3\n"
		if out != want {
			t.Errorf("restart: stdout %q, want %q", out, want)
		}

		code, stdout, stderr = e.fleet("unload", "--no-block", "run")
		if code != 0 || stdout != "Triggered unit run.service unload\n" || stderr != "Successfully unloaded units [run.service].\n" {
			t.Errorf("unload --no-block: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	t.Run("Unplaceable", func(t *testing.T) {
		e := newFleetTestEnv(t, etcd, nil)
		e.register(fleetM1, "10.0.0.3", nil)
		e.mustFleet("submit", e.file("placed.service", helloUnit))
		e.mustFleet("submit", e.file("stuck.service", "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineMetadata=region=eu\n"))
		const reason = "1 machine: MachineMetadata region=eu"
		e.unplaced("stuck.service", reason)

		code, stdout, stderr := e.fleet("start", "stuck")
		if code != 1 || stderr != "Unit stuck.service cannot be placed: "+reason+"\n" {
			t.Errorf("start of an unplaceable unit: exit %d, stdout %q, stderr %q; want 1 and the reason", code, stdout, stderr)
		}
		want := fmt.Sprintf("UNIT\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET\tREASON\n"+
			"placed.service\t%s\tinactive\tinactive\t-\t-\n"+
			"stuck.service\t%s\tlaunched\tunplaceable\t-\t%s\n",
			e.hash("placed.service").Short(), e.hash("stuck.service").Short(), reason)
		if out := e.mustFleet("list-unit-files"); out != want {
			t.Errorf("list-unit-files:\ngot  %q\nwant %q", out, want)
		}
		want = "stuck.service\t" + reason + "\n"
		if out := e.mustFleet("list-unit-files", "--no-legend", "--fields", "unit,reason"); !strings.HasSuffix(out, want) {
			t.Errorf("list-unit-files --fields unit,reason:\ngot  %q\nwant it to end %q", out, want)
		}
	})

	t.Run("Replace", func(t *testing.T) {
		e := newFleetTestEnv(t, etcd, nil)
		path := e.file("app.service", helloUnit)
		e.mustFleet("submit", path)
		before := e.hash("app.service")
		e.file("app.service", helloUnit+"Environment=V=2\n")

		code, _, stderr := e.fleet("submit", path)
		if code != 0 || !strings.Contains(stderr, "WARNING: Unit app.service in registry differs from local unit file "+path+". Add --replace to override.") {
			t.Errorf("submit of a changed file: exit %d, stderr %q; want fleetctl's warning", code, stderr)
		}
		if e.hash("app.service") != before {
			t.Errorf("submit without --replace replaced the unit")
		}
		e.mustFleet("submit", "--replace", path)
		if e.hash("app.service") == before {
			t.Errorf("submit --replace kept the old file")
		}
		if out := e.mustFleet("submit", "--replace", path); out != "Found same Unit(app.service) in Registry, nothing to do\n" {
			t.Errorf("submit --replace of the same file: stdout %q", out)
		}

		// submit may not replace a launched unit; start may.
		e.mustFleet("start", "--no-block", path)
		e.file("app.service", helloUnit+"Environment=V=3\n")
		code, _, stderr = e.fleet("submit", "--replace", path)
		if code != 0 || !strings.Contains(stderr, "Warning: can not replace Unit(app.service) in state 'launched', use the appropriate command") {
			t.Errorf("submit --replace of a launched unit: exit %d, stderr %q", code, stderr)
		}
		replaced := e.hash("app.service")
		e.mustFleet("start", "--no-block", "--replace", path)
		if e.hash("app.service") == replaced {
			t.Errorf("start --replace kept the old file")
		}
	})

	t.Run("StatusAndJournal", func(t *testing.T) {
		base := time.Date(2024, 5, 1, 10, 0, 0, 0, time.Local)
		j := &fakeJournal{}
		for i := 1; i <= 12; i++ {
			j.entries = append(j.entries, journal.Entry{Seq: uint64(i), Time: base.Add(time.Duration(i) * time.Second),
				Unit: "hello.service", Stream: journal.StreamStdout, PID: 42, Line: fmt.Sprintf("Hello, World! %d", i)})
		}
		e := newFleetTestEnv(t, etcd, j)
		e.register(fleetM1, "10.0.0.3", nil)
		e.mustFleet("start", "--no-block", e.file("hello.service", helloUnit))
		e.place("hello.service", fleetM1, registry.Launched)
		e.report("hello.service", fleetM1, registry.Launched, "active", "running")

		out := e.mustFleet("status", "hello")
		head := "* hello.service - Hello World\n" +
			"     Loaded: loaded\n" +
			"     Active: active (running)\n" +
			"    Machine: " + fleetM1 + "/10.0.0.3\n" +
			"      Fleet: desired launched, current launched\n" +
			"\n"
		if !strings.HasPrefix(out, head) {
			t.Errorf("status:\ngot  %q\nwant it to start %q", out, head)
		}
		lines := strings.Split(strings.TrimSuffix(strings.TrimPrefix(out, head), "\n"), "\n")
		if len(lines) != 10 || lines[9] != "May 01 10:00:12 hello.service[42]: Hello, World! 12" {
			t.Errorf("status journal: got %d lines %q, want the last 10", len(lines), lines)
		}

		out = e.mustFleet("journal", "--lines", "2", "hello")
		want := "May 01 10:00:11 hello.service[42]: Hello, World! 11\nMay 01 10:00:12 hello.service[42]: Hello, World! 12\n"
		if out != want {
			t.Errorf("journal --lines 2:\ngot  %q\nwant %q", out, want)
		}
		if out := e.mustFleet("journal", "-n", "1", "--output", "cat", "hello"); out != "Hello, World! 12\n" {
			t.Errorf("journal --output cat: got %q", out)
		}

		// -f follows until the command's context ends.
		ctx, cancel := context.WithCancel(context.Background())
		w := &notifyWriter{want: "Hello, World! 12\n", seen: make(chan struct{})}
		go func() {
			<-w.seen
			cancel()
		}()
		var errOut bytes.Buffer
		code := MainContext(ctx, []string{"atoll", "--run-dir", e.runDir, "fleet", "journal", "-f", "hello"}, w, &errOut)
		if code != 0 || !strings.Contains(w.String(), want) {
			t.Errorf("journal -f: exit %d, stdout %q, stderr %q", code, w.String(), errOut.String())
		}

		code, _, stderr := e.fleet("journal", "nothere")
		if code != 1 || stderr != "Unit nothere.service does not exist.\n" {
			t.Errorf("journal of a missing unit: exit %d, stderr %q", code, stderr)
		}
		e.mustFleet("submit", e.file("idle.service", helloUnit))
		code, _, stderr = e.fleet("status", "idle")
		if code != 1 || stderr != "Unit idle.service does not appear to be loaded.\n" {
			t.Errorf("status of an inactive unit: exit %d, stderr %q", code, stderr)
		}
		code, _, stderr = e.fleet("journal", "idle")
		if code != 1 || stderr != "Unit idle.service does not appear to be running.\n" {
			t.Errorf("journal of an inactive unit: exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("GlobalUnits", func(t *testing.T) {
		e := newFleetTestEnv(t, etcd, nil)
		e.register(fleetM1, "10.0.0.3", nil)
		e.register(fleetM2, "10.0.0.4", nil)
		g := e.file("g.service", "[Service]\nExecStart=/bin/g\n\n[X-Fleet]\nGlobal=true\n")
		// Never waited for: there is no current state to wait on.
		if out := e.mustFleet("start", g); out != "Unit g.service inactive\nTriggered global unit g.service start\n" {
			t.Errorf("start of a global unit: stdout %q", out)
		}
		e.place("g.service", fleetM1, registry.Launched)
		e.place("g.service", fleetM2, registry.Launched)
		e.report("g.service", fleetM1, registry.Launched, "active", "running")
		e.report("g.service", fleetM2, registry.Launched, "active", "running")
		want := "g.service\t" + e.hash("g.service").Short() + "\tlaunched\t-\tglobal\n"
		if out := e.mustFleet("list-unit-files", "--no-legend"); out != want {
			t.Errorf("list-unit-files:\ngot  %q\nwant %q", out, want)
		}
		want = "g.service\t113f16a7.../10.0.0.3\tactive\trunning\ng.service\t2b7e1516.../10.0.0.4\tactive\trunning\n"
		if out := e.mustFleet("list-units", "--no-legend"); out != want {
			t.Errorf("list-units:\ngot  %q\nwant %q", out, want)
		}
		out := e.mustFleet("status", "--lines", "0", "g")
		if strings.Count(out, "* g.service\n") != 2 || !strings.Contains(out, "    Machine: "+fleetM2+"/10.0.0.4\n") {
			t.Errorf("status of a global unit: want one block per machine, got %q", out)
		}
		code, _, stderr := e.fleet("journal", "g")
		if code != 1 || !strings.Contains(stderr, "Unable to retrieve journal of global unit g.service") || !strings.Contains(stderr, "--machine") {
			t.Errorf("journal of a global unit: exit %d, stderr %q; want 1 and a hint at --machine", code, stderr)
		}
		if out := e.mustFleet("stop", "g"); out != "Triggered global unit g.service stop\n" {
			t.Errorf("stop of a global unit: stdout %q", out)
		}
		// restart: stopped everywhere (the "agents" report it inactive),
		// then started.
		e.report("g.service", fleetM1, registry.Loaded, "inactive", "dead")
		e.report("g.service", fleetM2, registry.Loaded, "inactive", "dead")
		if out := e.mustFleet("restart", "g"); out != "Triggered global unit g.service restart\n" {
			t.Errorf("restart of a global unit: stdout %q", out)
		}
		if got := e.desired("g.service"); got != registry.Launched {
			t.Errorf("after restart: desired %q, want launched", got)
		}
	})

	t.Run("Metadata", func(t *testing.T) {
		e := newFleetTestEnv(t, etcd, nil)
		e.register(fleetM1, "10.0.0.3", map[string]string{"region": "us"})
		e.register(fleetM2, "10.0.0.4", nil)
		if out := e.mustFleet("metadata", "set", "113f16a7", "region", "eu"); out != "Set region=eu on 113f16a7.../10.0.0.3\n" {
			t.Errorf("metadata set: stdout %q", out)
		}
		e.mustFleet("metadata", "set", fleetM2, "disk", "ssd")
		want := "113f16a7...\tregion=eu\n2b7e1516...\tdisk=ssd\n"
		if out := e.mustFleet("list-machines", "--no-legend", "--fields", "machine,metadata"); out != want {
			t.Errorf("list-machines after set:\ngot  %q\nwant %q", out, want)
		}
		if out := e.mustFleet("metadata", "rm", "2b7e", "disk"); out != "Removed disk from 2b7e1516.../10.0.0.4\n" {
			t.Errorf("metadata rm: stdout %q", out)
		}
		want = "113f16a7...\tregion=eu\n2b7e1516...\t-\n"
		if out := e.mustFleet("list-machines", "--no-legend", "--fields", "machine,metadata"); out != want {
			t.Errorf("list-machines after rm:\ngot  %q\nwant %q", out, want)
		}
		if code, _, _ := e.fleet("metadata", "set", "113f16a7", "region"); code != 2 {
			t.Errorf("metadata set without a value: exit %d, want 2", code)
		}
	})

	t.Run("EndpointsAndFleetctl", func(t *testing.T) {
		e := newFleetTestEnv(t, etcd, nil)
		e.register(fleetM1, "10.0.0.3", nil)
		want := "113f16a7...\n"
		// --endpoint over http; under the name fleetctl.
		for _, args := range [][]string{
			{"atoll", "fleet", "--endpoint", e.url, "list-machines", "--no-legend", "--fields", "machine"},
			{"atoll", "fleet", "list-machines", "--endpoint", "unix://" + filepath.Join(e.runDir, "atoll.sock"), "--no-legend", "--fields", "machine"},
			{"/usr/bin/fleetctl", "--endpoint", e.url, "list-machines", "--no-legend", "--fields", "machine"},
			{"fleetctl", "--run-dir", e.runDir, "list-machines", "--no-legend", "--fields", "machine"},
		} {
			var out, errOut bytes.Buffer
			if code := Main(args, &out, &errOut); code != 0 || out.String() != want {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", strings.Join(args, " "), code, out.String(), errOut.String(), want)
			}
		}
		var out, errOut bytes.Buffer
		if code := Main([]string{"fleetctl", "--version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "fleetctl version ") {
			t.Errorf("fleetctl --version: exit %d, stdout %q", code, out.String())
		}
		out.Reset()
		if code := Main([]string{"fleetctl", "version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "fleetctl version ") {
			t.Errorf("fleetctl version: exit %d, stdout %q", code, out.String())
		}
		// SSH flags are accepted, ignored, and said to be.
		code, stdout, stderr := e.fleet("--tunnel", "10.0.0.3", "list-machines", "--no-legend", "--fields", "machine")
		if code != 0 || stdout != want || !strings.Contains(stderr, "--tunnel is ignored: atoll needs no SSH") {
			t.Errorf("--tunnel: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		code, _, stderr = e.fleet("submit", "--sign", "x.service")
		if code != 2 || stderr != fleetSignWarning+"\n" {
			t.Errorf("submit --sign: exit %d, stderr %q; want 2 and fleetctl's warning", code, stderr)
		}
		code, _, stderr = e.fleet("--driver", "etcd", "list-units")
		if code != 2 || !strings.Contains(stderr, "no etcd driver") {
			t.Errorf("--driver etcd: exit %d, stderr %q; want 2", code, stderr)
		}
		code, _, stderr = e.fleet("start")
		if code != 0 || stderr != "No units given\n" {
			t.Errorf("start with no units: exit %d, stderr %q; want fleetctl's 0 and message", code, stderr)
		}
		code, _, _ = run(t, "--run-dir", t.TempDir(), "fleet", "list-units")
		if code != 1 {
			t.Errorf("list-units with no daemon: exit %d, want 1", code)
		}
	})
}

// notifyWriter collects output and closes seen once it holds want.
type notifyWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// FLEETCTL_* variables set flags not given, as in fleetctl.
func TestFleetEndpointFromEnvironment(t *testing.T) {
	etcd := startFleetEtcd(t)
	e := newFleetTestEnv(t, etcd, nil)
	e.register(fleetM2, "10.0.0.4", nil)
	t.Setenv("FLEETCTL_ENDPOINT", e.url)
	t.Setenv("FLEETCTL_REQUEST_TIMEOUT", "5")
	code, stdout, stderr := run(t, "--run-dir", t.TempDir(), "fleet", "list-machines", "--no-legend")
	if code != 0 || stdout != "2b7e1516...\t10.0.0.4\t-\n" {
		t.Errorf("list-machines with FLEETCTL_ENDPOINT: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// --cluster NAME: the playground cluster's first machine's socket.
	pgDir := t.TempDir()
	t.Setenv("ATOLL_PLAYGROUND_DIR", pgDir)
	t.Setenv("FLEETCTL_ENDPOINT", "")
	cluster := fmt.Sprintf(`{"name":"pg","dir":%q,"machines":[{"name":"m1","runDir":%q},{"name":"m2","runDir":"/nonexistent"}]}`,
		filepath.Join(pgDir, "pg"), e.runDir)
	if err := os.MkdirAll(filepath.Join(pgDir, "pg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pgDir, "pg", "cluster.json"), []byte(cluster), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = run(t, "--cluster", "pg", "fleet", "list-machines", "--no-legend")
	if code != 0 || stdout != "2b7e1516...\t10.0.0.4\t-\n" {
		t.Errorf("list-machines --cluster pg: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := run(t, "--cluster", "nope", "fleet", "list-machines"); code != 1 || !strings.Contains(stderr, "no such cluster") {
		t.Errorf("--cluster nope: exit %d, stderr %q; want 1", code, stderr)
	}
	// One slash short names a host, refused as fleetctl refuses it.
	if code, _, stderr := run(t, "fleet", "--endpoint", "unix://var/run/fleet.sock", "list-machines"); code != 2 ||
		!strings.Contains(stderr, `unable to connect to host "var" with scheme "unix"`) {
		t.Errorf("--endpoint unix://var/...: exit %d, stderr %q; want 2 and fleetctl's message", code, stderr)
	}

	t.Setenv("FLEETCTL_REQUEST_TIMEOUT", "soon")
	if code, _, stderr := run(t, "fleet", "list-machines"); code != 2 || !strings.Contains(stderr, "FLEETCTL_REQUEST_TIMEOUT") {
		t.Errorf("a bad FLEETCTL_REQUEST_TIMEOUT: exit %d, stderr %q; want 2 naming it", code, stderr)
	}
}
