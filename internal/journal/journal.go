package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Errors the journal returns, wrapped with the unit's name where there is
// one.
var (
	// ErrClosed is returned by every call after Close, and ends a Read
	// that was following when Close was called.
	ErrClosed = errors.New("journal: closed")
	// ErrRemoved ends a Read that was following a unit whose journal was
	// removed.
	ErrRemoved = errors.New("journal: unit's journal removed")
	// ErrInvalidUnit refuses a unit name that cannot name a directory.
	ErrInvalidUnit = errors.New("journal: invalid unit name")
)

// Options bound what the journal keeps. The zero value takes every
// default.
type Options struct {
	// MaxFileBytes is the size at which a unit's current file is rotated
	// (default 1 MiB). A file passes it by at most one record.
	MaxFileBytes int64
	// MaxFiles is how many files a unit keeps, the current one included
	// (default 4, at least 2): a unit's journal takes at most about
	// MaxFiles × MaxFileBytes on disk, and the oldest file goes when a new
	// one starts.
	MaxFiles int
	// QueueBytes bounds the lines a unit has waiting in memory for the
	// disk (default 512 KiB; each line counts its length plus 64 bytes).
	// A captured line that does not fit is dropped and counted; see
	// Capture. It must hold at least one line of MaxLineBytes.
	QueueBytes int
	// MaxLineBytes is the longest line kept as one entry (default 48 KiB,
	// journald's LineMax=); a longer one is cut into entries marked
	// BreakLineMax.
	MaxLineBytes int
	// Now is the clock that stamps lines; time.Now when nil.
	Now func() time.Time
}

// Defaults for Options.
const (
	DefaultMaxFileBytes = 1 << 20
	DefaultMaxFiles     = 4
	DefaultQueueBytes   = 512 << 10
	DefaultMaxLineBytes = 48 << 10
)

// entryOverhead is what a queued line costs besides its text: the Entry
// and the slot holding it.
const entryOverhead = 64

func (o Options) withDefaults() (Options, error) {
	if o.MaxFileBytes == 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.MaxFiles == 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.QueueBytes == 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.MaxLineBytes == 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.MaxFileBytes < 0:
		return o, fmt.Errorf("journal: MaxFileBytes %d is negative", o.MaxFileBytes)
	case o.MaxFiles < 2:
		return o, fmt.Errorf("journal: MaxFiles %d: a unit needs at least its current file and one rotated file", o.MaxFiles)
	case o.QueueBytes < 0:
		return o, fmt.Errorf("journal: QueueBytes %d is negative", o.QueueBytes)
	case o.MaxLineBytes < 16:
		return o, fmt.Errorf("journal: MaxLineBytes %d is below 16", o.MaxLineBytes)
	case o.QueueBytes < o.MaxLineBytes+entryOverhead:
		return o, fmt.Errorf("journal: QueueBytes %d cannot hold one line of MaxLineBytes %d", o.QueueBytes, o.MaxLineBytes)
	}
	return o, nil
}

// Journal keeps the logs of a machine's units in one directory. Its
// methods may be called from many goroutines at once.
type Journal struct {
	dir  string
	opts Options
	// openLog opens a unit's current file for appending; tests replace
	// it to make writes block or fail.
	openLog func(path string) (logFile, error)
	// retryMin and retryMax bound the wait before a failed write is
	// tried again.
	retryMin, retryMax time.Duration

	// lock holds an exclusive flock on the directory's lock file, so
	// that no second Journal writes the same files.
	lock *os.File

	mu     sync.Mutex
	units  map[string]*unitLog
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// logFile is what the writer needs of a unit's current file.
type logFile interface {
	Write(p []byte) (int, error)
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Sync() error
	Close() error
}

func openAppend(path string) (logFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

// Open opens the journal kept in dir (the machine's
// /var/lib/atoll/journal), making dir if needed. A journal left by an
// earlier Open, even one the process died holding, is carried on: each
// unit's torn last record is cut off and its sequence numbers continue.
// Only one Journal may have dir open at a time: Open holds a flock on
// dir/.lock until Close, and fails while another holds it.
func Open(dir string, opts Options) (*Journal, error) {
	return open(dir, opts, openAppend)
}

func open(dir string, opts Options, openLog func(string) (logFile, error)) (*Journal, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	j := &Journal{
		lock:     lock,
		dir:      dir,
		opts:     opts,
		openLog:  openLog,
		retryMin: 50 * time.Millisecond,
		retryMax: 5 * time.Second,
		units:    map[string]*unitLog{},
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	for _, de := range entries {
		unit, ok := unescapeUnit(de.Name())
		if !ok || !de.IsDir() {
			continue
		}
		u := j.newUnitLog(unit, filepath.Join(dir, de.Name()))
		u.onDisk = true
		if err := u.recover(); err != nil {
			// The unit's last sequence number is unknown. Numbers
			// from the clock (nanoseconds since 1970) are above any it
			// can have reached, so that readers, which pass over
			// numbers they have seen, do not pass over new lines.
			u.nextSeq = max(u.nextSeq, uint64(opts.Now().UnixNano()))
			u.lastErr = fmt.Errorf("recover %s: %w", u.dir, err)
		}
		j.units[unit] = u
	}
	return j, nil
}

// Close writes what is queued, once, and closes every unit's file; lines
// that cannot be written then are counted as dropped. Reads that were
// following end with ErrClosed, and so do Captures that read another
// line. Close does not wait for Captures: close their readers first to
// have their last lines. Closing again returns the first result.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() {
		j.mu.Lock()
		j.closed = true
		units := make([]*unitLog, 0, len(j.units))
		for _, u := range j.units {
			units = append(units, u)
		}
		j.mu.Unlock()
		for _, u := range units {
			u.shutdown(false)
		}
		var errs []error
		for _, u := range units {
			<-u.done
			if u.closeErr != nil {
				errs = append(errs, fmt.Errorf("journal: %s: %w", u.name, u.closeErr))
			}
		}
		errs = append(errs, j.lock.Close()) // and with it the flock
		j.closeErr = errors.Join(errs...)
	})
	return j.closeErr
}

// unit returns the state of a unit's journal, made on first use. It waits
// while the unit's journal is being removed.
func (j *Journal) unit(name string) (*unitLog, error) {
	for {
		j.mu.Lock()
		if j.closed {
			j.mu.Unlock()
			return nil, ErrClosed
		}
		u := j.units[name]
		if u == nil {
			dirName, err := escapeUnit(name)
			if err != nil {
				j.mu.Unlock()
				return nil, err
			}
			u = j.newUnitLog(name, filepath.Join(j.dir, dirName))
			j.units[name] = u
		}
		gone := u.gone
		j.mu.Unlock()
		if gone == nil {
			return u, nil
		}
		<-gone
	}
}

// existingUnit returns the state of a unit that has a journal, nil for
// one that has none. It waits while the unit's journal is being removed.
func (j *Journal) existingUnit(name string) (*unitLog, error) {
	if _, err := escapeUnit(name); err != nil {
		return nil, err
	}
	for {
		j.mu.Lock()
		if j.closed {
			j.mu.Unlock()
			return nil, ErrClosed
		}
		u := j.units[name]
		var gone chan struct{}
		if u != nil {
			gone = u.gone
		}
		j.mu.Unlock()
		if gone == nil {
			return u, nil
		}
		<-gone
	}
}

// Units lists the units that have a journal, sorted.
func (j *Journal) Units() ([]string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, ErrClosed
	}
	var names []string
	for name, u := range j.units {
		u.mu.Lock()
		has := u.onDisk || u.nextSeq > 1
		u.mu.Unlock()
		if has && u.gone == nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Remove deletes a unit's journal, lines still queued included. Reads
// following it end with ErrRemoved; a Capture still running goes on into
// a new journal for the unit, whose sequence numbers start again at 1.
func (j *Journal) Remove(unit string) error {
	dirName, err := escapeUnit(unit)
	if err != nil {
		return err
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	u := j.units[unit]
	if u != nil && u.gone != nil {
		gone := u.gone
		j.mu.Unlock()
		<-gone
		return nil
	}
	if u != nil {
		u.gone = make(chan struct{})
	}
	j.mu.Unlock()

	if u != nil {
		u.shutdown(true)
		<-u.done
	}
	err = os.RemoveAll(filepath.Join(j.dir, dirName))
	if u != nil {
		j.mu.Lock()
		delete(j.units, unit)
		close(u.gone)
		j.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("journal: remove %s: %w", unit, err)
	}
	return nil
}

// Stats describes one unit's journal.
type Stats struct {
	// Written counts the entries written to disk since Open.
	Written uint64
	// Dropped counts the lines dropped since Open because the queue was
	// full, or because Close could not write them.
	Dropped uint64
	// Queued is how many entries wait in memory for the disk.
	Queued int
	// LastSeq is the sequence number of the newest entry, 0 for none.
	LastSeq uint64
	// Files and Bytes are what the unit's journal holds on disk.
	Files int
	Bytes int64
	// WriteErr is why the last write failed, nil once writing works
	// again. Lines wait, and then drop, while it is set.
	WriteErr error
}

// Stats reports on a unit's journal. A unit without one reads as zero.
func (j *Journal) Stats(unit string) (Stats, error) {
	dirName, err := escapeUnit(unit)
	if err != nil {
		return Stats{}, err
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return Stats{}, ErrClosed
	}
	u := j.units[unit]
	j.mu.Unlock()
	var st Stats
	if u != nil {
		u.mu.Lock()
		st = Stats{
			Written:  u.written,
			Dropped:  u.droppedTotal,
			Queued:   len(u.pending),
			LastSeq:  u.nextSeq - 1,
			WriteErr: u.lastErr,
		}
		u.mu.Unlock()
	}
	entries, err := os.ReadDir(filepath.Join(j.dir, dirName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("journal: %s: %w", unit, err)
	}
	for _, de := range entries {
		if _, ok := parseFileName(de.Name()); !ok {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // rotated away while we looked
		}
		st.Files++
		st.Bytes += info.Size()
	}
	return st, nil
}

// lockFile is the file in the journal's directory that Open locks. Its
// name starts with a dot, which no unit's directory does.
const lockFile = ".lock"

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("journal: %s is open in another Journal", dir)
		}
		return nil, fmt.Errorf("journal: lock %s: %w", path, err)
	}
	return f, nil
}
