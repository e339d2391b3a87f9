package fleetapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/journal"
)

// fakeJournal is a machine's journal in memory. Entries appended while a
// reader follows reach it.
type fakeJournal struct {
	mu      sync.Mutex
	entries map[string][]journal.Entry
	wake    chan struct{} // closed and replaced on every append
}

func newFakeJournal() *fakeJournal {
	return &fakeJournal{entries: map[string][]journal.Entry{}, wake: make(chan struct{})}
}

func (j *fakeJournal) add(unitName string, lines ...string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, l := range lines {
		seq := uint64(len(j.entries[unitName]) + 1)
		j.entries[unitName] = append(j.entries[unitName], journal.Entry{
			Seq: seq, Time: time.Unix(1700000000, int64(seq)*1000).UTC(), Unit: unitName,
			Stream: journal.StreamStdout, PID: 42, Priority: journal.PriorityInfo, Line: l,
		})
	}
	close(j.wake)
	j.wake = make(chan struct{})
}

func (j *fakeJournal) Read(ctx context.Context, unitName string, o journal.ReadOptions, fn func(journal.Entry) error) error {
	j.mu.Lock()
	es := j.entries[unitName]
	if o.Lines > 0 && len(es) > o.Lines {
		es = es[len(es)-o.Lines:]
	}
	sent := len(j.entries[unitName])
	wake := j.wake
	j.mu.Unlock()
	for _, e := range es {
		if err := fn(e); err != nil {
			return err
		}
	}
	for o.Follow {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
		j.mu.Lock()
		es := j.entries[unitName][sent:]
		sent = len(j.entries[unitName])
		wake = j.wake
		j.mu.Unlock()
		for _, e := range es {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// cluster is servers of several machines over one registry.
type cluster struct {
	t   *testing.T
	reg *registry.Registry
	env map[string]*testEnv // by machine ID
}

func newCluster(t *testing.T, c *clientv3.Client) *cluster {
	return &cluster{t: t, reg: registry.New(c, fmt.Sprintf("/cluster%d/", prefixes.Add(1))), env: map[string]*testEnv{}}
}

// machine starts the server of machine id, with journal j, and registers
// the machine with the server's address.
func (c *cluster) machine(id string, j *fakeJournal, register bool) *testEnv {
	o := Options{
		MachineID: id,
		Registry:  func(context.Context) (*registry.Registry, error) { return c.reg, nil },
		Version:   "test",
	}
	if j != nil {
		o.Journal = j
	}
	e := &testEnv{t: c.t, reg: c.reg, srv: NewServer(o)}
	e.ts = newHTTPTest(c.t, e.srv)
	var err error
	if e.cl, err = NewClient(e.ts.URL, nil); err != nil {
		c.t.Fatal(err)
	}
	if register {
		e.register(registry.Machine{ID: id, APIURL: e.ts.URL})
	}
	c.env[id] = e
	return e
}

// readEntries reads n entries from a journal stream.
func readEntries(t *testing.T, r *bufio.Reader, n int) []journal.Entry {
	t.Helper()
	var out []journal.Entry
	for range n {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading entry %d of %d: %v", len(out)+1, n, err)
		}
		var e journal.Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("entry %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func lines(es []journal.Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, e.Line)
	}
	return strings.Join(s, ",")
}

func TestJournal(t *testing.T) {
	c := newCluster(t, startEtcd(t))
	j1, j2 := newFakeJournal(), newFakeJournal()
	m1 := c.machine("m1", j1, true)
	c.machine("m2", j2, true)
	c.machine("m5", nil, true)
	m1.register(registry.Machine{ID: "m3"}) // serves no API
	// m6 claims m1's address: a misconfiguration that must not loop.
	m1.register(registry.Machine{ID: "m6", APIURL: m1.ts.URL})
	// m7's address answers nothing.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	m1.register(registry.Machine{ID: "m7", APIURL: dead.URL})

	for _, u := range []string{"local.service", "remote.service", "noapi.service", "gone.service", "nojournal.service", "loop.service", "dead.service", "unplaced.service"} {
		m1.submit(u, webUnit, registry.Launched)
	}
	glob := m1.submit("global.service", webUnit+"[X-Fleet]\nGlobal=true\n", registry.Launched)
	placeOn := map[string]string{
		"local.service": "m1", "remote.service": "m2", "noapi.service": "m3", "gone.service": "m4",
		"nojournal.service": "m5", "loop.service": "m6", "dead.service": "m7",
	}
	for u, m := range placeOn {
		m1.place(registry.Placement{Unit: u, Machine: m, Hash: parseUnit(t, u, webUnit).Hash(), DesiredState: registry.Launched})
	}
	m1.place(registry.Placement{Unit: "global.service", Machine: "m1", Hash: glob.Hash(), DesiredState: registry.Launched})
	m1.place(registry.Placement{Unit: "global.service", Machine: "m2", Hash: glob.Hash(), DesiredState: registry.Launched})
	j1.add("local.service", "a", "b", "c")
	j2.add("remote.service", "x", "y", "z")
	j1.add("global.service", "g1")
	j2.add("global.service", "g2")

	ctx := context.Background()
	read := func(e *testEnv, name string, o JournalOptions) (string, error) {
		rc, err := e.cl.Journal(ctx, name, o)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return "", err
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var e journal.Entry
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				return "", fmt.Errorf("entry %q: %w", l, err)
			}
			got = append(got, e.Line)
		}
		return strings.Join(got, ","), nil
	}

	ok := []struct {
		from, unit string
		o          JournalOptions
		want       string
	}{
		{"m1", "local.service", JournalOptions{}, "a,b,c"},
		{"m1", "local.service", JournalOptions{Lines: 2}, "b,c"},
		{"m1", "remote.service", JournalOptions{}, "x,y,z"},
		{"m1", "remote.service", JournalOptions{Lines: 1}, "z"},
		{"m2", "local.service", JournalOptions{Lines: 1}, "c"},
		{"m5", "remote.service", JournalOptions{}, "x,y,z"},
		{"m1", "global.service", JournalOptions{Machine: "m2"}, "g2"},
		{"m2", "global.service", JournalOptions{Machine: "m1"}, "g1"},
		{"m2", "global.service", JournalOptions{Machine: "m2"}, "g2"},
	}
	for _, tt := range ok {
		got, err := read(c.env[tt.from], tt.unit, tt.o)
		if err != nil || got != tt.want {
			t.Errorf("journal of %s from %s %+v: %q, %v; want %q", tt.unit, tt.from, tt.o, got, err, tt.want)
		}
	}
	// The local answer is atoll's local API's format.
	got := m1.do("GET", "/fleet/v1/units/local.service/journal?lines=1", "")
	want := string(j1.entries["local.service"][2].AppendJSON(nil)) + "\n"
	if got.code != 200 || got.body != want || got.header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("local journal: %d %s %q, want 200 application/x-ndjson %q", got.code, got.header.Get("Content-Type"), got.body, want)
	}
	got = m1.do("GET", "/fleet/v1/units/remote.service/journal?lines=1", "")
	if want := string(j2.entries["remote.service"][2].AppendJSON(nil)) + "\n"; got.body != want || got.header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("proxied journal: %s %q, want application/x-ndjson %q", got.header.Get("Content-Type"), got.body, want)
	}

	refused := []struct {
		from, query string
		code        int
		message     string
	}{
		{"m1", "nothing.service/journal", 404, "unit does not exist"},
		{"m1", "unplaced.service/journal", 409, "unit unplaced.service is not scheduled"},
		{"m1", "global.service/journal", 409, "unit global.service runs on 2 machines (m1, m2): name one with machine="},
		{"m1", "noapi.service/journal", 502, "machine m3 serves no API to other machines"},
		{"m1", "gone.service/journal", 502, "machine m4 is not in the cluster"},
		{"m1", "dead.service/journal", 502, "machine m7 at " + dead.URL},
		{"m5", "nojournal.service/journal", 501, "machine m5 has no journal to read"},
		{"m1", "nojournal.service/journal", 501, "machine m5 has no journal to read"},
		{"m2", "loop.service/journal", 502, "machine m6: journal read was passed to machine m1, which is not it"},
		{"m1", "local.service/journal?lines=x", 400, "lines=x: want a number of lines"},
		{"m1", "local.service/journal?lines=-1", 400, "lines=-1"},
		{"m1", "local.service/journal?follow=yes", 400, "follow=yes: want 1 or 0"},
	}
	for _, tt := range refused {
		got := c.env[tt.from].do("GET", "/fleet/v1/units/"+tt.query, "")
		if got.code != tt.code || !strings.Contains(got.errorMessage(), tt.message) {
			t.Errorf("GET %s from %s: %d %s, want %d containing %q", tt.query, tt.from, got.code, got.body, tt.code, tt.message)
		}
	}
	_, err := m1.cl.Journal(ctx, "nothing.service", JournalOptions{})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("client journal of an unknown unit: %v, want ErrNotFound", err)
	}
}

func TestJournalFollow(t *testing.T) {
	c := newCluster(t, startEtcd(t))
	j1, j2 := newFakeJournal(), newFakeJournal()
	m1 := c.machine("m1", j1, true)
	c.machine("m2", j2, true)
	for u, m := range map[string]string{"local.service": "m1", "remote.service": "m2"} {
		m1.submit(u, webUnit, registry.Launched)
		m1.place(registry.Placement{Unit: u, Machine: m, Hash: parseUnit(t, u, webUnit).Hash(), DesiredState: registry.Launched})
	}
	for unitName, j := range map[string]*fakeJournal{"local.service": j1, "remote.service": j2} {
		j.add(unitName, "old1", "old2")
		ctx, cancel := context.WithCancel(context.Background())
		rc, err := m1.cl.Journal(ctx, unitName, JournalOptions{Lines: 1, Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(rc)
		if got := lines(readEntries(t, r, 1)); got != "old2" {
			t.Errorf("%s: first entry %q, want old2", unitName, got)
		}
		j.add(unitName, "new1")
		if got := lines(readEntries(t, r, 1)); got != "new1" {
			t.Errorf("%s: followed entry %q, want new1", unitName, got)
		}
		j.add(unitName, "new2", "new3")
		if got := lines(readEntries(t, r, 2)); got != "new2,new3" {
			t.Errorf("%s: followed entries %q, want new2,new3", unitName, got)
		}
		cancel()
		rc.Close()
	}
}

// TestJournalFollowEmpty checks that a follower gets its answer before
// the first entry exists, through a proxy too.
func TestJournalFollowEmpty(t *testing.T) {
	c := newCluster(t, startEtcd(t))
	j2 := newFakeJournal()
	m1 := c.machine("m1", newFakeJournal(), true)
	c.machine("m2", j2, true)
	m1.submit("remote.service", webUnit, registry.Launched)
	m1.place(registry.Placement{Unit: "remote.service", Machine: "m2", Hash: parseUnit(t, "remote.service", webUnit).Hash(), DesiredState: registry.Launched})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := m1.cl.Journal(ctx, "remote.service", JournalOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	j2.add("remote.service", "first")
	if got := lines(readEntries(t, bufio.NewReader(rc), 1)); got != "first" {
		t.Errorf("followed entry %q, want first", got)
	}
}
