// Package pod keeps the state of pods on disk, after rkt's model: there is
// no daemon, so the file system is the database. Each pod is a directory
// named by its UUID under a directory per phase, and moves between phases by
// an atomic rename(2); an exclusive flock(2) on the pod's directory says
// that a process is working on it (preparing it, running it, deleting it).
// The lock lives on the directory's inode, so it follows the pod across
// renames, and the kernel drops it when the holder dies, so a pod killed
// with -9 reads as exited without anyone cleaning up.
//
//	<pods>/embryo/<uuid>          being created
//	<pods>/prepare/<uuid>         locked: preparing; unlocked: aborted prepare
//	<pods>/prepared/<uuid>        ready for run-prepared
//	<pods>/run/<uuid>             locked: running; unlocked: exited
//	<pods>/exited-garbage/<uuid>  exited and marked by gc; removed after the grace period
//	<pods>/garbage/<uuid>         an aborted prepare or a removed pod, deleted next
//
// Inside a pod directory: pod.json (the Manifest), state.json (what the pod
// process recorded when it started: PIDs, networks), apps/<app>/ (the app's
// overlay upper and work directories, its rootfs mount point, status.json
// written by the pod's PID 1, its log) and volumes/<name> for empty
// volumes. What the pod process writes while it runs is replaced by rename
// but not fsynced: it describes processes, which do not outlive the machine.
// What must outlive a reboot (a prepared pod's manifest) is fsynced.
//
// This package imports nothing from atoll but fsutil.
package pod

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Phase is the directory a pod is in.
type Phase string

// The phases, in the order a pod goes through them.
const (
	PhaseEmbryo        Phase = "embryo"
	PhasePrepare       Phase = "prepare"
	PhasePrepared      Phase = "prepared"
	PhaseRun           Phase = "run"
	PhaseExitedGarbage Phase = "exited-garbage"
	PhaseGarbage       Phase = "garbage"
)

var phases = []Phase{PhaseEmbryo, PhasePrepare, PhasePrepared, PhaseRun, PhaseExitedGarbage, PhaseGarbage}

// Errors callers test with errors.Is.
var (
	ErrNotFound  = errors.New("pod not found")
	ErrAmbiguous = errors.New("pod reference is ambiguous")
	ErrLocked    = errors.New("pod is in use by another process")
	ErrPhase     = errors.New("pod is not in the phase this needs")
)

// Store is the pods directory (<root>/pods on a machine). Its zero value
// with Dir set is ready to use.
type Store struct {
	Dir string
}

// Pod is a pod directory this process holds the lock of.
type Pod struct {
	UUID  string
	Phase Phase
	store Store
	lock  *os.File
}

// Dir is the pod's directory in its current phase.
func (p *Pod) Dir() string { return p.store.path(p.Phase, p.UUID) }

// LockFile is the open directory carrying the pod's lock. A process that
// inherits it (the pod's PID 1) keeps the pod locked after this one exits.
func (p *Pod) LockFile() *os.File { return p.lock }

// Close releases this process's hold on the lock.
func (p *Pod) Close() error {
	if p.lock == nil {
		return nil
	}
	err := p.lock.Close()
	p.lock = nil
	return err
}

func (s Store) path(ph Phase, uuid string) string { return filepath.Join(s.Dir, string(ph), uuid) }

// Create makes a new pod with a fresh UUID, locked and in the prepare phase.
func (s Store) Create() (*Pod, error) {
	for _, ph := range phases {
		if err := os.MkdirAll(filepath.Join(s.Dir, string(ph)), 0o711); err != nil {
			return nil, fmt.Errorf("pods directory: %w", err)
		}
	}
	uuid, err := newUUID()
	if err != nil {
		return nil, err
	}
	embryo := s.path(PhaseEmbryo, uuid)
	if err := os.Mkdir(embryo, 0o711); err != nil {
		return nil, fmt.Errorf("create pod %s: %w", uuid, err)
	}
	lock, err := lockDir(embryo, true)
	if err != nil {
		os.Remove(embryo)
		return nil, fmt.Errorf("create pod %s: %w", uuid, err)
	}
	p := &Pod{UUID: uuid, Phase: PhaseEmbryo, store: s, lock: lock}
	if err := p.move(PhasePrepare); err != nil {
		p.Close()
		os.Remove(embryo)
		return nil, err
	}
	return p, nil
}

// WriteManifest writes the pod's manifest (fsynced: a prepared pod outlives
// a reboot).
func (p *Pod) WriteManifest(m *Manifest) error {
	m.Version = ManifestVersion
	m.UUID = p.UUID
	if err := writeManifest(p.Dir(), m); err != nil {
		return fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	return nil
}

// MarkPrepared moves a prepared pod to the prepared phase and releases it.
func (p *Pod) MarkPrepared() error {
	if p.Phase != PhasePrepare {
		return fmt.Errorf("pod %s: %w: in %s, want %s", p.UUID, ErrPhase, p.Phase, PhasePrepare)
	}
	if err := p.move(PhasePrepared); err != nil {
		return err
	}
	return p.Close()
}

// Start moves a pod being prepared straight to the run phase, keeping the
// lock: what `atoll pod run` does after preparing.
func (p *Pod) Start() error {
	if p.Phase != PhasePrepare {
		return fmt.Errorf("pod %s: %w: in %s, want %s", p.UUID, ErrPhase, p.Phase, PhasePrepare)
	}
	return p.move(PhaseRun)
}

// Acquire locks a prepared pod and moves it to the run phase.
func (s Store) Acquire(uuid string) (*Pod, error) {
	dir := s.path(PhasePrepared, uuid)
	lock, err := lockDir(dir, false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pod %s: %w: not prepared", uuid, ErrPhase)
		}
		return nil, fmt.Errorf("pod %s: %w", uuid, err)
	}
	p := &Pod{UUID: uuid, Phase: PhasePrepared, store: s, lock: lock}
	if err := p.move(PhaseRun); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Lock takes the lock of a pod that no process holds, in whatever phase it
// is, so that it can be moved or deleted.
func (s Store) Lock(uuid string) (*Pod, error) {
	for _, ph := range phases {
		dir := s.path(ph, uuid)
		lock, err := lockDir(dir, false)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pod %s: %w", uuid, err)
		}
		// The pod may have moved between the open and the lock.
		if _, err := os.Stat(dir); err != nil {
			lock.Close()
			return s.Lock(uuid)
		}
		return &Pod{UUID: uuid, Phase: ph, store: s, lock: lock}, nil
	}
	return nil, fmt.Errorf("pod %s: %w", uuid, ErrNotFound)
}

// Move renames the locked pod into phase to.
func (p *Pod) Move(to Phase) error { return p.move(to) }

func (p *Pod) move(to Phase) error {
	from := p.Dir()
	if err := os.Rename(from, p.store.path(to, p.UUID)); err != nil {
		return fmt.Errorf("pod %s: move to %s: %w", p.UUID, to, err)
	}
	p.Phase = to
	return nil
}

// Remove deletes the locked pod's directory. It refuses to descend into
// anything still mounted below it (unmounting those first).
func (p *Pod) Remove() error {
	if p.Phase != PhaseGarbage {
		if err := p.move(PhaseGarbage); err != nil {
			return err
		}
	}
	dir := p.Dir()
	if err := unmountBelow(dir); err != nil {
		return fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("pod %s: remove: %w", p.UUID, err)
	}
	return p.Close()
}

// lockDir opens dir and takes its exclusive lock. With wait false it
// retries briefly, since readers probe the lock for an instant, and then
// gives up with ErrLocked.
func lockDir(dir string, fresh bool) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if err != unix.EWOULDBLOCK || fresh || try == 20 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.Close()
	if err == unix.EWOULDBLOCK {
		return nil, ErrLocked
	}
	return nil, fmt.Errorf("lock %s: %w", dir, err)
}

// locked reports whether a process holds dir's lock. It probes with a shared
// lock so that two readers never disturb each other.
func locked(dir string) (bool, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("probe lock of %s: %w", dir, err)
	}
	return false, nil
}

// Entry is one pod as found on disk.
type Entry struct {
	UUID   string
	Phase  Phase
	Dir    string
	Locked bool
	// Changed is when the directory last changed phase (its ctime): gc's
	// grace periods count from it.
	Changed time.Time
}

// State is rkt's name for a pod's phase and lock together.
func (e Entry) State() string {
	switch e.Phase {
	case PhaseEmbryo:
		return "embryo"
	case PhasePrepare:
		if e.Locked {
			return "preparing"
		}
		return "aborted prepare"
	case PhasePrepared:
		return "prepared"
	case PhaseRun:
		if e.Locked {
			return "running"
		}
		return "exited"
	case PhaseExitedGarbage:
		if e.Locked {
			return "exited deleting"
		}
		return "exited garbage"
	default:
		if e.Locked {
			return "deleting"
		}
		return "garbage"
	}
}

// List returns every pod on disk, oldest phase change first.
func (s Store) List() ([]Entry, error) {
	var out []Entry
	for _, ph := range phases {
		names, err := os.ReadDir(filepath.Join(s.Dir, string(ph)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list pods: %w", err)
		}
		for _, n := range names {
			if !n.IsDir() || !validUUID(n.Name()) {
				continue
			}
			e, err := s.entry(ph, n.Name())
			if errors.Is(err, os.ErrNotExist) {
				continue // moved on while we looked
			}
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Changed.Before(out[j].Changed) })
	return out, nil
}

func (s Store) entry(ph Phase, uuid string) (Entry, error) {
	dir := s.path(ph, uuid)
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return Entry{}, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	l, err := locked(dir)
	if err != nil {
		return Entry{}, err
	}
	return Entry{UUID: uuid, Phase: ph, Dir: dir, Locked: l, Changed: time.Unix(st.Ctim.Sec, st.Ctim.Nsec)}, nil
}

// Find resolves a pod reference: a full UUID or a unique prefix of one.
func (s Store) Find(ref string) (Entry, error) {
	ref = strings.ToLower(strings.TrimSpace(ref))
	if ref == "" {
		return Entry{}, fmt.Errorf("pod %q: %w", ref, ErrNotFound)
	}
	all, err := s.List()
	if err != nil {
		return Entry{}, err
	}
	var found []Entry
	for _, e := range all {
		if e.UUID == ref {
			return e, nil
		}
		if strings.HasPrefix(e.UUID, ref) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		return Entry{}, fmt.Errorf("pod %q: %w", ref, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return Entry{}, fmt.Errorf("pod %q: %w: %d pods match", ref, ErrAmbiguous, len(found))
}

func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pod uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// unmountBelow detaches every mount at or under dir, deepest first, so that
// removing dir never reaches into a mounted file system.
func unmountBelow(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	var targets []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			targets = append(targets, mp)
		}
	}
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	for _, t := range targets {
		if err := unix.Unmount(t, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount %s: %w", t, err)
		}
	}
	return nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
