package playground

// The black-box part of fleet v1.0.0's functional suite
// (github.com/coreos/fleet/functional: machines_test, unit_action_test,
// scheduling_test, cluster_test, metadata_test), ported to the playground:
// the real, unmodified fleetctl v1.0.0 (fleetctltest.Build) runs on the
// host against http(s)://<machine IP>:FleetPort, as fleet's tests ran it
// against their nspawn machines with --endpoint. Where fleet's tests ssh'd
// into a machine to stop fleetd, these crash the machine (Cluster.Crash).
//
// The unit files are fleet's functional-test fixtures, read from the shared
// fixtures directory (fleet-units-*.service), with three changes so that
// many scenarios share one cluster: ExecStart becomes a cheap sleep (the
// fixtures loop bash and echo every second), every unit name gets a
// per-scenario prefix (also where [X-Fleet] MachineOf, Conflicts and
// Replaces refer to other fixtures), and some scenarios add [X-Fleet]
// lines (documented where they do). Fixtures missing from the shared
// directory are inline, copied from fleet's functional/fixtures/units.
//
// Each scenario destroys its units when it ends, so that the next one
// starts from an empty cluster, as each of fleet's tests started from a
// new one; fleet's least-loaded placement is what several of them check.
//
// TestFleetctlFunctional also runs atoll's own CLI started as fleetctl
// (atollBinary symlinked as fleetctl) next to the real one, and compares
// what the two print for the same cluster state.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"

	"atoll.dev/atoll/internal/fleet/fleetctltest"
	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/node"
)

// fcSleep is the ExecStart of every unit here.
const fcSleep = "/bin/sleep 100000"

// fcBlock bounds fleetctl's blocking verbs: each attempt polls for up to
// two seconds (fleetctl's defaultSleepTime), so nothing waits forever.
const fcBlock = "--block-attempts=15"

// fcFixturesDir is ../shared/fixtures/units seen from the repository root,
// as internal/unit's fixture test finds it.
func fcFixturesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "fixtures", "units")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no unit fixtures: %v", err)
	}
	return dir
}

// fcInlineFixtures are the fixtures fleet's tests use that the shared
// directory lacks, as they are in fleet v1.0.0's functional/fixtures/units.
var fcInlineFixtures = map[string]string{
	"conflict.4.service": `[Unit]
Description=Test Unit

[Service]
ExecStart=/bin/bash -c "while true; do echo Hello, World!; sleep 1; done"

[X-Fleet]
Conflicts=conflict.*.service
`,
	"conflict-global.1.service": `[Unit]
Description=Test Unit

[Service]
ExecStart=/bin/bash -c "while true; do echo Hello, World!; sleep 1; done"

[X-Fleet]
Global=true
Conflicts=conflict-global.*.service
`,
	"ping.2.service": `[Unit]
Description=PING

[Service]
ExecStart=/bin/bash -c "while true; do echo ping; sleep 1; done"
`,
}

// fcEnv drives one playground cluster with fleetctl.
type fcEnv struct {
	bin      string            // the real fleetctl v1.0.0
	c        *Cluster          // the cluster
	endpoint string            // the API fleetctl talks to
	flags    []string          // global flags before the verb (TLS files)
	fixtures string            // the shared fixtures directory
	ids      map[string]string // machine name -> machine ID
	names    map[string]string // machine ID -> machine name
	ips      map[string]string // machine name -> IP
	scheme   string            // http, or https with TLS
	http     *http.Client      // for what fleetctl cannot show
}

func newFcEnv(t *testing.T, c *Cluster, bin, fixtures string) *fcEnv {
	t.Helper()
	e := &fcEnv{bin: bin, c: c, fixtures: fixtures, scheme: "http",
		ids: map[string]string{}, names: map[string]string{}, ips: map[string]string{}, http: http.DefaultClient}
	if files := c.ClientTLS(); files != nil {
		e.scheme = "https"
		e.flags = []string{"--ca-file=" + files.CA, "--cert-file=" + files.Cert, "--key-file=" + files.Key}
		conf, err := files.ClientTLS()
		if err != nil {
			t.Fatal(err)
		}
		e.http = &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
	}
	for _, m := range c.Machines {
		b, err := os.ReadFile(node.Paths{Root: m.Root, RunDir: m.RunDir}.MachineIDFile())
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSpace(string(b))
		e.ids[m.Name], e.names[id], e.ips[m.Name] = id, m.Name, m.IP
	}
	e.use(c.Machines[0].Name)
	return e
}

// use points fleetctl at machine name's API.
func (e *fcEnv) use(name string) {
	e.endpoint = fmt.Sprintf("%s://%s:%d", e.scheme, e.ips[name], FleetPort)
}

// run runs the real fleetctl.
func (e *fcEnv) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return e.runBin(t, e.bin, args...)
}

func (e *fcEnv) runBin(t *testing.T, bin string, args ...string) (string, string, error) {
	t.Helper()
	stdout, stderr, err := e.quiet(t, bin, args...)
	t.Logf("$ %s %s (exit %d)\n%s%s", filepath.Base(bin), strings.Join(args, " "), fcExit(err), stdout, stderr)
	return stdout, stderr, err
}

// quiet runs bin without logging: for the lists that waits poll, whose
// last answer the wait's error shows.
func (e *fcEnv) quiet(t *testing.T, bin string, args ...string) (string, string, error) {
	t.Helper()
	return fleetctltest.Run(t, bin, e.endpoint, append(slices.Clone(e.flags), args...)...)
}

// must runs fleetctl and fails the test if it exits non-zero or reports
// an error, as fleet's launchUnitsCmd did.
func (e *fcEnv) must(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := e.run(t, args...)
	if err != nil || strings.Contains(stderr, "Error") {
		t.Fatalf("fleetctl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

func fcFirstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func fcExit(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	return -1
}

// fcUnitRow is one line of list-units --full --fields unit,active,machine.
type fcUnitRow struct{ Name, Active, Machine, IP string }

// fcFileRow is one line of list-unit-files --full --fields
// unit,dstate,state,target.
type fcFileRow struct{ Name, DState, State, Target string }

func (e *fcEnv) listUnits(t *testing.T) ([]fcUnitRow, error) {
	t.Helper()
	stdout, stderr, err := e.quiet(t, e.bin, "list-units", "--no-legend", "--full", "--fields", "unit,active,machine")
	if err != nil {
		return nil, fmt.Errorf("list-units: %v: %s", err, stderr)
	}
	var rows []fcUnitRow
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("list-units line %q: want 3 fields", line)
		}
		id, ip, _ := strings.Cut(f[2], "/")
		rows = append(rows, fcUnitRow{Name: f[0], Active: f[1], Machine: id, IP: ip})
	}
	return rows, nil
}

func (e *fcEnv) listUnitFiles(t *testing.T) ([]fcFileRow, error) {
	t.Helper()
	stdout, stderr, err := e.quiet(t, e.bin, "list-unit-files", "--no-legend", "--full", "--fields", "unit,dstate,state,target")
	if err != nil {
		return nil, fmt.Errorf("list-unit-files: %v: %s", err, stderr)
	}
	var rows []fcFileRow
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("list-unit-files line %q: want 4 fields", line)
		}
		rows = append(rows, fcFileRow{Name: f[0], DState: f[1], State: f[2], Target: f[3]})
	}
	return rows, nil
}

// activeWith is, by unit, the active rows of list-units whose unit name
// starts with prefix.
func activeWith(rows []fcUnitRow, prefix string) map[string][]fcUnitRow {
	out := map[string][]fcUnitRow{}
	for _, r := range rows {
		if strings.HasPrefix(r.Name, prefix) && r.Active == "active" {
			out[r.Name] = append(out[r.Name], r)
		}
	}
	return out
}

func countRows(m map[string][]fcUnitRow) int {
	n := 0
	for _, rs := range m {
		n += len(rs)
	}
	return n
}

// waitActive waits until list-units shows exactly n active rows of units
// named prefix*, and check (if any) accepts them; fleet's
// WaitForNActiveUnits, filtered to one scenario's units.
func (e *fcEnv) waitActive(t *testing.T, prefix string, n int, check func(map[string][]fcUnitRow) error) map[string][]fcUnitRow {
	t.Helper()
	var active map[string][]fcUnitRow
	eventually(t, fmt.Sprintf("%d active units %s* in list-units", n, prefix), func(context.Context) error {
		rows, err := e.listUnits(t)
		if err != nil {
			return err
		}
		active = activeWith(rows, prefix)
		if got := countRows(active); got != n {
			return fmt.Errorf("%d active: %v", got, rows)
		}
		if check != nil {
			return check(active)
		}
		return nil
	})
	return active
}

// single is where each unit runs, failing if one runs twice (fleet's
// ActiveToSingleStates).
func single(t *testing.T, active map[string][]fcUnitRow) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, rows := range active {
		if len(rows) != 1 {
			t.Fatalf("unit %s running in multiple locations: %v", name, rows)
		}
		out[name] = rows[0].Machine
	}
	return out
}

// fileRows is list-unit-files' rows of units named prefix*.
func (e *fcEnv) fileRows(t *testing.T, prefix string) map[string]fcFileRow {
	t.Helper()
	rows, err := e.listUnitFiles(t)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]fcFileRow{}
	for _, r := range rows {
		if strings.HasPrefix(r.Name, prefix) {
			out[r.Name] = r
		}
	}
	return out
}

// waitMachines waits until list-machines lists n machines (fleet's
// WaitForNMachines).
func (e *fcEnv) waitMachines(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	eventually(t, fmt.Sprintf("%d machines in list-machines", n), func(context.Context) error {
		stdout, stderr, err := e.quiet(t, e.bin, "list-machines", "--no-legend", "--full", "--fields", "machine")
		if err != nil {
			return fmt.Errorf("%v: %s", err, stderr)
		}
		ids = strings.Fields(stdout)
		if len(ids) != n {
			return fmt.Errorf("%d machines: %v", len(ids), ids)
		}
		return nil
	})
	return ids
}

// unit reads a unit straight from the API: atoll's Unit.Reason says the
// engine has decided that a unit fits nowhere, which lets a test wait for
// that decision instead of sleeping before it checks that a unit did not
// start.
func (e *fcEnv) unit(name string) (*schema.Unit, error) {
	resp, err := e.http.Get(e.endpoint + "/fleet/v1/units/" + name + "?alt=json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET units/%s: %s: %s", name, resp.Status, body)
	}
	var u schema.Unit
	return &u, json.Unmarshal(body, &u)
}

func (e *fcEnv) waitUnplaced(t *testing.T, name string) {
	t.Helper()
	eventually(t, name+" found unplaceable by the engine", func(context.Context) error {
		u, err := e.unit(name)
		if err != nil {
			return err
		}
		if u.Reason == "" {
			return fmt.Errorf("%s: desired %s, current %s, machine %q, no reason yet", name, u.DesiredState, u.CurrentState, u.MachineID)
		}
		t.Logf("%s: %s", name, u.Reason)
		return nil
	})
}

// scenario is a directory for one scenario's unit files, and destroys its
// units (named prefix*) when the test ends.
func (e *fcEnv) scenario(t *testing.T, prefix string) string {
	t.Helper()
	t.Cleanup(func() { e.destroyAll(t, prefix) })
	return t.TempDir()
}

func (e *fcEnv) destroyAll(t *testing.T, prefix string) {
	t.Helper()
	var names []string
	for name := range e.fileRows(t, prefix) {
		names = append(names, name)
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	e.must(t, append([]string{"destroy"}, names...)...)
	eventually(t, "units "+prefix+"* gone", func(context.Context) error {
		rows, err := e.listUnits(t)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if strings.HasPrefix(r.Name, prefix) {
				return fmt.Errorf("%s still listed on %s", r.Name, r.Machine)
			}
		}
		return nil
	})
}

// fixtureText is fleet's fixture name: fleet-units-<name> in the shared
// directory, or one of fcInlineFixtures.
func (e *fcEnv) fixtureText(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.fixtures, "fleet-units-"+name))
	if errors.Is(err, os.ErrNotExist) {
		if text, ok := fcInlineFixtures[name]; ok {
			return text
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// fixture writes fleet's fixture name into dir as prefix+name, rewritten
// (see the file comment), with extra lines appended to [X-Fleet].
func (e *fcEnv) fixture(t *testing.T, dir, prefix, name string, extra ...string) string {
	t.Helper()
	return fcWrite(t, dir, prefix+name, fcRewrite(t, e.fixtureText(t, name), prefix, extra...))
}

// fcRewrite makes a fixture cheap and its unit references prefix*.
func fcRewrite(t *testing.T, text, prefix string, extra ...string) string {
	t.Helper()
	var out []string
	section, hasFleet := "", false
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]") {
			section = trimmed[1 : len(trimmed)-1]
			hasFleet = hasFleet || section == "X-Fleet"
			out = append(out, line)
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		switch {
		case ok && section == "Service" && key == "ExecStart":
			line = "ExecStart=" + fcSleep
		case ok && section == "X-Fleet" && (key == "MachineOf" || key == "Conflicts" || key == "Replaces"):
			refs := strings.Fields(value)
			for i := range refs {
				refs[i] = prefix + refs[i]
			}
			line = key + "=" + strings.Join(refs, " ")
		}
		out = append(out, line)
	}
	if len(extra) > 0 {
		switch {
		case !hasFleet:
			out = append(out, "", "[X-Fleet]")
		case section != "X-Fleet":
			t.Fatalf("fixture's [X-Fleet] is not its last section:\n%s", text)
		}
		out = append(out, extra...)
	}
	return strings.Join(out, "\n") + "\n"
}

// fcUnit is a unit file that sleeps, with [X-Fleet] lines if any.
func fcUnit(description string, xfleet ...string) string {
	s := ""
	if description != "" {
		s = "[Unit]\nDescription=" + description + "\n\n"
	}
	s += "[Service]\nExecStart=" + fcSleep + "\n"
	if len(xfleet) > 0 {
		s += "\n[X-Fleet]\n" + strings.Join(xfleet, "\n") + "\n"
	}
	return s
}

func fcWrite(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fcTable is what fleetctl prints for a table: text/tabwriter with
// minwidth 0, tabwidth 8, padding 1, padchar '\t'.
func fcTable(header []string, rows [][]string) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 8, 1, '\t', 0)
	if header != nil {
		fmt.Fprintln(w, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	w.Flush()
	return b.String()
}

// legend is fleetctl's machine legend: the short ID (or full with --full)
// and the IP.
func (e *fcEnv) legend(name string, full bool) string {
	id := e.ids[name]
	if !full {
		id = id[:8] + "..."
	}
	return id + "/" + e.ips[name]
}

// TestFleetctlFunctional runs fleet's functional tests that need no
// change to the cluster's machines on one three-machine cluster, plain
// HTTP.
func TestFleetctlFunctional(t *testing.T) {
	needRoot(t)
	bin := fleetctltest.Build(t)
	fixtures := fcFixturesDir(t)
	c, _ := upCluster(t, UpOptions{Machines: 3, NoTLS: true})
	e := newFcEnv(t, c, bin, fixtures)
	e.waitMachines(t, 3)

	t.Run("Machines", e.testMachines)
	t.Run("UnitActions", func(t *testing.T) {
		t.Run("Lifecycle", e.testLifecycle)
		for _, cmd := range []string{"submit", "load", "start"} {
			t.Run("Unit"+strings.ToUpper(cmd[:1])+cmd[1:], func(t *testing.T) { e.testUnitStart(t, cmd) })
		}
		t.Run("UnitRestart", e.testUnitRestart)
		for _, cmd := range []string{"submit", "load", "start"} {
			t.Run("Unit"+strings.ToUpper(cmd[:1])+cmd[1:]+"Replace", func(t *testing.T) { e.testReplace(t, cmd) })
		}
		t.Run("UnitCat", e.testCat)
		t.Run("UnitFileRoundTrip", e.testRoundTrip)
		t.Run("ListUnitFilesOrder", e.testListUnitFilesOrder)
	})
	t.Run("Pagination", e.testPagination)
	t.Run("Scheduling", func(t *testing.T) {
		t.Run("MachineOf", e.testScheduleMachineOf)
		t.Run("Conflicts", e.testScheduleConflicts)
		t.Run("OneWayConflict", e.testScheduleOneWayConflict)
		t.Run("MultipleConflicts", e.testScheduleMultipleConflicts)
		t.Run("Replace", e.testScheduleReplace)
		t.Run("CircularReplace", e.testScheduleCircularReplace)
		t.Run("MachineID", e.testScheduleMachineID)
		t.Run("GlobalUnits", e.testScheduleGlobalUnits)
		t.Run("GlobalConflicts", e.testScheduleGlobalConflicts)
	})
	t.Run("Metadata", func(t *testing.T) {
		t.Run("TemplatesWithSpecifiersInMetadata", e.testTemplatesWithSpecifiersInMetadata)
		t.Run("PlaygroundMetadata", e.testPlaygroundMetadata)
	})
	t.Run("AtollCLI", func(t *testing.T) {
		atoll := filepath.Join(t.TempDir(), "fleetctl")
		if err := os.Symlink(atollBinary, atoll); err != nil {
			t.Fatal(err)
		}
		t.Run("Verbs", func(t *testing.T) { e.testAtollVerbs(t, atoll) })
		t.Run("Lists", func(t *testing.T) { e.testAtollLists(t, atoll) })
		t.Run("Errors", func(t *testing.T) { e.testAtollErrors(t, atoll) })
	})
}

// machines_test: list-machines shows every machine with its IP and
// metadata in fleetctl's format, from every machine's API; and the raw
// HTTP checks of fleet's machines API (list, bad page token, PATCH).
func (e *fcEnv) testMachines(t *testing.T) {
	type machine struct{ id, ip, meta string }
	var ms []machine
	for _, m := range e.c.Machines {
		ms = append(ms, machine{e.ids[m.Name], m.IP, "machine=" + m.Name + ",playground=" + e.c.Name})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	var short, full [][]string
	for _, m := range ms {
		short = append(short, []string{m.id[:8] + "...", m.ip, m.meta})
		full = append(full, []string{m.id, m.ip, m.meta})
	}
	header := []string{"MACHINE", "IP", "METADATA"}
	var ids [][]string
	for _, m := range ms {
		ids = append(ids, []string{m.id})
	}
	for _, m := range e.c.Machines {
		e.use(m.Name)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"list-machines"}, fcTable(header, short)},
			{[]string{"list-machines", "--full"}, fcTable(header, full)},
			// fleetctl v1.0.0 defines --l, a long flag, though its usage
			// line says -l (which it refuses).
			{[]string{"list-machines", "--l", "--no-legend"}, fcTable(nil, full)},
			{[]string{"list-machines", "--no-legend", "--full", "--fields", "machine"}, fcTable(nil, ids)},
		} {
			stdout, _ := e.must(t, tc.args...)
			if stdout != tc.want {
				t.Errorf("via %s: fleetctl %s:\n%q\nwant\n%q", m.Name, strings.Join(tc.args, " "), stdout, tc.want)
			}
		}
	}
	// fleetctl's default endpoint is a unix socket: each machine's
	// daemon socket serves the same API.
	e.use(e.c.Machines[0].Name)
	want, _ := e.must(t, "list-machines", "--full")
	m := e.c.Machines[0]
	sock := "unix://" + filepath.Join(m.RunDir, "atoll.sock")
	e.endpoint = sock
	got, _ := e.must(t, "list-machines", "--full")
	e.use(m.Name)
	if got != want {
		t.Errorf("list-machines --full via %s:\n%q\nvia HTTP:\n%q", sock, got, want)
	}

	// fleet's machines_test, over plain HTTP as fleet's test sent it.
	type valueType struct {
		Value string `json:"value"`
	}
	type op struct {
		Operation string `json:"op"`
		Path      string `json:"path"`
		Value     valueType
	}
	do := func(method, path string, body any) (int, []byte) {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			r = strings.NewReader(string(b))
		}
		req, err := http.NewRequest(method, e.endpoint+path, r)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q, want application/json (fleet's checkContentType)", method, path, ct)
		}
		return resp.StatusCode, data
	}
	metadata := func() map[string]map[string]string {
		t.Helper()
		code, body := do("GET", "/fleet/v1/machines", nil)
		if code != http.StatusOK {
			t.Fatalf("GET machines: %d %s", code, body)
		}
		var page struct {
			Machines []struct {
				ID        string            `json:"id"`
				PrimaryIP string            `json:"primaryIP"`
				Metadata  map[string]string `json:"metadata"`
			} `json:"machines"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("GET machines: %v: %s", err, body)
		}
		out := map[string]map[string]string{}
		for _, m := range page.Machines {
			if m.PrimaryIP != e.ips[e.names[m.ID]] {
				t.Errorf("machine %s: primaryIP %q, want %q", m.ID, m.PrimaryIP, e.ips[e.names[m.ID]])
			}
			out[e.names[m.ID]] = m.Metadata
		}
		return out
	}
	base := func(name string) map[string]string {
		return map[string]string{"machine": name, "playground": e.c.Name}
	}
	m0, m1 := e.c.Machines[0].Name, e.c.Machines[1].Name
	if got := metadata(); len(got) != len(e.c.Machines) || !mapsEqual(got[m0], base(m0)) || !mapsEqual(got[m1], base(m1)) {
		t.Errorf("GET machines: metadata %v", got)
	}
	if code, body := do("GET", "/fleet/v1/machines?nextPageToken=EwBMLg==", nil); code != http.StatusBadRequest {
		t.Errorf("GET machines with a bad nextPageToken: %d %s, want 400", code, body)
	}
	// TestMachinesPatchAddModify.
	code, body := do("PATCH", "/fleet/v1/machines", []op{
		{"add", "/" + e.ids[m0] + "/metadata/foo", valueType{"bar"}},
		{"replace", "/" + e.ids[m1] + "/metadata/ping", valueType{"splat"}},
	})
	if code != http.StatusNoContent {
		t.Errorf("PATCH add/replace: %d %s, want 204", code, body)
	}
	want0, want1 := base(m0), base(m1)
	want0["foo"], want1["ping"] = "bar", "splat"
	if got := metadata(); !mapsEqual(got[m0], want0) || !mapsEqual(got[m1], want1) {
		t.Errorf("after PATCH add/replace: metadata %v, want %s %v and %s %v", got, m0, want0, m1, want1)
	}
	stdout, _ := e.must(t, "list-machines", "--full", "--no-legend", "--fields", "machine,metadata")
	if line := e.ids[m0] + "\tfoo=bar,machine=" + m0 + ",playground=" + e.c.Name; !strings.Contains(stdout, line+"\n") {
		t.Errorf("list-machines after PATCH lacks %q:\n%s", line, stdout)
	}
	// TestMachinesPatchDelete.
	code, body = do("PATCH", "/fleet/v1/machines", []op{
		{"remove", "/" + e.ids[m0] + "/metadata/foo", valueType{""}},
		{"remove", "/" + e.ids[m1] + "/metadata/ping", valueType{""}},
	})
	if code != http.StatusNoContent {
		t.Errorf("PATCH remove: %d %s, want 204", code, body)
	}
	if got := metadata(); !mapsEqual(got[m0], base(m0)) || !mapsEqual(got[m1], base(m1)) {
		t.Errorf("after PATCH remove: metadata %v", got)
	}
	// TestMachinesPatchBad.
	for _, bad := range []op{
		{"noop", "/" + e.ids[m0] + "/metadata/foo", valueType{"bar"}},
		{"add", "/" + e.ids[m0] + "/foo", valueType{"bar"}},
		{"add", "/" + e.ids[m0] + "/foo", valueType{""}},
	} {
		if code, body := do("PATCH", "/fleet/v1/machines", []op{bad}); code != http.StatusBadRequest {
			t.Errorf("PATCH %+v: %d %s, want 400", bad, code, body)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// One unit through every state, with what list-unit-files and list-units
// show in between, and what each verb prints.
func (e *fcEnv) testLifecycle(t *testing.T) {
	const name = "ua-life.service"
	dir := e.scenario(t, "ua-life")
	path := fcWrite(t, dir, name, fcUnit("Lifecycle"))
	type want struct {
		file  string // list-unit-files --full --fields unit,dstate,state,target
		units string // list-units --full --fields unit,load,active,sub,machine
	}
	var target string // the machine's legend, once the unit is placed
	check := func(step string, w func() want) {
		t.Helper()
		var last string
		eventually(t, name+" "+step+" in the lists", func(context.Context) error {
			wt := w()
			files, _, err := e.quiet(t, e.bin, "list-unit-files", "--no-legend", "--full", "--fields", "unit,dstate,state,target")
			if err != nil {
				return err
			}
			units, _, err := e.quiet(t, e.bin, "list-units", "--no-legend", "--full", "--fields", "unit,load,active,sub,machine")
			if err != nil {
				return err
			}
			files, units = fcLinesOf(files, name), fcLinesOf(units, name)
			last = fmt.Sprintf("list-unit-files %q, list-units %q; want %q and %q", files, units, wt.file, wt.units)
			if files != wt.file || units != wt.units {
				return errors.New(last)
			}
			return nil
		})
	}
	fields := func(f ...string) string {
		if f == nil {
			return ""
		}
		return strings.Join(f, " ")
	}

	stdout, _ := e.must(t, "submit", path)
	fcExpect(t, "submit", stdout, "Unit "+name+" inactive\n")
	check("submitted", func() want { return want{fields(name, "inactive", "inactive", "-"), ""} })

	stdout, _ = e.must(t, "load", fcBlock, path)
	u, err := e.unit(name)
	if err != nil || u.MachineID == "" {
		t.Fatalf("%s after load: %+v %v", name, u, err)
	}
	machine := e.names[u.MachineID]
	target = e.legend(machine, true)
	fcExpect(t, "load", stdout, "Unit "+name+" loaded on "+e.legend(machine, false)+"\n")
	check("loaded", func() want {
		return want{fields(name, "loaded", "loaded", target), fields(name, "loaded", "inactive", "dead", target)}
	})

	stdout, _ = e.must(t, "start", fcBlock, name)
	fcExpect(t, "start", stdout, "Unit "+name+" launched on "+e.legend(machine, false)+"\n")
	check("launched", func() want {
		return want{fields(name, "launched", "launched", target), fields(name, "loaded", "active", "running", target)}
	})
	// list-units' HASH is the agent's; list-unit-files' is what fleetctl
	// computes from the options the API returns: the same file.
	h1, _ := e.must(t, "list-units", "--no-legend", "--full", "--fields", "unit,hash")
	h2, _ := e.must(t, "list-unit-files", "--no-legend", "--full", "--fields", "unit,hash")
	if fcLinesOf(h1, name) != fcLinesOf(h2, name) || fcLinesOf(h1, name) == "" {
		t.Errorf("list-units hash %q, list-unit-files hash %q: want one hash", fcLinesOf(h1, name), fcLinesOf(h2, name))
	}

	stdout, stderr := e.must(t, "stop", fcBlock, name)
	fcExpect(t, "stop", stdout, "Unit "+name+" loaded on "+e.legend(machine, false)+"\n")
	fcExpect(t, "stop (stderr)", stderr, "Successfully stopped units ["+name+"].\n")
	check("stopped", func() want {
		return want{fields(name, "loaded", "loaded", target), fields(name, "loaded", "inactive", "dead", target)}
	})

	stdout, stderr = e.must(t, "unload", fcBlock, name)
	fcExpect(t, "unload", stdout, "Unit "+name+" inactive\n")
	fcExpect(t, "unload (stderr)", stderr, "Successfully unloaded units ["+name+"].\n")
	check("unloaded", func() want { return want{fields(name, "inactive", "inactive", "-"), ""} })

	stdout, _ = e.must(t, "destroy", name)
	fcExpect(t, "destroy", stdout, "Destroyed "+name+"\n")
	check("destroyed", func() want { return want{"", ""} })
	_, stderr = e.must(t, "destroy", name)
	fcExpect(t, "destroy again (stderr)", stderr, "Units not found in registry\n")
}

func fcExpect(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s printed %q, want %q", what, got, want)
	}
}

// fcLinesOf is the lines of out about unit name, fields joined by one
// space.
func fcLinesOf(out, name string) string {
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == name {
			lines = append(lines, strings.Join(f, " "))
		}
	}
	return strings.Join(lines, "\n")
}

// fcCleanCmd undoes each verb in fleet's unit_action_test.
var fcCleanCmd = map[string]string{"submit": "destroy", "load": "unload", "start": "stop", "restart": "stop"}

// launch runs "fleetctl cmd args... paths..." as fleet's launchUnitsCmd.
func (e *fcEnv) launch(t *testing.T, cmd string, args []string, paths ...string) {
	t.Helper()
	argv := []string{cmd}
	if cmd != "submit" {
		argv = append(argv, fcBlock)
	}
	_, stderr := e.must(t, append(append(argv, args...), paths...)...)
	if strings.Contains(stderr, "WARNING") {
		t.Errorf("fleetctl %s warned: %s", cmd, stderr)
	}
}

// checkCount is fleet's checkListUnits: n of the units are listed by
// list-unit-files (submit), list-units (load) or as active (start).
func (e *fcEnv) checkCount(t *testing.T, cmd string, names []string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d of %v listed after %s", n, names, cmd), func(context.Context) error {
		count := 0
		var seen any
		switch cmd {
		case "submit":
			rows, err := e.listUnitFiles(t)
			if err != nil {
				return err
			}
			for _, r := range rows {
				if slices.Contains(names, r.Name) {
					count++
				}
			}
			seen = rows
		default:
			rows, err := e.listUnits(t)
			if err != nil {
				return err
			}
			for _, r := range rows {
				if slices.Contains(names, r.Name) && (cmd == "load" || r.Active == "active") {
					count++
				}
			}
			seen = rows
		}
		if count != n {
			return fmt.Errorf("%d listed: %v", count, seen)
		}
		return nil
	})
}

// instances writes template prefix@.service into dir and returns the
// paths and names of its instances 1..n (the paths do not exist, so
// fleetctl takes the template from the registry or from dir, as in
// fleet's tests with fixtures/units/hello@N.service).
func instances(t *testing.T, dir, prefix string, n int) (paths, names []string) {
	fcWrite(t, dir, prefix+"@.service", fcUnit("Hello"))
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s@%d.service", prefix, i)
		paths = append(paths, filepath.Join(dir, name))
		names = append(names, name)
	}
	return paths, names
}

// unitStartCommon: launch units with cmd, see them listed, undo, see them
// gone; twice.
func (e *fcEnv) testUnitStart(t *testing.T, cmd string) {
	prefix := "ua-" + cmd
	dir := e.scenario(t, prefix)
	paths, names := instances(t, dir, prefix, 3)
	for round := 1; round <= 2; round++ {
		e.launch(t, cmd, nil, paths...)
		e.checkCount(t, cmd, names, len(names))
		for _, n := range names {
			clean := []string{fcCleanCmd[cmd], n}
			if cmd != "submit" {
				clean = []string{fcCleanCmd[cmd], fcBlock, n}
			}
			e.must(t, clean...)
		}
		e.checkCount(t, cmd, names, 0)
	}
}

// TestUnitRestart: restart launched units (stop, then start), then, once
// stopped, restart them again (start).
//
// fleetctl v1.0.0's restart sets a launched unit's desired state to
// loaded and then waits for currentState to read "launched"
// (setUnitStateAndWait waits for launched whatever state it set), then
// sets launched. atoll's agent lets a stop of a running unit settle for a
// second and turns a start asked meanwhile into one restart, so the unit
// reads launched throughout and is restarted.
func (e *fcEnv) testUnitRestart(t *testing.T) {
	prefix := "ua-restart"
	dir := e.scenario(t, prefix)
	paths, names := instances(t, dir, prefix, 3)
	e.launch(t, "start", nil, paths...)
	e.checkCount(t, "start", names, 3)

	e.launch(t, "restart", nil, paths...) // launched units: stop, then start
	e.checkCount(t, "start", names, 3)

	for _, n := range names {
		e.must(t, "stop", fcBlock, n)
	}
	e.checkCount(t, "start", names, 0)
	e.launch(t, "restart", nil, paths...) // loaded units: restart starts them
	e.checkCount(t, "start", names, 3)
	for _, n := range names {
		e.must(t, "stop", fcBlock, n)
	}
	e.checkCount(t, "start", names, 0)
}

// replaceUnitCommon: cmd --replace with a changed file replaces each unit
// (fleetctl cat shows the new file) and leaves it in cmd's state; for
// start, the agents run the new file (list-units' hash).
func (e *fcEnv) testReplace(t *testing.T, cmd string) {
	prefix := "ua-r" + cmd
	dir := e.scenario(t, prefix)
	paths, names := instances(t, dir, prefix, 3)
	e.launch(t, cmd, nil, paths...)
	e.checkCount(t, cmd, names, 3)

	newDir := filepath.Join(dir, "new")
	if err := os.Mkdir(newDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, name := range names {
		orig, _ := e.must(t, "cat", name)
		text := strings.Replace(fcUnit("Hello"), fcSleep, fmt.Sprintf("/bin/sleep %d", 200000+i), 1)
		newPath := fcWrite(t, newDir, name, text)
		e.launch(t, cmd, []string{"--replace"}, newPath)
		e.checkCount(t, cmd, names, 3)
		got, _ := e.must(t, "cat", name)
		if got == orig {
			t.Errorf("the unit %s has not been replaced", name)
		}
		if strings.TrimSpace(got) != strings.TrimSpace(text) {
			t.Errorf("cat %s after --replace = %q, want %q", name, got, text)
		}
	}
	rows, _ := e.must(t, "list-unit-files", "--no-legend", "--full", "--fields", "unit,dstate,state,hash")
	wantState := map[string]string{"submit": "inactive", "load": "loaded", "start": "launched"}[cmd]
	for _, name := range names {
		f := strings.Fields(fcLinesOf(rows, name))
		if len(f) != 4 || f[1] != wantState || f[2] != wantState {
			t.Errorf("after %s --replace, list-unit-files says %q, want %s %s", cmd, fcLinesOf(rows, name), wantState, wantState)
		}
		if cmd != "start" || len(f) != 4 {
			continue
		}
		eventually(t, name+" runs the new file", func(context.Context) error {
			states, _, err := e.quiet(t, e.bin, "list-units", "--no-legend", "--full", "--fields", "unit,hash,active")
			if err != nil {
				return err
			}
			if got, want := fcLinesOf(states, name), name+" "+f[3]+" active"; got != want {
				return fmt.Errorf("list-units: %q, want %q", got, want)
			}
			return nil
		})
	}
	for _, n := range names {
		clean := []string{fcCleanCmd[cmd], n}
		if cmd != "submit" {
			clean = []string{fcCleanCmd[cmd], fcBlock, n}
		}
		e.must(t, clean...)
	}
	e.checkCount(t, cmd, names, 0)
}

// TestUnitCat: fleetctl cat prints the submitted file.
func (e *fcEnv) testCat(t *testing.T) {
	prefix := "ua-cat-"
	dir := e.scenario(t, prefix)
	path := e.fixture(t, dir, prefix, "hello.service")
	e.must(t, "submit", path)
	e.checkCount(t, "submit", []string{prefix + "hello.service"}, 1)
	stdout, _ := e.must(t, "cat", filepath.Base(path))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(stdout) != strings.TrimSpace(string(data)) {
		t.Errorf("unit body changed across fleetctl cat:\noriginal: %q\nnew: %q", data, stdout)
	}
}

// A unit file with what unit files have (comments, repeated and empty
// options, quotes, specifiers, a continued line, trailing blanks) comes
// back from the API as the options fleetctl sent: fleetctl finds no
// difference from the local file when it starts the unit (it warns "Unit
// ... in registry differs from local unit file" otherwise), cat prints it
// as fleetctl serializes it, and the agent runs the same file
// (list-units' hash is list-unit-files').
func (e *fcEnv) testRoundTrip(t *testing.T) {
	const name = "ua-trip.service"
	dir := e.scenario(t, "ua-trip")
	path := fcWrite(t, dir, name, `# a comment
[Unit]
Description=Tricky "quoted" unit; with %n and 100%%
After=network.target
After=docker.service

[Service]
Environment=
Environment="A=1 2" B=3
ExecStartPre=-/bin/true
ExecStart=/bin/sh -c 'exec sleep \
  100000'
ExecStop=/bin/echo stop   
TimeoutStartSec=0

[X-Fleet]
Conflicts=nothing-like-it.service other.service
`)
	e.must(t, "submit", path)
	_, stderr := e.must(t, "start", fcBlock, path)
	if strings.Contains(stderr, "WARNING") {
		t.Errorf("start of the submitted unit: %s", stderr)
	}
	stdout, _ := e.must(t, "cat", name)
	want := `[Unit]
Description=Tricky "quoted" unit; with %n and 100%%
After=network.target
After=docker.service

[Service]
Environment=
Environment="A=1 2" B=3
ExecStartPre=-/bin/true
ExecStart=/bin/sh -c 'exec sleep \
  100000'
ExecStop=/bin/echo stop
TimeoutStartSec=0

[X-Fleet]
Conflicts=nothing-like-it.service other.service
`
	fcExpect(t, "cat "+name, stdout, want)
	eventually(t, name+" runs the file fleetctl sent", func(context.Context) error {
		h1, _, err := e.quiet(t, e.bin, "list-units", "--no-legend", "--full", "--fields", "unit,hash,active")
		if err != nil {
			return err
		}
		h2, _, err := e.quiet(t, e.bin, "list-unit-files", "--no-legend", "--full", "--fields", "unit,hash")
		if err != nil {
			return err
		}
		if got, want := fcLinesOf(h1, name), fcLinesOf(h2, name)+" active"; got != want {
			return fmt.Errorf("list-units %q, want %q", got, want)
		}
		return nil
	})
}

// TestListUnitFilesOrder: list-unit-files lists units sorted by name,
// whatever order they were submitted in.
func (e *fcEnv) testListUnitFilesOrder(t *testing.T) {
	prefix := "ua-order"
	dir := e.scenario(t, prefix)
	fcWrite(t, dir, prefix+"@.service", fcUnit("Hello"))
	var paths, want []string
	for i := 1; i <= 20; i++ {
		want = append(want, fmt.Sprintf("%s@%02d.service", prefix, i))
		paths = append(paths, filepath.Join(dir, fmt.Sprintf("%s@%02d.service", prefix, (i*7)%20+1)))
	}
	e.must(t, append([]string{"submit"}, paths...)...)
	e.checkCount(t, "submit", want, 20)
	stdout, _ := e.must(t, "list-unit-files", "--no-legend", "--fields", "unit")
	var got []string
	for _, u := range strings.Fields(stdout) {
		if strings.HasPrefix(u, prefix+"@") {
			got = append(got, u)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("list-unit-files order: %v, want %v", got, want)
	}
	if all := strings.Fields(stdout); !slices.IsSorted(all) {
		t.Errorf("list-unit-files is not sorted: %v", all)
	}
}

// Over a page of units (the API's page is 100): fleetctl follows
// nextPageToken for list-unit-files (GET units) and list-units (GET
// state), and lists each unit once, in order.
func (e *fcEnv) testPagination(t *testing.T) {
	prefix := "pg-page"
	dir := e.scenario(t, prefix)
	const n = 130
	paths, names := instances(t, dir, prefix, n)
	e.must(t, append([]string{"submit"}, paths...)...)
	e.must(t, append([]string{"load", fcBlock}, names...)...)
	sort.Strings(names)
	for _, list := range []string{"list-unit-files", "list-units"} {
		stdout, _ := e.must(t, list, "--no-legend", "--fields", "unit")
		var got []string
		for _, u := range strings.Fields(stdout) {
			if strings.HasPrefix(u, prefix+"@") {
				got = append(got, u)
			}
		}
		if !slices.Equal(got, names) {
			t.Errorf("%s lists %d units %s@*, want %d, in order:\n%v", list, len(got), prefix, n, got)
		}
	}
}

// TestScheduleMachineOf: three ping/pong pairs, each pong MachineOf its
// ping, run pairwise together. (Fleet's test then stops fleetd on a pair's
// machine; TestFleetctlClusterChanges does that part.)
func (e *fcEnv) testScheduleMachineOf(t *testing.T) {
	prefix := "mo-"
	dir := e.scenario(t, prefix)
	for i := 0; i < 3; i++ {
		ping := e.fixture(t, dir, prefix, fmt.Sprintf("ping.%d.service", i))
		pong := e.fixture(t, dir, prefix, fmt.Sprintf("pong.%d.service", i))
		e.must(t, "start", "--no-block", ping, pong)
	}
	if files := e.fileRows(t, prefix); len(files) != 6 {
		t.Fatalf("did not find six units in cluster: %v", files)
	}
	where := single(t, e.waitActive(t, prefix, 6, nil))
	for i := 0; i < 3; i++ {
		ping, pong := fmt.Sprintf("%sping.%d.service", prefix, i), fmt.Sprintf("%spong.%d.service", prefix, i)
		if where[ping] == "" || where[ping] != where[pong] {
			t.Errorf("units %s (on %s) and %s (on %s) are not on the same machine", ping, where[ping], pong, where[pong])
		}
	}
}

// TestScheduleConflicts: five units that conflict with each other on
// three machines: three run, on three machines; the other two wait,
// unscheduled.
func (e *fcEnv) testScheduleConflicts(t *testing.T) {
	prefix := "cf-"
	dir := e.scenario(t, prefix)
	for i := 0; i < 5; i++ {
		e.must(t, "start", "--no-block", e.fixture(t, dir, prefix, fmt.Sprintf("conflict.%d.service", i)))
	}
	if files := e.fileRows(t, prefix); len(files) != 5 {
		t.Fatalf("did not find five units in cluster: %v", files)
	}
	where := single(t, e.waitActive(t, prefix, 3, nil))
	machines := map[string]bool{}
	for _, m := range where {
		machines[m] = true
	}
	if len(machines) != 3 {
		t.Errorf("3 active units not running on 3 unique machines: %v", where)
	}
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("%sconflict.%d.service", prefix, i)
		if _, ok := where[name]; ok {
			continue
		}
		e.waitUnplaced(t, name)
		if f := e.fileRows(t, prefix)[name]; f != (fcFileRow{name, "launched", "inactive", "-"}) {
			t.Errorf("list-unit-files shows the unplaceable %s as %+v, want launched inactive -", name, f)
		}
	}
}

// TestScheduleOneWayConflict: a unit that conflicts with hello.service
// keeps hello.service off its machine; destroying it lets hello start.
// Fleet's test had one machine; here both units are held to one machine
// with MachineMetadata.
func (e *fcEnv) testScheduleOneWayConflict(t *testing.T) {
	prefix := "owc-"
	dir := e.scenario(t, prefix)
	pin := "MachineMetadata=machine=" + e.c.Machines[0].Name
	e.must(t, "start", "--no-block", e.fixture(t, dir, prefix, "conflicts-with-hello.service", pin))
	e.waitActive(t, prefix, 1, nil)
	e.must(t, "start", "--no-block", e.fixture(t, dir, prefix, "hello.service", pin))
	if files := e.fileRows(t, prefix); len(files) != 2 {
		t.Fatalf("did not find two units in cluster: %v", files)
	}
	e.waitUnplaced(t, prefix+"hello.service")
	e.waitActive(t, prefix, 1, func(active map[string][]fcUnitRow) error {
		if _, ok := active[prefix+"conflicts-with-hello.service"]; !ok {
			return fmt.Errorf("incorrect unit started: %v", active)
		}
		return nil
	})
	e.must(t, "destroy", prefix+"conflicts-with-hello.service")
	e.waitActive(t, prefix, 1, func(active map[string][]fcUnitRow) error {
		if rows, ok := active[prefix+"hello.service"]; !ok || rows[0].Machine != e.ids[e.c.Machines[0].Name] {
			return fmt.Errorf("want %shello.service active on %s: %v", prefix, e.c.Machines[0].Name, active)
		}
		return nil
	})
}

// TestScheduleMultipleConflicts: three units each listing three conflicts
// (space-separated, or on three lines) run on three machines. Beyond
// fleet's test: the three units they list then fit nowhere, which shows
// that every listed name counts.
func (e *fcEnv) testScheduleMultipleConflicts(t *testing.T) {
	prefix := "mc-"
	dir := e.scenario(t, prefix)
	for i := 0; i < 3; i++ {
		e.must(t, "start", "--no-block", e.fixture(t, dir, prefix, fmt.Sprintf("conflict.multiple.%d.service", i)))
	}
	if files := e.fileRows(t, prefix); len(files) != 3 {
		t.Fatalf("did not find three units in cluster: %v", files)
	}
	where := single(t, e.waitActive(t, prefix, 3, nil))
	machines := map[string]bool{}
	for _, m := range where {
		machines[m] = true
	}
	if len(machines) != 3 {
		t.Errorf("3 active units not running on 3 unique machines: %v", where)
	}
	for i := 0; i < 3; i++ {
		// No conflicts of their own: only the lists above keep them out.
		path := fcWrite(t, dir, fmt.Sprintf("%sconflict.%d.service", prefix, i), fcUnit("Test Unit"))
		e.must(t, "start", "--no-block", path)
	}
	for i := 0; i < 3; i++ {
		e.waitUnplaced(t, fmt.Sprintf("%sconflict.%d.service", prefix, i))
	}
	e.waitActive(t, prefix, 3, func(active map[string][]fcUnitRow) error {
		for name := range active {
			if !strings.Contains(name, "multiple") {
				return fmt.Errorf("%s runs though every machine has a unit that conflicts with it", name)
			}
		}
		return nil
	})
}

// TestScheduleReplace: replace-kick0 (Replaces=replace.0) goes to the
// least-loaded machine, where replace.0 runs, and replace.0 moves to the
// other. Fleet's test had two machines; here all four units are held to
// two with MachineMetadata, and replace.0 is launched before replace.1
// so that the least-loaded placement is known.
func (e *fcEnv) testScheduleReplace(t *testing.T) {
	prefix := "rp-"
	dir := e.scenario(t, prefix)
	two := []string{"MachineMetadata=machine=" + e.c.Machines[0].Name, "MachineMetadata=machine=" + e.c.Machines[1].Name}
	r0 := e.fixture(t, dir, prefix, "replace.0.service", two...)
	r1 := e.fixture(t, dir, prefix, "replace.1.service", two...)
	r2 := e.fixture(t, dir, prefix, "replace.2.service", two...)
	kick := e.fixture(t, dir, prefix, "replace-kick0.service", two...)
	e.must(t, "start", "--no-block", r0)
	e.waitActive(t, prefix, 1, nil)
	e.must(t, "start", "--no-block", r1)
	e.must(t, "start", "--no-block", r2)
	states := single(t, e.waitActive(t, prefix, 3, nil))
	oldMach := states[prefix+"replace.0.service"]
	t.Logf("before: %v", states)

	e.must(t, "start", "--no-block", kick)
	e.waitActive(t, prefix, 4, func(active map[string][]fcUnitRow) error {
		if n := len(e.fileRows(t, prefix)); n != 4 {
			return fmt.Errorf("%d unit files", n)
		}
		m := map[string]string{}
		for name, rows := range active {
			if len(rows) != 1 {
				return fmt.Errorf("%s runs on %d machines", name, len(rows))
			}
			m[name] = rows[0].Machine
		}
		r0m, km := m[prefix+"replace.0.service"], m[prefix+"replace-kick0.service"]
		switch {
		case r0m == km:
			return fmt.Errorf("machine for replace.0 is %s, the same as that of replace-kick0", r0m)
		case km != oldMach:
			return fmt.Errorf("machine for replace-kick0 is %s, different from old machine %s", km, oldMach)
		case r0m == oldMach:
			return fmt.Errorf("machine for replace.0 is %s, the old machine", r0m)
		}
		return nil
	})
}

// TestScheduleCircularReplace: replace.0 replaces replace-kick0 and
// replace-kick0 replaces replace.0. Fleet ignores a circular replace
// (agent/state.go hasReplace): neither unit displaces the other, and
// replace-kick0 goes to the least-loaded machine, the other one. (Fleet's
// test expects "1 launched unit" in its comments, but the check it makes
// passes before replace-kick0 is placed.)
func (e *fcEnv) testScheduleCircularReplace(t *testing.T) {
	prefix := "crp-"
	dir := e.scenario(t, prefix)
	text := strings.Replace(e.fixtureText(t, "replace-kick0.service"), "Replaces=replace.0.service", "Replaces=replace-kick0.service", 1)
	r0 := fcWrite(t, dir, prefix+"replace.0.service", fcRewrite(t, text, prefix))
	kick := e.fixture(t, dir, prefix, "replace-kick0.service")
	e.must(t, "start", "--no-block", r0)
	if files := e.fileRows(t, prefix); len(files) != 1 {
		t.Fatalf("did not find one unit in cluster: %v", files)
	}
	where0 := single(t, e.waitActive(t, prefix, 1, nil))[prefix+"replace.0.service"]
	e.must(t, "start", "--no-block", kick)
	if files := e.fileRows(t, prefix); len(files) != 2 {
		t.Fatalf("did not find two units in cluster: %v", files)
	}
	e.waitActive(t, prefix, 2, func(active map[string][]fcUnitRow) error {
		r0, k := active[prefix+"replace.0.service"], active[prefix+"replace-kick0.service"]
		switch {
		case len(r0) != 1 || len(k) != 1:
			return fmt.Errorf("want each unit on one machine: %v", active)
		case r0[0].Machine != where0:
			return fmt.Errorf("replace.0 moved from %s to %s", where0, r0[0].Machine)
		case k[0].Machine == where0:
			return fmt.Errorf("replace-kick0 joined replace.0 on %s", where0)
		}
		return nil
	})
}

// TestScheduleConditionMachineID: a unit per machine with MachineID= its
// full ID, and (beyond fleet's test) one with the 8-character short ID,
// each started with a blocking start, runs there.
func (e *fcEnv) testScheduleMachineID(t *testing.T) {
	prefix := "mid-"
	dir := e.scenario(t, prefix)
	schedule := map[string]string{}
	for _, m := range e.c.Machines {
		for kind, id := range map[string]string{"full": e.ids[m.Name], "short": e.ids[m.Name][:8]} {
			name := prefix + kind + "-" + m.Name + ".service"
			path := fcWrite(t, dir, name, fcUnit("", "MachineID="+id))
			stdout, _ := e.must(t, "start", fcBlock, path)
			fcExpect(t, "start "+name, stdout, "Unit "+name+" inactive\nUnit "+name+" launched on "+e.legend(m.Name, false)+"\n")
			schedule[name] = e.ids[m.Name]
		}
	}
	for unit, machine := range single(t, e.waitActive(t, prefix, len(schedule), nil)) {
		if machine != schedule[unit] {
			t.Errorf("unit %s was scheduled to %s, expected %s", unit, machine, schedule[unit])
		}
	}
}

// TestScheduleGlobalUnits: a global unit runs on every machine next to
// two plain ones; fleetctl shows it with TARGET global and no STATE.
// (Fleet's test then runs status and restart on it, which go over SSH.)
// Beyond fleet's test: stopping it stops it everywhere.
func (e *fcEnv) testScheduleGlobalUnits(t *testing.T) {
	prefix := "gl-"
	dir := e.scenario(t, prefix)
	e.must(t, "start", "--no-block", e.fixture(t, dir, prefix, "hello.service"), e.fixture(t, dir, prefix, "goodbye.service"))
	e.waitActive(t, prefix, 2, nil)
	global := prefix + "global.service"
	stdout, _ := e.must(t, "start", "--no-block", e.fixture(t, dir, prefix, "global.service"))
	if !strings.Contains(stdout, "Triggered global unit "+global+" start\n") {
		t.Errorf("start of a global unit printed %q", stdout)
	}
	active := e.waitActive(t, prefix, 2+len(e.c.Machines), nil)
	for _, m := range e.c.Machines {
		if !slices.ContainsFunc(active[global], func(r fcUnitRow) bool { return r.Machine == e.ids[m.Name] && r.IP == m.IP }) {
			t.Errorf("did not find global unit on machine %s: %v", m.Name, active[global])
		}
	}
	if f := e.fileRows(t, prefix)[global]; f != (fcFileRow{global, "launched", "-", "global"}) {
		t.Errorf("list-unit-files shows %+v, want launched - global", f)
	}
	stdout, _ = e.must(t, "stop", fcBlock, global)
	if !strings.Contains(stdout, "Triggered global unit "+global+" stop\n") {
		t.Errorf("stop of a global unit printed %q", stdout)
	}
	e.waitActive(t, prefix, 2, func(active map[string][]fcUnitRow) error {
		if rows := active[global]; len(rows) > 0 {
			return fmt.Errorf("%s still active on %v", global, rows)
		}
		return nil
	})
}

// TestScheduleGlobalConflicts: a global unit that conflicts with a running
// global unit runs nowhere.
func (e *fcEnv) testScheduleGlobalConflicts(t *testing.T) {
	prefix := "gc-"
	dir := e.scenario(t, prefix)
	g0, g1 := prefix+"conflict-global.0.service", prefix+"conflict-global.1.service"
	e.must(t, "start", "--no-block", e.fixture(t, dir, prefix, "conflict-global.0.service"))
	e.waitActive(t, prefix, len(e.c.Machines), nil)
	e.must(t, "start", "--no-block", e.fixture(t, dir, prefix, "conflict-global.1.service"))
	e.waitUnplaced(t, g1)
	active := e.waitActive(t, prefix, len(e.c.Machines), nil)
	if len(active[g1]) > 0 {
		t.Errorf("did find global unit %s on %v", g1, active[g1])
	}
	for _, m := range e.c.Machines {
		if !slices.ContainsFunc(active[g0], func(r fcUnitRow) bool { return r.Machine == e.ids[m.Name] }) {
			t.Errorf("did not find global unit %s on machine %s", g0, m.Name)
		}
	}
}

// TestTemplatesWithSpecifiersInMetadata: instances of a template whose
// MachineMetadata names the instance (%i) run on the machine whose
// metadata it names; an instance that names no machine does not start.
// Fleet's test matched hostname=smoke<ID>; the playground's machines have
// machine=<name>, so the fixture's hostname=%i reads machine=%i here.
func (e *fcEnv) testTemplatesWithSpecifiersInMetadata(t *testing.T) {
	prefix := "md-"
	dir := e.scenario(t, prefix)
	text := strings.Replace(e.fixtureText(t, "metadata@.service"), "MachineMetadata=hostname=%i", "MachineMetadata=machine=%i", 1)
	if !strings.Contains(text, "machine=%i") {
		t.Fatalf("metadata@.service has no MachineMetadata=hostname=%%i:\n%s", text)
	}
	tmpl := fcWrite(t, dir, prefix+"metadata@.service", fcRewrite(t, text, prefix))
	e.must(t, "submit", tmpl)
	for i := len(e.c.Machines) - 1; i >= 0; i-- {
		e.must(t, "start", fcBlock, filepath.Join(dir, prefix+"metadata@"+e.c.Machines[i].Name+".service"))
	}
	for unit, machine := range single(t, e.waitActive(t, prefix+"metadata@", len(e.c.Machines), nil)) {
		want := strings.TrimSuffix(strings.TrimPrefix(unit, prefix+"metadata@"), ".service")
		if e.names[machine] != want {
			t.Errorf("template (%s) has been scheduled on wrong machine (%s)", unit, e.names[machine])
		}
	}
	invalid := prefix + "metadata@invalid.service"
	if stdout, stderr, err := e.run(t, "start", "--block-attempts=2", filepath.Join(dir, invalid)); err == nil {
		t.Errorf("%s should not be scheduled:\nstdout: %s\nstderr: %s", invalid, stdout, stderr)
	}
	e.waitUnplaced(t, invalid)
}

// The playground's metadata, playground=<cluster> and machine=<name> on
// each machine: one key, two keys (AND), one key twice (OR), quoted
// values, and values no machine has.
func (e *fcEnv) testPlaygroundMetadata(t *testing.T) {
	prefix := "pgm-"
	dir := e.scenario(t, prefix)
	ms := e.c.Machines
	pg := "MachineMetadata=playground=" + e.c.Name
	for _, tc := range []struct {
		name   string
		xfleet []string
		on     []string // machines it may run on
	}{
		{"cluster", []string{pg}, []string{ms[0].Name, ms[1].Name, ms[2].Name}},
		{"and", []string{pg, "MachineMetadata=machine=" + ms[1].Name}, []string{ms[1].Name}},
		{"or", []string{"MachineMetadata=machine=" + ms[0].Name, "MachineMetadata=machine=" + ms[2].Name}, []string{ms[0].Name, ms[2].Name}},
		{"quoted", []string{`MachineMetadata="machine=` + ms[1].Name + `" "machine=` + ms[2].Name + `"`}, []string{ms[1].Name, ms[2].Name}},
	} {
		name := prefix + tc.name + ".service"
		stdout, _ := e.must(t, "start", fcBlock, fcWrite(t, dir, name, fcUnit("", tc.xfleet...)))
		u, err := e.unit(name)
		if err != nil {
			t.Fatal(err)
		}
		if m := e.names[u.MachineID]; !slices.Contains(tc.on, m) {
			t.Errorf("%s (%v) runs on %q, want one of %v", name, tc.xfleet, m, tc.on)
		} else {
			fcExpect(t, "start "+name, stdout, "Unit "+name+" inactive\nUnit "+name+" launched on "+e.legend(m, false)+"\n")
		}
	}
	var nowhere []string
	for _, tc := range []struct {
		name   string
		xfleet []string
	}{
		{"elsewhere", []string{"MachineMetadata=playground=elsewhere"}},
		{"and-nowhere", []string{pg, "MachineMetadata=machine=nowhere"}},
	} {
		nowhere = append(nowhere, fcWrite(t, dir, prefix+tc.name+".service", fcUnit("", tc.xfleet...)))
	}
	if stdout, stderr, err := e.run(t, append([]string{"start", "--block-attempts=2"}, nowhere...)...); err == nil {
		t.Errorf("units whose metadata no machine has started:\nstdout: %s\nstderr: %s", stdout, stderr)
	}
	for _, p := range nowhere {
		e.waitUnplaced(t, filepath.Base(p))
	}
	e.waitActive(t, prefix, 4, nil)
}

// fcCompare runs the same fleetctl command line with the real fleetctl and
// with atoll's CLI started as fleetctl, and reports any difference in
// exit code, stdout or stderr. rename maps the real run's text to what
// the atoll run should print (twin unit names).
func (e *fcEnv) fcCompare(t *testing.T, atoll string, real, other []string, rename func(string) string) {
	t.Helper()
	so1, se1, err1 := e.runBin(t, e.bin, real...)
	so2, se2, err2 := e.runBin(t, atoll, other...)
	if rename != nil {
		so1, se1 = rename(so1), rename(se1)
	}
	if x1, x2 := fcExit(err1), fcExit(err2); x1 != x2 || so1 != so2 || se1 != se2 {
		t.Errorf("fleetctl %s: the real fleetctl and atoll's differ:\n"+
			"real:  exit %d\n  stdout %q\n  stderr %q\n"+
			"atoll: exit %d\n  stdout %q\n  stderr %q",
			strings.Join(other, " "), x1, so1, se1, x2, so2, se2)
	}
}

// The verbs on twin units pinned to one machine, one through each CLI:
// the same output, names apart. After a verb that does not wait, both
// units are given time to reach the same state.
func (e *fcEnv) testAtollVerbs(t *testing.T, atoll string) {
	prefix := "cmpv-"
	dir := e.scenario(t, prefix)
	m := e.c.Machines[0].Name
	realName, atollName := prefix+"real.service", prefix+"atoll.service"
	realPath := fcWrite(t, dir, realName, fcUnit("Twin", "MachineID="+e.ids[m]))
	atollPath := fcWrite(t, dir, atollName, fcUnit("Twin", "MachineID="+e.ids[m]))
	rename := func(s string) string { return strings.ReplaceAll(s, realName, atollName) }
	for _, step := range []struct {
		args   []string
		settle string // "dstate state" both twins reach; "gone"; "" for none
	}{
		{[]string{"submit", "%p"}, ""},
		{[]string{"submit", "--replace", "%p"}, ""},
		{[]string{"cat", "%n"}, ""},
		{[]string{"load", fcBlock, "%p"}, ""},
		{[]string{"start", fcBlock, "%n"}, ""},
		{[]string{"start", fcBlock, "%n"}, ""},
		{[]string{"stop", fcBlock, "%n"}, ""},
		{[]string{"unload", fcBlock, "%n"}, ""},
		{[]string{"unload", fcBlock, "%n"}, ""},
		{[]string{"stop", "%n"}, ""},
		{[]string{"load", "--no-block", "%n"}, "loaded loaded"},
		{[]string{"start", "--no-block", "%n"}, "launched launched"},
		{[]string{"stop", "--no-block", "%n"}, "loaded loaded"},
		{[]string{"unload", "--no-block", "%n"}, "inactive inactive"},
		{[]string{"start", "--no-block", "%p"}, "launched launched"},
		{[]string{"destroy", "--no-block", "--block-attempts=3", "%n"}, "gone"},
		{[]string{"destroy", "%n"}, ""},
		{[]string{"stop", "%n"}, ""},
		{[]string{"cat", "%n"}, ""},
		{[]string{"start", "--no-block", filepath.Join(dir, prefix+"missing.service")}, ""},
	} {
		sub := func(name, path string) []string {
			out := slices.Clone(step.args)
			for i, a := range out {
				out[i] = strings.NewReplacer("%p", path, "%n", name).Replace(a)
			}
			return out
		}
		e.fcCompare(t, atoll, sub(realName, realPath), sub(atollName, atollPath), rename)
		if step.settle == "" {
			continue
		}
		eventually(t, "both twins "+step.settle, func(context.Context) error {
			files := e.fileRows(t, prefix)
			for _, name := range []string{realName, atollName} {
				f, ok := files[name]
				got := f.DState + " " + f.State
				if !ok {
					got = "gone"
				}
				if got != step.settle {
					return fmt.Errorf("%s is %s", name, got)
				}
			}
			if step.settle == "launched launched" {
				rows, err := e.listUnits(t)
				if err != nil {
					return err
				}
				if n := countRows(activeWith(rows, prefix)); n != 2 {
					return fmt.Errorf("%d active", n)
				}
			}
			return nil
		})
	}
}

// The same cluster state listed by both CLIs: list-machines, list-units
// and list-unit-files with their flags.
func (e *fcEnv) testAtollLists(t *testing.T, atoll string) {
	prefix := "cmp-"
	dir := e.scenario(t, prefix)
	ms := e.c.Machines
	e.must(t, "start", fcBlock, fcWrite(t, dir, prefix+"launched.service", fcUnit("Launched unit", "MachineID="+e.ids[ms[0].Name])))
	e.must(t, "load", fcBlock, fcWrite(t, dir, prefix+"loaded.service", fcUnit("", "MachineID="+e.ids[ms[1].Name])))
	e.must(t, "submit", fcWrite(t, dir, prefix+"inactive.service", fcUnit("Only submitted")))
	e.must(t, "start", "--no-block", fcWrite(t, dir, prefix+"global.service", fcUnit("Everywhere", "Global=true")))
	tmpl := fcWrite(t, dir, prefix+"tmpl@.service", fcUnit("A template", "MachineMetadata=machine="+ms[2].Name))
	e.must(t, "submit", tmpl)
	e.must(t, "start", fcBlock, filepath.Join(dir, prefix+"tmpl@1.service"))
	e.waitActive(t, prefix, 2+len(ms), nil)

	lists := [][]string{
		{"list-machines"},
		{"list-machines", "--full"},
		{"list-machines", "--l", "--no-legend"},
		{"list-machines", "--fields", "ip,machine"},
		{"list-machines", "--fields", "metadata,machine", "--full", "--no-legend"},
		{"list-units"},
		{"list-units", "--full"},
		{"list-units", "--l", "--no-legend"},
		{"list-units", "--no-legend", "--full", "--fields", "unit,active,machine"},
		{"list-units", "--fields", "unit,load,active,sub,hash,machine"},
		{"list-units", "--fields", "hash,unit", "--full"},
		{"list-unit-files"},
		{"list-unit-files", "--full"},
		{"list-unit-files", "--no-legend"},
		{"list-unit-files", "--fields", "unit,global,desc,dstate,state,target,hash"},
		{"list-unit-files", "--fields", "unit,tmachine", "--full"},
		{"list-unit-files", "--no-legend", "--full", "--fields", "unit,dstate,state"},
	}
	for _, args := range lists {
		e.fcCompare(t, atoll, args, args, nil)
	}

	// A unit the engine cannot place: atoll's CLI says so in
	// list-unit-files (STATE unplaceable and a REASON column), as its help
	// documents; fleetctl shows it inactive. Reported, not failed.
	e.must(t, "start", "--no-block", fcWrite(t, dir, prefix+"nowhere.service", fcUnit("", "MachineMetadata=machine=nowhere")))
	e.waitUnplaced(t, prefix+"nowhere.service")
	for _, args := range [][]string{{"list-unit-files"}, {"list-unit-files", "--fields", "unit,dstate,state,target"}} {
		so1, _, _ := e.runBin(t, e.bin, args...)
		so2, _, _ := e.runBin(t, atoll, args...)
		if so1 != so2 {
			t.Logf("documented difference (atoll's unplaceable units), fleetctl %s:\nreal:  %q\natoll: %q", strings.Join(args, " "), so1, so2)
		}
	}
}

// Usage mistakes and an API that does not answer: the same messages and
// exit codes.
func (e *fcEnv) testAtollErrors(t *testing.T, atoll string) {
	for _, args := range [][]string{
		{"list-units", "--fields", "bogus"},
		{"list-machines", "--fields", "machine,nope"},
		{"list-unit-files", "--fields", ""},
	} {
		e.fcCompare(t, atoll, args, args, nil)
	}
	// fleetctl v1.0.0 refuses -l, which its usage lines show (it defines
	// a long flag --l), printing the usage and exiting 0; atoll's CLI
	// takes -l as --full. Lenient where fleetctl is not: reported, not
	// failed.
	for _, args := range [][]string{{"list-machines", "-l"}, {"list-units", "-l"}, {"list-unit-files", "-l"}} {
		so1, se1, err1 := e.runBin(t, e.bin, args...)
		so2, se2, err2 := e.runBin(t, atoll, args...)
		if so1 != so2 || se1 != se2 || fcExit(err1) != fcExit(err2) {
			t.Logf("fleetctl %s: real exit %d, %d bytes of stdout, stderr %q; atoll exit %d, stdout %q, stderr %q",
				strings.Join(args, " "), fcExit(err1), len(so1), fcFirstLine(se1), fcExit(err2), so2, se2)
		}
	}
	saved := e.endpoint
	e.endpoint = "http://" + e.c.Machines[0].IP + ":1"
	defer func() { e.endpoint = saved }()
	for _, args := range [][]string{{"list-machines"}, {"list-units"}, {"list-unit-files"}} {
		e.fcCompare(t, atoll, args, args, nil)
	}
}

// TestFleetctlClusterChanges ports fleet's cluster_test (and the
// migration half of TestScheduleMachineOf) to a four-machine cluster with
// TLS, fleetctl talking https with the cluster's client certificate: a
// crashed machine's units are launched elsewhere, nothing else moves, and
// a MachineOf pair moves together.
func TestFleetctlClusterChanges(t *testing.T) {
	needRoot(t)
	bin := fleetctltest.Build(t)
	fixtures := fcFixturesDir(t)
	c, opts := upCluster(t, UpOptions{Machines: 4})
	e := newFcEnv(t, c, bin, fixtures)
	e.waitMachines(t, 4)
	prefix := "cl-"
	dir := t.TempDir()

	// TestDynamicClusterNewMemberUnitMigration: three conflicting units on
	// four machines, started with a blocking start.
	var conflicts []string
	for i := 0; i < 3; i++ {
		conflicts = append(conflicts, e.fixture(t, dir, prefix, fmt.Sprintf("conflict.%d.service", i)))
	}
	e.must(t, append([]string{"start", fcBlock}, conflicts...)...)
	stdout, _ := e.must(t, "list-units", "--no-legend")
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 3 {
		t.Fatalf("did not find 3 units in cluster:\n%s", stdout)
	}
	e.waitActive(t, prefix, 3, nil)
	// A MachineOf pair joins them, on the machine left free.
	e.must(t, "start", "--no-block", e.fixture(t, dir, prefix, "ping.1.service"), e.fixture(t, dir, prefix, "pong.1.service"))
	ping, pong := prefix+"ping.1.service", prefix+"pong.1.service"
	before := single(t, e.waitActive(t, prefix, 5, nil))
	if before[ping] != before[pong] {
		t.Fatalf("%s and %s are not on the same machine: %v", ping, pong, before)
	}
	t.Logf("before: %v", before)

	conflictFree := func(where map[string]string, unit string) error {
		for u, m := range where {
			if u != unit && strings.Contains(u, "conflict.") && m == where[unit] {
				return fmt.Errorf("unit %s landed on occupied machine %s (with %s)", unit, m, u)
			}
		}
		return nil
	}
	crash := func(victim string) {
		t.Helper()
		for _, m := range c.Machines {
			if m.Name != victim {
				e.use(m.Name) // talk to a machine that lives
				break
			}
		}
		t.Logf("crashing %s (%s)", victim, e.ids[victim])
		if err := c.Crash(opts, victim); err != nil {
			t.Fatal(err)
		}
		e.waitMachines(t, len(c.Machines)-1)
	}

	// Kill the machine of conflict.1: it is launched elsewhere, on the one
	// machine without a conflicting unit; nothing else moves.
	unit := prefix + "conflict.1.service"
	victim := e.names[before[unit]]
	crash(victim)
	var after map[string]string
	e.waitActive(t, prefix, 5, func(active map[string][]fcUnitRow) error {
		after = map[string]string{}
		for u, rows := range active {
			if len(rows) != 1 {
				return fmt.Errorf("unit %s running in multiple locations: %v", u, rows)
			}
			after[u] = rows[0].Machine
		}
		if after[unit] == before[unit] {
			return fmt.Errorf("unit %s did not migrate from machine %s", unit, before[unit])
		}
		return conflictFree(after, unit)
	})
	for u, m := range before {
		if u != unit && after[u] != m {
			t.Errorf("unit %s moved from %s to %s: unnecessary churn in the cluster", u, m, after[u])
		}
	}
	t.Logf("after %s crashed: %v", victim, after)

	// TestDynamicClusterMemberReboot, in part: the machine comes back and
	// nothing moves to it. A unit pinned to it shows the engine has it.
	if err := c.Start(opts, victim); err != nil {
		t.Fatal(err)
	}
	e.waitMachines(t, len(c.Machines))
	pinned := fcWrite(t, dir, prefix+"back.service", fcUnit("", "MachineID="+e.ids[victim]))
	e.must(t, "start", fcBlock, pinned)
	back := single(t, e.waitActive(t, prefix, 6, nil))
	for u, m := range after {
		if back[u] != m {
			t.Errorf("unit %s moved from %s to %s when %s came back", u, m, back[u], victim)
		}
	}

	// TestScheduleMachineOf, second half: kill the pair's machine; the
	// pair moves together, conflict.* stay apart, nothing else moves.
	victim2 := e.names[back[ping]]
	crash(victim2)
	var final map[string]string
	e.waitActive(t, prefix, 6, func(active map[string][]fcUnitRow) error {
		final = map[string]string{}
		for u, rows := range active {
			if len(rows) != 1 {
				return fmt.Errorf("unit %s running in multiple locations: %v", u, rows)
			}
			final[u] = rows[0].Machine
		}
		switch {
		case final[ping] == back[ping]:
			return fmt.Errorf("unit %s did not appear to migrate", ping)
		case final[ping] != final[pong]:
			return fmt.Errorf("unit %s did not migrate with %s: %v", pong, ping, final)
		}
		for u := range final {
			if strings.Contains(u, "conflict.") {
				if err := conflictFree(final, u); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for u, m := range back {
		if m != e.ids[victim2] && final[u] != m {
			t.Errorf("unit %s moved from %s to %s though its machine lives", u, m, final[u])
		}
	}
	t.Logf("after %s crashed: %v", victim2, final)
}
