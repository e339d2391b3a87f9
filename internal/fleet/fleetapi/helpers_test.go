package fleetapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/store/storetest"
	"atoll.dev/atoll/internal/unit"
)

// startEtcd starts one real etcd member for the test.
func startEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	opts := storetest.ClusterOptions(t, 1)[0]
	m := storetest.Start(t, opts)
	storetest.WaitReady(t, m)
	return m.Client()
}

var prefixes atomic.Int64

// testEnv is a server on httptest over a registry under its own prefix.
type testEnv struct {
	t   *testing.T
	reg *registry.Registry
	srv *Server
	ts  *httptest.Server
	cl  *Client
}

// newEnv serves a new registry on c; o.Registry is filled in.
func newEnv(t *testing.T, c *clientv3.Client, o Options) *testEnv {
	t.Helper()
	reg := registry.New(c, "/test"+strings.Repeat("x", int(prefixes.Add(1)))+"/")
	if o.Registry == nil {
		o.Registry = func(context.Context) (*registry.Registry, error) { return reg, nil }
	}
	if o.Version == "" {
		o.Version = "test"
	}
	e := &testEnv{t: t, reg: reg, srv: NewServer(o)}
	e.ts = httptest.NewServer(e.srv)
	t.Cleanup(e.ts.Close)
	var err error
	if e.cl, err = NewClient(e.ts.URL, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

// response is what do got back.
type response struct {
	code   int
	header http.Header
	body   string
}

// errorMessage is the message of an error body, "" if the body is not one.
func (r response) errorMessage() string {
	var e schema.Error
	if json.Unmarshal([]byte(r.body), &e) != nil {
		return ""
	}
	return e.Error.Message
}

// do sends a request with an optional JSON body.
func (e *testEnv) do(method, path, body string) response {
	e.t.Helper()
	h := http.Header{}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	return e.doHeader(method, path, body, h)
}

func (e *testEnv) doHeader(method, path, body string, h http.Header) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header = h
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// submit puts a unit in the registry directly.
func (e *testEnv) submit(name, text string, desired registry.DesiredState) *unit.File {
	e.t.Helper()
	f := parseUnit(e.t, name, text)
	if err := e.reg.Submit(context.Background(), f, desired); err != nil {
		e.t.Fatalf("submit %s: %v", name, err)
	}
	return f
}

// place writes a schedule entry as the engine would (unfenced).
func (e *testEnv) place(p registry.Placement) {
	e.t.Helper()
	if _, err := e.reg.Client().Txn(context.Background()).Then(e.reg.OpPlace(p)).Commit(); err != nil {
		e.t.Fatalf("place %s on %s: %v", p.Unit, p.Machine, err)
	}
}

func (e *testEnv) setUnplaced(u registry.Unplaced) {
	e.t.Helper()
	if _, err := e.reg.Client().Txn(context.Background()).Then(e.reg.OpSetUnplaced(u)).Commit(); err != nil {
		e.t.Fatalf("unplaced %s: %v", u.Unit, err)
	}
}

// register puts a machine's presence key, without a lease.
func (e *testEnv) register(m registry.Machine) {
	e.t.Helper()
	if err := e.reg.Register(context.Background(), clientv3.NoLease, m); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) putStates(states ...registry.UnitState) {
	e.t.Helper()
	if err := e.reg.PutStates(context.Background(), clientv3.NoLease, states); err != nil {
		e.t.Fatal(err)
	}
}

func parseUnit(t testing.TB, name, text string) *unit.File {
	t.Helper()
	f, _, err := unit.Parse(name, strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return f
}

// unitJSON is a PUT body for a unit with the given options text.
func unitJSON(t testing.TB, name, text, desired string) string {
	t.Helper()
	u := schema.Unit{Name: name, DesiredState: desired}
	if text != "" {
		u.Options = schemaOptions(parseUnit(t, name, text).Options)
	}
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newHTTPTest(t *testing.T, h http.Handler) *httptest.Server {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// canonicalJSON is s with object keys sorted, so that bodies compare
// whatever order the wire types declare their fields in. fleet v1.0.0
// sends its fields sorted by name (coreos/fleet: schema/v1-gen.go).
func canonicalJSON(t testing.TB, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
