package agent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/fleet/agent"
	"atoll.dev/atoll/internal/fleet/engine"
	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/service/memory"
	"atoll.dev/atoll/internal/store"
	"atoll.dev/atoll/internal/store/storetest"
	"atoll.dev/atoll/internal/unit"
)

const prefix = "/test/fleet/"

type harness struct {
	t       *testing.T
	member  *store.Member
	reg     *registry.Registry
	managed map[string]*memory.Manager
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	opts := storetest.ClusterOptions(t, 1)
	m := storetest.Start(t, opts[0])
	storetest.WaitReady(t, m)
	h := &harness{t: t, member: m, reg: registry.New(m.Client(), prefix), managed: map[string]*memory.Manager{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		engine.Run(ctx, engine.Options{Registry: h.reg, MachineID: "engine", SessionTTL: 2 * time.Second, Resync: time.Second})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// agentOn runs an agent for machine id on the given client, with its
// state file in dir, until the returned stop is called or the test ends.
func (h *harness) agentOn(cli *clientv3.Client, id, dir string, mgr *memory.Manager, grace time.Duration) (stop func()) {
	h.t.Helper()
	a, err := agent.New(agent.Options{
		Registry:  registry.New(cli, prefix),
		Manager:   mgr,
		Machine:   registry.Machine{ID: id, PublicIP: "10.0.0.1"},
		TTL:       2 * time.Second,
		Grace:     grace,
		StateFile: filepath.Join(dir, "agent.json"),
		Reconcile: 500 * time.Millisecond,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	h.t.Cleanup(stop)
	return stop
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

func (h *harness) states() map[string]registry.UnitState {
	h.t.Helper()
	s, err := h.reg.Snapshot(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]registry.UnitState{}
	for _, st := range s.States {
		out[st.Unit+"@"+st.Machine] = st
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 0 && i%250 == 0 {
			t.Logf("still waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const service = "[Service]\nExecStart=/bin/sleep 1000\n"

func TestLaunchesReportsStopsAndUnloads(t *testing.T) {
	h := newHarness(t)
	mgr := memory.New()
	h.agentOn(h.reg.Client(), "m1", t.TempDir(), mgr, 0)
	h.submit("web.service", service, registry.Launched)
	eventually(t, "web.service running", func() bool { return slices.Equal(mgr.Running(), []string{"web.service"}) })
	eventually(t, "its state reported", func() bool {
		st := h.states()["web.service@m1"]
		return st.Reached == registry.Launched && st.ActiveState == "active" && st.SubState == "running"
	})
	if err := h.reg.SetDesiredState(context.Background(), "web.service", registry.Loaded); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web.service stopped", func() bool {
		return len(mgr.Running()) == 0 && h.states()["web.service@m1"].Reached == registry.Loaded
	})
	// A new file: the unit restarts on it.
	h.submit("web.service", service+"Environment=V=2\n", registry.Launched)
	eventually(t, "web.service running its new file", func() bool {
		b, _ := mgr.Cat(context.Background(), "web.service")
		return strings.Contains(string(b), "V=2") && len(mgr.Running()) == 1
	})
	if err := h.reg.Destroy(context.Background(), "web.service"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web.service unloaded and its state gone", func() bool {
		_, err := mgr.State(context.Background(), "web.service")
		_, reported := h.states()["web.service@m1"]
		return err != nil && !reported
	})
}

// An agent restarted within its lease's TTL takes the lease back: nothing
// moves and nothing restarts.
func TestRestartKeepsLeaseAndUnits(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	mgr := memory.New()
	stop := h.agentOn(h.reg.Client(), "m1", dir, mgr, 0)
	other := memory.New()
	h.agentOn(h.reg.Client(), "m2", t.TempDir(), other, 0)
	h.submit("a.service", service+"[X-Fleet]\nMachineID=m1\n", registry.Launched)
	h.submit("b.service", service, registry.Launched)
	eventually(t, "both units launched", func() bool {
		st := h.states()
		return st["a.service@m1"].Reached == registry.Launched && len(mgr.Running())+len(other.Running()) == 2
	})
	stop()
	h.agentOn(h.reg.Client(), "m1", dir, mgr, 0)
	time.Sleep(3 * time.Second) // longer than the TTL: a lost lease would have moved units
	if n := mgr.Starts("a.service"); n != 1 {
		t.Fatalf("a.service started %d times across the agent's restart", n)
	}
	if got := len(mgr.Running()) + len(other.Running()); got != 2 {
		t.Fatalf("%d units running, want 2", got)
	}
}

// proxy forwards TCP to target until cut: then it drops every connection
// and refuses new ones, like a partition between a machine and the store.
type proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// A machine cut off from the store stops its units by the time another
// machine starts them, plus the grace period: an observer sampling both
// managers never sees a unit run twice for longer than that.
func TestPartitionedMachineStopsItsUnits(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Second} {
		t.Run(fmt.Sprintf("grace=%s", grace), func(t *testing.T) {
			h := newHarness(t)
			url := h.member.Options().ClientURL()
			p := newProxy(t, url.Host)
			cut, err := store.Dial(store.ClientOptions{Endpoints: []string{"http://" + p.l.Addr().String()}, DialTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cut.Close() })
			m1, m2 := memory.New(), memory.New()
			h.agentOn(cut, "m1", t.TempDir(), m1, grace)
			h.submit("db.service", service, registry.Launched)
			eventually(t, "db.service on m1", func() bool { return slices.Equal(m1.Running(), []string{"db.service"}) })
			h.agentOn(h.reg.Client(), "m2", t.TempDir(), m2, grace)

			// Observe from outside: the longest time both ran it.
			var overlap, longest time.Duration
			var since time.Time
			p.setCut(true)
			cutAt := time.Now()
			for len(m2.Running()) == 0 || len(m1.Running()) > 0 {
				both := len(m1.Running()) > 0 && len(m2.Running()) > 0
				switch {
				case both && since.IsZero():
					since = time.Now()
				case !both && !since.IsZero():
					overlap = time.Since(since)
					longest = max(longest, overlap)
					since = time.Time{}
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !since.IsZero() {
				longest = max(longest, time.Since(since))
			}
			t.Logf("moved after %s; ran twice for %s at most (grace %s)", time.Since(cutAt).Round(time.Millisecond), longest, grace)
			if longest > grace {
				t.Fatalf("db.service ran on two machines for %s, longer than the grace period %s", longest, grace)
			}
			// Healed, m1 takes a new lease and stays out of m2's way.
			p.setCut(false)
			time.Sleep(3 * time.Second)
			if len(m1.Running()) != 0 || !slices.Equal(m2.Running(), []string{"db.service"}) {
				t.Fatalf("after healing: m1 runs %v, m2 runs %v", m1.Running(), m2.Running())
			}
		})
	}
}

// An agent started again after its machine went down (its units with it)
// starts the units it had launched.
func TestStartsLaunchedUnitsAfterAMachineCrash(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	mgr := memory.New()
	stop := h.agentOn(h.reg.Client(), "m1", dir, mgr, 0)
	h.submit("a.service", service, registry.Launched)
	eventually(t, "a.service running", func() bool { return slices.Equal(mgr.Running(), []string{"a.service"}) })
	stop()
	if err := mgr.Stop(context.Background(), "a.service"); err != nil { // the crash
		t.Fatal(err)
	}
	h.agentOn(h.reg.Client(), "m1", dir, mgr, 0)
	eventually(t, "a.service running again", func() bool { return slices.Equal(mgr.Running(), []string{"a.service"}) })
}

// A stop followed by a start while the stop settles (fleetctl's restart)
// restarts the unit once, and it never reads as stopped; a stop alone
// stops it once settled.
func TestStopThenStartRestarts(t *testing.T) {
	h := newHarness(t)
	mgr := memory.New()
	h.agentOn(h.reg.Client(), "m1", t.TempDir(), mgr, 0)
	h.submit("a.service", service, registry.Launched)
	eventually(t, "a.service running", func() bool { return mgr.Starts("a.service") == 1 })
	ctx := context.Background()
	if err := h.reg.SetDesiredState(ctx, "a.service", registry.Loaded); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the agent to hear of the stop", func() bool {
		s, _, err := h.reg.MachineSchedule(ctx, "m1")
		return err == nil && len(s) == 1 && s[0].DesiredState == registry.Loaded
	})
	time.Sleep(agent.StopSettle / 4)
	if got := mgr.Running(); !slices.Equal(got, []string{"a.service"}) {
		t.Fatalf("running %v while the stop settles, want a.service", got)
	}
	if err := h.reg.SetDesiredState(ctx, "a.service", registry.Launched); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a.service restarted", func() bool { return mgr.Starts("a.service") == 2 })
	if got := h.states()["a.service@m1"].Reached; got != registry.Launched {
		t.Fatalf("reached %s after the restart", got)
	}
	if err := h.reg.SetDesiredState(ctx, "a.service", registry.Loaded); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a.service stopped once the stop settled", func() bool {
		return len(mgr.Running()) == 0 && h.states()["a.service@m1"].Reached == registry.Loaded
	})
}
