package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// paths lays out StateDir (see the package documentation).
type paths struct{ root string }

func (p paths) podsDir() string                { return filepath.Join(p.root, "pods") }
func (p paths) recordPath(podID string) string { return filepath.Join(p.root, "pods", podID+".json") }
func (p paths) podLockPath(podID string) string {
	return filepath.Join(p.root, "pods", podID+".lock")
}
func (p paths) addrDir() string  { return filepath.Join(p.root, "default") }
func (p paths) portDir() string  { return filepath.Join(p.root, "ports") }
func (p paths) lockDir() string  { return filepath.Join(p.root, "locks") }
func (p paths) cniCache() string { return filepath.Join(p.root, "cni") }

func (p paths) mkdirs() error {
	for _, d := range []string{p.podsDir(), p.addrDir(), p.portDir(), p.lockDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
	}
	return nil
}

const (
	kindBuiltin = "builtin"
	kindCNI     = "cni"
)

// record is what Setup writes to pods/<id>.json before it changes
// anything, and updates as it goes: Teardown needs nothing else.
type record struct {
	PodID string        `json:"podID"`
	NetNS string        `json:"netns"`
	NSDev uint64        `json:"nsDev"` // identity of the namespace, to tell
	NSIno uint64        `json:"nsIno"` // a reused /proc/<pid> from the pod's
	Ports []PortMapping `json:"ports,omitempty"`
	// Networks in attachment order; Ports are published on the first.
	Networks []netRecord `json:"networks"`
}

type netRecord struct {
	Name   string `json:"name"`
	IfName string `json:"ifName"`
	Kind   string `json:"kind"` // kindBuiltin or kindCNI
	// Built-in network.
	Bridge   string `json:"bridge,omitempty"`
	HostVeth string `json:"hostVeth,omitempty"`
	Subnet   string `json:"subnet,omitempty"`
	Addr     string `json:"addr,omitempty"` // allocated address: file under default/
	// CNI network: the config list as loaded, for DEL when libcni's cache
	// has nothing (an ADD that failed half way).
	Conf json.RawMessage `json:"conf,omitempty"`
	// The attachment, once made.
	IP      string   `json:"ip,omitempty"` // CIDR
	Gateway string   `json:"gateway,omitempty"`
	DNS     []string `json:"dns,omitempty"`
	Done    bool     `json:"done,omitempty"`
}

func (n *netRecord) setAttachment(a Attachment) {
	n.Done = true
	n.IP = ""
	if a.IP.IP != nil {
		n.IP = a.IP.String()
	}
	n.Gateway = ""
	if a.Gateway != nil {
		n.Gateway = a.Gateway.String()
	}
	n.DNS = a.DNS
}

func (n *netRecord) attachment() (Attachment, bool) {
	if !n.Done {
		return Attachment{}, false
	}
	a := Attachment{Network: n.Name, IfName: n.IfName, DNS: n.DNS}
	if ip, ipnet, err := net.ParseCIDR(n.IP); err == nil {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		a.IP = net.IPNet{IP: ip, Mask: ipnet.Mask}
	}
	if gw := net.ParseIP(n.Gateway); gw != nil {
		if v4 := gw.To4(); v4 != nil {
			gw = v4
		}
		a.Gateway = gw
	}
	return a, true
}

// alive reports whether the pod's namespace still exists: netnsPath (or the
// recorded path when empty) names the very namespace Setup saw.
func (r *record) alive(netnsPath string) bool {
	if netnsPath == "" {
		netnsPath = r.NetNS
	}
	id, err := nsIdentity(netnsPath)
	return err == nil && id.dev == r.NSDev && id.ino == r.NSIno
}

// createRecord writes rec only if the pod has none: link(2) of a complete
// temporary file, so a reader never sees half a record.
func (p paths) createRecord(rec *record) error {
	tmp, err := p.writeTemp(rec)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, p.recordPath(rec.PodID)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrAlreadySetUp
		}
		return fmt.Errorf("create record: %w", err)
	}
	return nil
}

// writeRecord replaces rec atomically. The caller holds the pod's lock.
func (p paths) writeRecord(rec *record) error {
	tmp, err := p.writeTemp(rec)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, p.recordPath(rec.PodID)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write record: %w", err)
	}
	return nil
}

func (p paths) writeTemp(rec *record) (string, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode record: %w", err)
	}
	// The pod's lock makes the name unique. No fsync: StateDir is on tmpfs
	// and dies with the host, like the pods.
	tmp := p.recordPath(rec.PodID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return "", fmt.Errorf("write record: %w", err)
	}
	return tmp, nil
}

func (p paths) readRecord(podID string) (*record, error) {
	b, err := os.ReadFile(p.recordPath(podID))
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("record %s: %w", p.recordPath(podID), err)
	}
	return &rec, nil
}

func (p paths) removeRecord(podID string) error {
	os.Remove(p.recordPath(podID) + ".tmp") // left by a Setup that was killed
	if err := os.Remove(p.recordPath(podID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove record: %w", err)
	}
	return nil
}

// fileLock is an flock(2) on a file.
type fileLock struct {
	f    *os.File
	path string
}

// lockFile takes an exclusive flock on path, creating it. A lock file can be
// removed by its holder (remove): whoever then gets the lock on the removed
// file sees that the path names another file, or none, and tries again.
func lockFile(path string, nonBlocking bool) (*fileLock, error) {
	how := unix.LOCK_EX
	if nonBlocking {
		how |= unix.LOCK_NB
	}
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock: %w", err)
		}
		if err := flock(f, how); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, errBusy
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		var held, named unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := unix.Stat(path, &named); err == nil && named.Ino == held.Ino && named.Dev == held.Dev {
			return &fileLock{f: f, path: path}, nil
		}
		f.Close()
	}
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

func (l *fileLock) unlock() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// remove deletes the lock file while holding it (the pod is gone).
func (l *fileLock) remove() {
	if l.f != nil {
		os.Remove(l.path)
	}
}

func (p paths) lockPod(podID string, nonBlocking bool) (*fileLock, error) {
	return lockFile(p.podLockPath(podID), nonBlocking)
}

// reserve creates dir/name holding podID with O_CREAT|O_EXCL: the file
// system is the allocator, so concurrent pods need no lock and no daemon.
// It returns fs.ErrExist when another pod holds the name.
func reserve(dir, name, podID string) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(podID)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(filepath.Join(dir, name))
		return werr
	}
	return nil
}

// release removes dir/name if podID holds it. Only the holder removes its
// files, under its pod lock, so the check cannot race with another remover
// (reclaiming an orphan takes the orphan lock and checks again).
func release(dir, name, podID string) error {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if string(b) != podID {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// orphanAge is how long an empty reservation (its writer died between
// create and write) is left alone before it is reclaimed.
const orphanAge = time.Minute

// reclaim frees the reservation dir/name if its holder is dead: a pod whose
// namespace is gone is torn down as gc would (that releases all it holds);
// a file whose holder has no record is removed. It reports whether the name
// may now be free, and who holds it otherwise.
func (e *env) reclaim(ctx context.Context, dir, name, podID string) (freed bool, holder string, err error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, "", nil
	}
	if err != nil {
		return false, "", err
	}
	holder = string(b)
	if holder == podID {
		return false, holder, nil
	}
	if holder == "" {
		fi, err := os.Stat(path)
		if err != nil || time.Since(fi.ModTime()) < orphanAge {
			return err != nil, holder, nil
		}
		return e.removeOrphan(path, holder)
	}
	if checkPodID(holder) != nil {
		return e.removeOrphan(path, holder)
	}
	rec, err := e.paths.readRecord(holder)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return e.removeOrphan(path, holder)
	case err != nil:
		return false, holder, err
	case rec.alive(""):
		return false, holder, nil
	}
	if err := e.teardown(ctx, holder, "", true); err != nil {
		if errors.Is(err, errBusy) {
			return false, holder, nil // being set up or torn down right now
		}
		return false, holder, fmt.Errorf("reclaim from dead pod %s: %w", holder, err)
	}
	return true, holder, nil
}

// removeOrphan removes path if it still holds holder and holder has no
// record, under a lock so that two reclaimers cannot remove a file that one
// of them has just created anew.
func (e *env) removeOrphan(path, holder string) (bool, string, error) {
	l, err := lockFile(filepath.Join(e.paths.lockDir(), "orphans"), false)
	if err != nil {
		return false, holder, err
	}
	defer l.unlock()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, "", nil
	}
	if err != nil || !bytes.Equal(b, []byte(holder)) {
		return false, string(b), err
	}
	if holder != "" && checkPodID(holder) == nil {
		if _, err := os.Stat(e.paths.recordPath(holder)); err == nil {
			return false, holder, nil
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, holder, err
	}
	return true, "", nil
}
