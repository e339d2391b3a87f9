package fleetctltest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const machineID = "113f16a7e4cf4f0fbad54e1cbd1b7b5c"

// fleet's JSON error shape (api/serialization.go sendError).
func sendError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q}}`, code, msg)
}

func sendJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func TestVersionAndHelp(t *testing.T) {
	bin := Build(t)
	if fi, err := os.Stat(bin); err == nil {
		t.Logf("fleetctl: %s (%d bytes)", bin, fi.Size())
	}

	// The endpoint is never dialled by these commands.
	stdout, stderr, err := Run(t, bin, "http://127.0.0.1:1", "version")
	if err != nil {
		t.Fatalf("fleetctl version: %v\nstderr: %s", err, stderr)
	}
	if want := "fleetctl version v1.0.0\n"; stdout != want {
		t.Errorf("fleetctl version = %q, want %q", stdout, want)
	}

	stdout, stderr, err = Run(t, bin, "http://127.0.0.1:1", "--help")
	if err != nil {
		t.Fatalf("fleetctl --help: %v\nstderr: %s", err, stderr)
	}
	for _, want := range []string{"VERSION:\n\tv1.0.0\n", "list-machines", "--endpoint string", "--driver string"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("fleetctl --help lacks %q:\n%s", want, stdout)
		}
	}
}

func TestListMachines(t *testing.T) {
	bin := Build(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/fleet/v1/machines" {
			sendError(w, http.StatusNotFound, "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"machines":[{"id":%q,"primaryIP":"10.0.0.3","metadata":{"region":"eu"}}]}`, machineID)
	}))
	defer srv.Close()

	stdout, stderr, err := Run(t, bin, srv.URL, "list-machines")
	if err != nil {
		t.Fatalf("list-machines: %v\nstderr: %s", err, stderr)
	}
	// text/tabwriter(minwidth 0, tabwidth 8, padding 1, padchar '\t').
	want := "MACHINE\t\tIP\t\tMETADATA\n" +
		"113f16a7...\t10.0.0.3\tregion=eu\n"
	if stdout != want {
		t.Errorf("list-machines stdout = %q, want %q", stdout, want)
	}

	stdout, _, err = Run(t, bin, srv.URL, "list-machines", "--full", "--no-legend")
	if err != nil {
		t.Fatal(err)
	}
	if want := machineID + "\t10.0.0.3\tregion=eu\n"; stdout != want {
		t.Errorf("list-machines --full --no-legend = %q, want %q", stdout, want)
	}
}

// request is what the recording server saw.
type request struct {
	Method, Path, Query, Host string
	ContentType, UserAgent    string
	AcceptEncoding            string
	Body                      string
}

func (r request) String() string {
	s := r.Method + " " + r.Path
	if r.Query != "" {
		s += "?" + r.Query
	}
	if r.ContentType != "" {
		s += " [Content-Type: " + r.ContentType + "]"
	}
	if r.Body != "" {
		s += " " + r.Body
	}
	return s
}

type unit struct {
	Name         string           `json:"name,omitempty"`
	Options      []map[string]any `json:"options,omitempty"`
	DesiredState string           `json:"desiredState,omitempty"`
	CurrentState string           `json:"currentState,omitempty"`
	MachineID    string           `json:"machineID,omitempty"`
}

// fakeFleet is a small in-memory fleet API (modelled on fleet v1.0.0's
// api package) that records every request.
type fakeFleet struct {
	mu    sync.Mutex
	log   []request
	units map[string]*unit
	// pageMachines splits the machine list into two pages.
	pageMachines bool
	// fail, when set, answers every request with this status and body.
	failCode int
	failBody string
}

func newFakeFleet() *fakeFleet { return &fakeFleet{units: map[string]*unit{}} }

// set changes the server's behaviour between fleetctl runs.
func (f *fakeFleet) set(fn func(f *fakeFleet)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeFleet) take() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.log
	f.log = nil
	return l
}

func (f *fakeFleet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, request{
		Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Host: r.Host,
		ContentType: r.Header.Get("Content-Type"), UserAgent: r.Header.Get("User-Agent"),
		AcceptEncoding: r.Header.Get("Accept-Encoding"), Body: strings.TrimSpace(string(body)),
	})
	w.Header().Set("Server", "fleetd/v1.0.0")
	if f.failCode != 0 {
		w.WriteHeader(f.failCode)
		io.WriteString(w, f.failBody)
		return
	}

	// Accept any prefix before /fleet/v1/ (fleetctl keeps the endpoint's path).
	i := strings.Index(r.URL.Path, "/fleet/v1/")
	if i < 0 {
		sendError(w, http.StatusNotFound, "")
		return
	}
	p := r.URL.Path[i+len("/fleet/v1/"):]
	q := r.URL.Query()
	switch {
	case p == "machines" && r.Method == http.MethodGet:
		m1 := map[string]any{"id": machineID, "primaryIP": "10.0.0.3", "metadata": map[string]string{"region": "eu"}}
		m2 := map[string]any{"id": "22222222222222222222222222222222", "primaryIP": "10.0.0.4"}
		switch {
		case !f.pageMachines:
			sendJSON(w, 200, map[string]any{"machines": []any{m1, m2}})
		case q.Get("nextPageToken") == "":
			sendJSON(w, 200, map[string]any{"machines": []any{m1}, "nextPageToken": "page2"})
		default:
			sendJSON(w, 200, map[string]any{"machines": []any{m2}})
		}
	case p == "units" && r.Method == http.MethodGet:
		var us []*unit
		for _, u := range f.units {
			us = append(us, u)
		}
		sendJSON(w, 200, map[string]any{"units": us})
	case p == "state" && r.Method == http.MethodGet:
		var ss []map[string]string
		for _, u := range f.units {
			if u.CurrentState == "launched" {
				ss = append(ss, map[string]string{
					"name": u.Name, "hash": "0123456789abcdef0123456789abcdef01234567",
					"machineID": u.MachineID, "systemdLoadState": "loaded",
					"systemdActiveState": "active", "systemdSubState": "running",
				})
			}
		}
		sendJSON(w, 200, map[string]any{"states": ss})
	case strings.HasPrefix(p, "state/") && r.Method == http.MethodGet:
		u := f.units[strings.TrimPrefix(p, "state/")]
		if u == nil || u.CurrentState != "launched" {
			sendError(w, http.StatusNotFound, "unit does not exist")
			return
		}
		sendJSON(w, 200, map[string]string{"name": u.Name, "machineID": u.MachineID,
			"systemdLoadState": "loaded", "systemdActiveState": "active", "systemdSubState": "running"})
	case strings.HasPrefix(p, "units/"):
		name := strings.TrimPrefix(p, "units/")
		u := f.units[name]
		switch r.Method {
		case http.MethodGet:
			if u == nil {
				sendError(w, http.StatusNotFound, "unit does not exist")
				return
			}
			sendJSON(w, 200, u)
		case http.MethodDelete:
			if u == nil {
				sendError(w, http.StatusNotFound, "unit does not exist")
				return
			}
			delete(f.units, name)
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPut:
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				sendError(w, http.StatusUnsupportedMediaType, "only acceptable Content-Type is application/json")
				return
			}
			var in unit
			if err := json.Unmarshal(body, &in); err != nil {
				sendError(w, http.StatusBadRequest, "unable to decode body: "+err.Error())
				return
			}
			switch {
			case u == nil && len(in.Options) == 0:
				sendError(w, http.StatusConflict, "unit does not exist and options field empty")
			case u == nil || len(in.Options) > 0:
				ds := in.DesiredState
				if ds == "" {
					ds = "inactive"
				}
				f.units[name] = &unit{Name: name, Options: in.Options, DesiredState: ds, CurrentState: "inactive"}
				w.WriteHeader(http.StatusCreated)
			case in.DesiredState == "":
				sendError(w, http.StatusConflict, "must provide DesiredState to update existing unit")
			default:
				// Pretend the agent acts at once.
				u.DesiredState = in.DesiredState
				u.CurrentState = in.DesiredState
				if in.DesiredState == "launched" {
					u.MachineID = machineID
				}
				w.WriteHeader(http.StatusNoContent)
			}
		default:
			sendError(w, http.StatusMethodNotAllowed, "")
		}
	default:
		sendError(w, http.StatusNotFound, "")
	}
}

// TestWhatFleetctlSends drives the real fleetctl against a recording fake
// fleet API; the request lists asserted here are documented in doc.go.
func TestWhatFleetctlSends(t *testing.T) {
	bin := Build(t)
	ff := newFakeFleet()
	srv := httptest.NewServer(ff)
	defer srv.Close()

	unitFile := filepath.Join(t.TempDir(), "hello.service")
	if err := os.WriteFile(unitFile, []byte("[Unit]\nDescription=Hello\n\n[Service]\nExecStart=/bin/sleep 1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// run runs one command and compares the METHOD path?query lines, in
	// order.
	run := func(t *testing.T, endpoint string, want []string, args ...string) (string, string, []request) {
		t.Helper()
		ff.take()
		stdout, stderr, err := Run(t, bin, endpoint, args...)
		if err != nil {
			t.Fatalf("fleetctl %v: %v\nstdout: %s\nstderr: %s", args, err, stdout, stderr)
		}
		log := ff.take()
		var got []string
		for _, r := range log {
			t.Logf("%s", r)
			s := r.Method + " " + r.Path
			if r.Query != "" {
				s += "?" + r.Query
			}
			got = append(got, s)
		}
		if !slices.Equal(got, want) {
			t.Errorf("fleetctl %v requests:\n got %q\nwant %q", args, got, want)
		}
		for _, r := range log {
			if r.UserAgent != "google-api-go-client/0.5" {
				t.Errorf("User-Agent = %q", r.UserAgent)
			}
			if r.AcceptEncoding != "gzip" {
				t.Errorf("Accept-Encoding = %q", r.AcceptEncoding)
			}
			if strings.Contains(r.Path, "discovery") {
				t.Errorf("fleetctl fetched %s", r.Path)
			}
		}
		return stdout, stderr, log
	}

	t.Run("list-machines/paged", func(t *testing.T) {
		ff.set(func(f *fakeFleet) { f.pageMachines = true })
		defer ff.set(func(f *fakeFleet) { f.pageMachines = false })
		stdout, _, _ := run(t, srv.URL, []string{
			"GET /fleet/v1/machines?alt=json",
			"GET /fleet/v1/machines?alt=json&nextPageToken=page2",
		}, "list-machines")
		if !strings.Contains(stdout, "22222222...\t10.0.0.4\t-\n") {
			t.Errorf("second page missing:\n%s", stdout)
		}
	})

	t.Run("submit", func(t *testing.T) {
		stdout, stderr, log := run(t, srv.URL, []string{
			"GET /fleet/v1/units/hello.service?alt=json", // 404: not there yet
			"PUT /fleet/v1/units/hello.service?alt=json", // create, 201
			"GET /fleet/v1/units/hello.service?alt=json", // poll until currentState=inactive
		}, "submit", unitFile)
		put := log[1]
		if put.ContentType != "application/json" {
			t.Errorf("PUT Content-Type = %q", put.ContentType)
		}
		wantBody := `{"name":"hello.service","options":[{"name":"Description","section":"Unit","value":"Hello"},{"name":"ExecStart","section":"Service","value":"/bin/sleep 1000"}]}`
		if put.Body != wantBody {
			t.Errorf("PUT body = %s\nwant %s", put.Body, wantBody)
		}
		if want := "Unit hello.service inactive\n"; stdout != want || stderr != "" {
			t.Errorf("submit stdout=%q stderr=%q, want %q", stdout, stderr, want)
		}
	})

	t.Run("list-unit-files", func(t *testing.T) {
		stdout, _, _ := run(t, srv.URL, []string{"GET /fleet/v1/units?alt=json"}, "list-unit-files")
		want := "UNIT\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET\nhello.service\t"
		if !strings.HasPrefix(stdout, want) || !strings.HasSuffix(stdout, "\tinactive\tinactive\t-\n") {
			t.Errorf("list-unit-files:\n%q", stdout)
		}
	})

	t.Run("start--no-block", func(t *testing.T) {
		stdout, _, log := run(t, srv.URL, []string{
			"GET /fleet/v1/units/hello.service?alt=json", // exists? (then compared with the local file)
			"GET /fleet/v1/units/hello.service?alt=json", // current desiredState
			"PUT /fleet/v1/units/hello.service?alt=json", // {"desiredState":"launched","name":...}
		}, "start", "--no-block", unitFile)
		var put request
		for _, r := range log {
			if r.Method == http.MethodPut {
				put = r
			}
		}
		if want := `{"desiredState":"launched","name":"hello.service"}`; put.Body != want || put.ContentType != "application/json" {
			t.Errorf("PUT = %s, want body %s", put, want)
		}
		if want := "Triggered unit hello.service start\nTriggered unit hello.service start\n"; stdout != want {
			t.Errorf("start stdout = %q, want %q", stdout, want)
		}
	})

	t.Run("list-units", func(t *testing.T) {
		stdout, _, _ := run(t, srv.URL, []string{
			"GET /fleet/v1/state?alt=json",
			"GET /fleet/v1/machines?alt=json", // to render MACHINE as id.../ip
		}, "list-units")
		want := "UNIT\t\tMACHINE\t\t\tACTIVE\tSUB\n" +
			"hello.service\t113f16a7.../10.0.0.3\tactive\trunning\n"
		if stdout != want {
			t.Errorf("list-units = %q, want %q", stdout, want)
		}
	})

	t.Run("start-blocking", func(t *testing.T) {
		world := filepath.Join(filepath.Dir(unitFile), "world.service")
		if err := os.WriteFile(world, []byte("[Service]\nExecStart=/bin/true\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, _, _ := run(t, srv.URL, []string{
			"GET /fleet/v1/units/world.service?alt=json", // 404
			"PUT /fleet/v1/units/world.service?alt=json", // create (options, no desiredState)
			"GET /fleet/v1/units/world.service?alt=json", // poll until currentState=inactive
			"GET /fleet/v1/units/world.service?alt=json", // current desiredState
			"PUT /fleet/v1/units/world.service?alt=json", // desiredState=launched
			"GET /fleet/v1/units/world.service?alt=json", // poll until currentState=launched
			"GET /fleet/v1/machines?alt=json",            // machineID -> "id.../ip"
			"GET /fleet/v1/state/world.service?alt=json", // poll until systemd active+loaded
		}, "start", world)
		want := "Unit world.service inactive\nUnit world.service launched on 113f16a7.../10.0.0.3\n"
		if stdout != want {
			t.Errorf("start stdout = %q, want %q", stdout, want)
		}
	})

	t.Run("destroy--no-block", func(t *testing.T) {
		// fleetctl v1.0.0 inverts --no-block for destroy: with it, it
		// polls until the unit is gone.
		run(t, srv.URL, []string{
			"GET /fleet/v1/units?alt=json",
			"DELETE /fleet/v1/units/world.service?alt=json",
			"GET /fleet/v1/units/world.service?alt=json", // until 404
		}, "destroy", "--no-block", "world.service")
	})

	t.Run("destroy", func(t *testing.T) {
		stdout, _, _ := run(t, srv.URL, []string{
			"GET /fleet/v1/units?alt=json",
			"DELETE /fleet/v1/units/hello.service?alt=json",
		}, "destroy", "hello.service")
		if stdout != "Destroyed hello.service\n" {
			t.Errorf("destroy stdout = %q", stdout)
		}
	})

	t.Run("path-prefix", func(t *testing.T) {
		run(t, srv.URL+"/some/prefix/", []string{"GET /some/prefix/fleet/v1/machines?alt=json"}, "list-machines")
	})

	t.Run("unix-socket", func(t *testing.T) {
		dir, err := os.MkdirTemp("", "fc")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		sock := filepath.Join(dir, "fleet.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		us := &http.Server{Handler: ff, ReadHeaderTimeout: 10 * time.Second}
		go us.Serve(l)
		defer us.Close()
		_, _, log := run(t, "unix://"+sock, []string{"GET /fleet/v1/machines?alt=json"}, "list-machines")
		if len(log) > 0 && log[0].Host != "domain-sock" {
			t.Errorf("Host over unix socket = %q, want domain-sock", log[0].Host)
		}
	})
}

// TestErrors records how fleetctl reports server errors.
func TestErrors(t *testing.T) {
	bin := Build(t)
	ff := newFakeFleet()
	srv := httptest.NewServer(ff)
	defer srv.Close()

	for _, tc := range []struct {
		name       string
		code       int
		body       string
		args       []string
		wantStderr string
	}{{
		name: "json-error", code: 500, body: `{"error":{"code":500,"message":"boom"}}`,
		args:       []string{"list-machines"},
		wantStderr: "Error retrieving list of active machines from fleet API (googleapi: Error 500: boom)\n",
	}, {
		name: "text-error", code: 503, body: "not today",
		args:       []string{"list-units"},
		wantStderr: "Error retrieving list of units from repository: googleapi: got HTTP response code 503 with body: not today\n",
	}, {
		name: "json-error-without-message", code: 500, body: `{"error":{"code":500,"message":""}}`,
		args:       []string{"list-unit-files"},
		wantStderr: "Error retrieving list of units from repository: googleapi: got HTTP response code 500 with body: {\"error\":{\"code\":500,\"message\":\"\"}}\n",
	}, {
		name: "bad-json", code: 200, body: `{"machines":`,
		args:       []string{"list-machines"},
		wantStderr: "Error retrieving list of active machines from fleet API (unexpected EOF)\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ff.set(func(f *fakeFleet) { f.failCode, f.failBody = tc.code, tc.body })
			stdout, stderr, err := Run(t, bin, srv.URL, tc.args...)
			t.Logf("exit: %v\nstdout: %q\nstderr: %q", err, stdout, stderr)
			if err == nil {
				t.Errorf("fleetctl %v succeeded", tc.args)
			}
			if !strings.HasPrefix(stderr, tc.wantStderr) {
				t.Errorf("stderr = %q, want prefix %q", stderr, tc.wantStderr)
			}
		})
	}
	ff.set(func(f *fakeFleet) { f.failCode = 0 })

	t.Run("connection-refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		stdout, stderr, err := Run(t, bin, "http://"+addr, "list-units")
		t.Logf("exit: %v\nstdout: %q\nstderr: %q", err, stdout, stderr)
		if err == nil || !strings.Contains(stderr, "connection refused") {
			t.Errorf("want failure mentioning connection refused")
		}
	})
}
