package pod

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestLifecyclePhasesAndStates(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	p, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	if !validUUID(p.UUID) {
		t.Fatalf("uuid %q is not a UUID", p.UUID)
	}
	state := func() string {
		t.Helper()
		e, err := s.Find(p.UUID)
		if err != nil {
			t.Fatal(err)
		}
		return e.State()
	}
	if got := state(); got != "preparing" {
		t.Fatalf("after Create: state %q, want preparing", got)
	}
	m := &Manifest{Hostname: "h", Apps: []App{{Name: "web"}}}
	if err := p.WriteManifest(m); err != nil {
		t.Fatal(err)
	}
	if err := p.MarkPrepared(); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "prepared" {
		t.Fatalf("after MarkPrepared: state %q, want prepared", got)
	}
	run, err := s.Acquire(p.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "running" {
		t.Fatalf("after Acquire: state %q, want running", got)
	}
	// A second runner is refused while the first holds the pod.
	if _, err := s.Acquire(p.UUID); !errors.Is(err, ErrPhase) {
		t.Fatalf("second Acquire: got %v, want ErrPhase", err)
	}
	if _, err := s.Lock(p.UUID); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock of a running pod: got %v, want ErrLocked", err)
	}
	run.Close()
	if got := state(); got != "exited" {
		t.Fatalf("after the runner let go: state %q, want exited", got)
	}
	got, err := ReadManifest(filepath.Join(s.Dir, "run", p.UUID))
	if err != nil {
		t.Fatal(err)
	}
	if got.UUID != p.UUID || got.Version != ManifestVersion || got.Apps[0].Name != "web" {
		t.Fatalf("manifest read back: got %+v", got)
	}
	gp, err := s.Lock(p.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if err := gp.Move(PhaseExitedGarbage); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "exited deleting" {
		t.Fatalf("locked in exited-garbage: state %q, want exited deleting", got)
	}
	if err := gp.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Find(p.UUID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after Remove: got %v, want ErrNotFound", err)
	}
}

// A pod whose process is killed with -9 reads as exited, with no cleanup
// by anyone: the kernel drops the lock.
func TestKilledHolderReadsAsExited(t *testing.T) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("needs flock(1) from util-linux")
	}
	s := Store{Dir: t.TempDir()}
	p, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	dir := p.Dir()
	p.Close()
	holder := exec.Command(flock, "--exclusive", "--no-fork", dir, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()
	waitState(t, s, p.UUID, "running")
	holder.Process.Signal(os.Kill)
	holder.Wait()
	waitState(t, s, p.UUID, "exited")
}

func waitState(t *testing.T, s Store, uuid, want string) {
	t.Helper()
	var got string
	for i := 0; i < 200; i++ {
		e, err := s.Find(uuid)
		if err != nil {
			t.Fatal(err)
		}
		if got = e.State(); got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pod %s: state %q, want %q", uuid, got, want)
}

func TestAbortedPrepare(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	p, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	p.Close() // the preparing process died
	e, err := s.Find(p.UUID[:8])
	if err != nil {
		t.Fatal(err)
	}
	if got := e.State(); got != "aborted prepare" {
		t.Fatalf("state %q, want aborted prepare", got)
	}
}

func TestFindByPrefix(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	var uuids []string
	for i := 0; i < 3; i++ {
		p, err := s.Create()
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		uuids = append(uuids, p.UUID)
	}
	e, err := s.Find(uuids[1][:12])
	if err != nil || e.UUID != uuids[1] {
		t.Fatalf("Find(prefix): got %v %v, want %s", e.UUID, err, uuids[1])
	}
	if _, err := s.Find(""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find(\"\"): got %v, want ErrNotFound", err)
	}
	if _, err := s.Find("zzzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find(zzzz): got %v, want ErrNotFound", err)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`: "/a b",
		`/plain`:  "/plain",
		`/x\134y`: `/x\y`,
		`/bad\9`:  `/bad\9`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResourcesAdd(t *testing.T) {
	a := Resources{MemoryBytes: 100, CPUMilli: 500}
	b := Resources{MemoryBytes: 50, PidsLimit: 10}
	got := a.Add(b)
	want := Resources{MemoryBytes: 150}
	if got != want {
		t.Fatalf("Add: got %+v, want %+v (an unlimited side stays unlimited)", got, want)
	}
}
