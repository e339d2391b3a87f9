package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// errUnitRemoved tells Capture and Append that the state they hold was
// removed: they look the unit up again.
var errUnitRemoved = errors.New("journal: unit state removed")

// unitLog is one unit's journal: its queue, its writer goroutine and the
// state readers wait on.
type unitLog struct {
	j    *Journal
	name string
	dir  string

	// done is closed when the writer goroutine has ended, or at once if
	// none was started. Set before the unitLog is shared.
	done chan struct{}
	// stop is closed when the writer must finish: Close or Remove.
	stop chan struct{}
	// wake tells the writer that lines were queued.
	wake chan struct{}

	// gone is set, under Journal.mu, while Remove deletes the unit; it
	// is closed when the unit is out of Journal.units.
	gone chan struct{}

	mu sync.Mutex
	// pending are the entries queued and not yet written, oldest
	// first. The writer writes a prefix of it and then cuts that off;
	// entries already in it are never changed, so readers may keep a
	// copy of the slice.
	pending      []Entry
	pendingBytes int
	nextSeq      uint64
	// dropped counts lines dropped since the last drop notice; dropErr
	// is the last write error since then, the likely reason.
	dropped uint64
	dropErr error
	// written and droppedTotal are for Stats.
	written      uint64
	droppedTotal uint64
	lastErr      error
	// notify is closed, and replaced, when entries are queued or
	// written, if a reader took it (notifyTaken).
	notify      chan struct{}
	notifyTaken bool
	started     bool // the writer goroutine runs
	closed      bool // Close was called
	removed     bool // Remove was called
	onDisk      bool // the unit had a directory when the journal was opened
	closeErr    error

	// The writer goroutine owns these (and recover, before it starts).
	file        logFile
	size        int64  // bytes in the current file
	curFirst    uint64 // seq of the current file's first record; 0 for none
	needNewline bool   // the current file ends in a torn record
	buf         []byte
}

func (j *Journal) newUnitLog(name, dir string) *unitLog {
	return &unitLog{
		j:       j,
		name:    name,
		dir:     dir,
		done:    make(chan struct{}),
		stop:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		nextSeq: 1,
		notify:  make(chan struct{}),
	}
}

// waitLocked returns a channel closed when entries are next queued or
// written, or the unit's journal ends.
func (u *unitLog) waitLocked() <-chan struct{} {
	u.notifyTaken = true
	return u.notify
}

func (u *unitLog) notifyLocked() {
	if u.notifyTaken {
		close(u.notify)
		u.notify = make(chan struct{})
		u.notifyTaken = false
	}
}

// enqueue queues e (stamping it and numbering it) if the queue has room
// under limit bytes, and otherwise drops it and counts the drop.
func (u *unitLog) enqueue(e Entry, limit int) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.closed:
		return ErrClosed
	case u.removed:
		return errUnitRemoved
	}
	cost := len(e.Line) + entryOverhead
	if u.pendingBytes+cost > limit {
		if u.lastErr != nil {
			u.dropErr = u.lastErr
		}
		u.dropped++
		u.droppedTotal++
		return nil
	}
	if u.dropped > 0 {
		u.pushDropNoticeLocked()
	}
	u.pushLocked(e, cost)
	return nil
}

func (u *unitLog) pushLocked(e Entry, cost int) {
	e.Seq = u.nextSeq
	u.nextSeq++
	e.Unit = u.name
	if e.Time.IsZero() {
		e.Time = u.j.opts.Now()
	}
	u.pending = append(u.pending, e)
	u.pendingBytes += cost
	if !u.started {
		u.started = true
		go u.run()
	}
	select {
	case u.wake <- struct{}{}:
	default:
	}
	u.notifyLocked()
}

// pushDropNoticeLocked queues the line that says how many lines were
// dropped, where they would have been. It is queued whatever the queue
// holds: it is one line per gap.
func (u *unitLog) pushDropNoticeLocked() {
	lines, reason := "lines", "writing fell behind"
	if u.dropped == 1 {
		lines = "line"
	}
	if u.dropErr != nil {
		reason = u.dropErr.Error()
	}
	notice := Entry{
		Stream:   StreamJournal,
		Priority: PriorityWarning,
		Line:     fmt.Sprintf("atoll-journal: %d %s dropped: %s", u.dropped, lines, reason),
	}
	u.dropped, u.dropErr = 0, nil
	u.pushLocked(notice, len(notice.Line)+entryOverhead)
}

// shutdown tells the writer to finish: to write what is queued and stop,
// or with discard (Remove) to stop at once. Readers waiting are woken.
func (u *unitLog) shutdown(discard bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if discard {
		u.removed = true
		u.pending = nil
		u.pendingBytes = 0
	} else {
		u.closed = true
	}
	select {
	case <-u.stop:
	default:
		close(u.stop)
	}
	if !u.started {
		u.started = true
		close(u.done)
	}
	u.notifyTaken = true
	u.notifyLocked()
}

// recover prepares a unit found on disk for writing: it cuts a torn
// record off the end of the current file and finds where the sequence
// numbers go on.
func (u *unitLog) recover() error {
	segs, err := listSegments(u.dir)
	if err != nil {
		return err
	}
	var last uint64
	if len(segs) > 0 {
		last = segs[len(segs)-1]
	}
	cur := filepath.Join(u.dir, currentName)
	f, err := os.OpenFile(cur, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err != nil {
		return err
	}
	var curLast uint64
	if f != nil {
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		u.size = info.Size()
		end, err := lastLineEnd(f, u.size)
		if err != nil {
			return err
		}
		if end < u.size {
			if err := f.Truncate(end); err != nil {
				u.needNewline = true
			} else {
				u.size = end
			}
		}
		u.curFirst, err = firstSeq(f, end)
		if err != nil {
			return err
		}
		curLast, err = maxSeq(f, end)
		if err != nil {
			return err
		}
	}
	if curLast == 0 && len(segs) > 0 {
		newest, err := os.Open(segmentPath(u.dir, segs[len(segs)-1]))
		if err != nil {
			return err
		}
		defer newest.Close()
		info, err := newest.Stat()
		if err != nil {
			return err
		}
		segLast, err := maxSeq(newest, info.Size())
		if err != nil {
			return err
		}
		last = max(last, segLast)
	}
	u.nextSeq = max(last, curLast) + 1
	return nil
}
