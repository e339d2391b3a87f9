package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"atoll.dev/atoll/internal/fsutil"
)

// flushBytes is how much encoded text the writer gathers before a write.
const flushBytes = 256 << 10

// run is a unit's writer goroutine: it writes queued entries in batches
// until Close or Remove. When a write fails it keeps the entries queued
// and tries again after a backoff, while new lines fill the queue and
// then drop.
func (u *unitLog) run() {
	defer close(u.done)
	retry := u.j.retryMin
	for {
		u.mu.Lock()
		if len(u.pending) == 0 && u.dropped > 0 && !u.removed {
			u.pushDropNoticeLocked()
		}
		batch := u.pending
		stopping, discard := u.closed || u.removed, u.removed
		u.mu.Unlock()

		if discard {
			u.closeFile(false)
			return
		}
		if len(batch) == 0 {
			if stopping {
				u.closeErr = u.closeFile(true)
				return
			}
			select {
			case <-u.wake:
			case <-u.stop:
			}
			continue
		}

		n, err := u.write(batch)
		u.mu.Lock()
		if !u.removed {
			for _, e := range u.pending[:n] {
				u.pendingBytes -= len(e.Line) + entryOverhead
			}
			u.pending = u.pending[n:]
			if len(u.pending) == 0 {
				// Let the written entries go; readers that hold the
				// old slice keep what they hold.
				u.pending = nil
				u.pendingBytes = 0
			}
			u.written += uint64(n)
		}
		if n > 0 {
			// Readers take queued entries from memory, but a reader
			// woken by the disk too never depends on that.
			u.notifyLocked()
		}
		u.lastErr = err
		switch {
		case err != nil:
			u.dropErr = err
		case len(u.pending) == 0 && u.dropped == 0:
			u.dropErr = nil // caught up: an old error explains no later drop
		}
		stopping = u.closed || u.removed
		if err != nil && stopping {
			// Close gets one try; what is left is lost.
			u.droppedTotal += uint64(len(u.pending))
			u.pending, u.pendingBytes = nil, 0
		}
		u.mu.Unlock()

		if err == nil {
			retry = u.j.retryMin
			continue
		}
		if stopping {
			u.closeErr = errors.Join(err, u.closeFile(true))
			return
		}
		t := time.NewTimer(retry)
		select {
		case <-t.C:
		case <-u.stop:
			t.Stop()
		}
		retry = min(2*retry, u.j.retryMax)
	}
}

// write appends batch to the unit's files, rotating as they fill, and
// returns how many of its entries are on disk.
func (u *unitLog) write(batch []Entry) (int, error) {
	if err := u.openCurrent(); err != nil {
		return 0, err
	}
	maxBytes := u.j.opts.MaxFileBytes
	buf := u.buf[:0]
	if u.needNewline {
		buf = append(buf, '\n')
	}
	var ends []int // ends[i]: where batch[first+i]'s record ends in buf
	first, done := 0, 0
	for i := range batch {
		recStart := len(buf)
		buf = appendRecord(buf, &batch[i])
		if u.size+int64(len(buf)) > maxBytes && u.size+int64(recStart) > 0 {
			// This record would overfill the file: write what comes
			// before it, start a new file, and carry the record over.
			n, err := u.flush(buf[:recStart], ends, batch[first:i])
			done += n
			if err != nil {
				u.keep(buf)
				return done, err
			}
			if err := u.rotate(); err != nil {
				u.keep(buf)
				return done, err
			}
			buf = buf[:copy(buf, buf[recStart:])]
			ends, first = ends[:0], i
			recStart = 0
		}
		ends = append(ends, len(buf))
		if len(buf) >= flushBytes {
			n, err := u.flush(buf, ends, batch[first:i+1])
			done += n
			if err != nil {
				u.keep(buf)
				return done, err
			}
			buf, ends, first = buf[:0], ends[:0], i+1
		}
	}
	n, err := u.flush(buf, ends, batch[first:])
	u.keep(buf)
	return done + n, err
}

// keep holds on to the encoding buffer for the next batch, unless a long
// line made it large.
func (u *unitLog) keep(buf []byte) {
	if cap(buf) <= 2*flushBytes {
		u.buf = buf[:0]
	} else {
		u.buf = nil
	}
}

// flush writes buf, which holds the records of entries (the i-th ending
// at ends[i]), to the current file, and returns how many of them are
// written. A failed write is cut back off the file, so that it can be
// done again whole; if it cannot be, the records written whole count as
// written, and a newline ends the torn one before the next write.
func (u *unitLog) flush(buf []byte, ends []int, entries []Entry) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	n, err := u.file.Write(buf)
	if err == nil && n < len(buf) {
		err = fmt.Errorf("write %s: short write", u.currentPath())
	}
	if err == nil {
		u.size += int64(n)
		u.needNewline = false
		if u.curFirst == 0 && len(entries) > 0 {
			u.curFirst = entries[0].Seq
		}
		return len(entries), nil
	}
	if n == 0 || u.file.Truncate(u.size) == nil {
		return 0, err
	}
	u.size += int64(n)
	whole := 0
	for whole < len(ends) && ends[whole] <= n {
		whole++
	}
	u.needNewline = whole == 0 || ends[whole-1] != n
	if u.curFirst == 0 && whole > 0 {
		u.curFirst = entries[0].Seq
	}
	return whole, err
}

func (u *unitLog) currentPath() string { return filepath.Join(u.dir, currentName) }

// openCurrent opens the current file for appending, making the unit's
// directory on its first line.
func (u *unitLog) openCurrent() error {
	if u.file != nil {
		return nil
	}
	if err := os.MkdirAll(u.dir, 0o750); err != nil {
		return err
	}
	f, err := u.j.openLog(u.currentPath())
	if err != nil {
		return err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if info.Size() == 0 {
		u.curFirst, u.needNewline = 0, false
	}
	u.file, u.size = f, info.Size()
	return nil
}

// rotate turns the current file into a rotated one named after its first
// record, starts a new current file and lets the oldest files go. The
// rename is the only step a reader must notice: the old file is complete
// by then, so a reader that holds it open reads it to its end and goes on
// with the file after it (see Read). A current file without a single
// record (damage only) is deleted rather than kept.
func (u *unitLog) rotate() error {
	if err := u.file.Sync(); err != nil {
		return err
	}
	err := u.file.Close()
	u.file = nil
	if err != nil {
		return err
	}
	if u.curFirst == 0 {
		err = os.Remove(u.currentPath())
	} else {
		err = os.Rename(u.currentPath(), segmentPath(u.dir, u.curFirst))
	}
	if err != nil {
		return err
	}
	u.size, u.curFirst, u.needNewline = 0, 0, false
	// The rename must survive a crash before the file after it is made,
	// or a reader could find the new current file and no rotated one.
	if err := fsutil.SyncDir(u.dir); err != nil {
		return err
	}
	if err := u.prune(); err != nil {
		return err
	}
	return u.openCurrent()
}

// prune deletes the oldest rotated files beyond MaxFiles-1.
func (u *unitLog) prune() error {
	segs, err := listSegments(u.dir)
	if err != nil {
		return err
	}
	var errs []error
	for len(segs) > u.j.opts.MaxFiles-1 {
		if err := os.Remove(segmentPath(u.dir, segs[0])); err != nil {
			errs = append(errs, err)
		}
		segs = segs[1:]
	}
	return errors.Join(errs...)
}

// closeFile closes the current file, first syncing it when asked.
func (u *unitLog) closeFile(sync bool) error {
	if u.file == nil {
		return nil
	}
	var err error
	if sync {
		err = u.file.Sync()
	}
	err = errors.Join(err, u.file.Close())
	u.file = nil
	return err
}
