package journal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"
)

// ReadOptions choose the entries Read gives.
type ReadOptions struct {
	// Lines gives only the last Lines entries (journalctl -n); 0 gives
	// them all.
	Lines int
	// Since gives only entries stamped at or after it (journalctl
	// --since). Entries are taken to be in time order: a wall clock that
	// stepped back can hide entries from before the step.
	Since time.Time
	// Follow goes on giving entries as they come (journalctl -f), across
	// rotation, until ctx ends. With Lines, the last Lines come first.
	Follow bool
}

// Read calls fn with a unit's entries, oldest first: those on disk, then
// those still queued in memory, so that a line is readable as soon as it
// is captured, even while the disk is full. Each entry comes once, in
// order of Seq. A unit without a journal has no entries (and, with
// Follow, is waited for).
//
// Read returns the first error fn returns, or nil when it has given the
// entries there are. With Follow it returns ctx.Err() when ctx ends,
// ErrClosed when the journal is closed and ErrRemoved when the unit's
// journal is removed. Entries lost to rotation while a slow reader held
// back are skipped: their sequence numbers are missing.
func (j *Journal) Read(ctx context.Context, unit string, o ReadOptions, fn func(Entry) error) error {
	var u *unitLog
	var err error
	if o.Follow {
		u, err = j.unit(unit)
	} else {
		// Reading a unit that has no journal leaves no trace.
		u, err = j.existingUnit(unit)
		if u == nil && err == nil {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("journal: read %s: %w", unit, err)
	}
	c := &cursor{unit: unit, dir: u.dir, since: o.Since, fn: fn}
	defer c.close()

	u.mu.Lock()
	wait, mem, closed, removed := u.waitLocked(), u.pending, u.closed, u.removed
	u.mu.Unlock()

	switch {
	case o.Lines > 0:
		err = c.seekTail(o.Lines, mem)
	case !o.Since.IsZero():
		err = c.seekTail(math.MaxInt, mem)
	}
	if err != nil {
		return fmt.Errorf("journal: read %s: %w", unit, err)
	}
	for {
		if err := c.readFiles(ctx); err != nil {
			return err
		}
		for _, e := range mem {
			if err := c.emit(e); err != nil {
				return err
			}
		}
		if !o.Follow {
			return nil
		}
		switch {
		case closed:
			return ErrClosed
		case removed:
			return fmt.Errorf("journal: read %s: %w", unit, ErrRemoved)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait:
		}
		u.mu.Lock()
		wait, mem, closed, removed = u.waitLocked(), u.pending, u.closed, u.removed
		u.mu.Unlock()
	}
}

// cursor is where a Read is in a unit's files: an open file, the offset
// of the next line in it, and the next sequence number to give. The file
// is held open, so that it can be read to its end after it was rotated,
// or even deleted.
type cursor struct {
	unit  string
	dir   string
	since time.Time
	fn    func(Entry) error

	file      *os.File
	r         *lineReader
	isCurrent bool // file was the current file when opened
	// hint is the sequence number of a record known to be in file (0 for
	// none): the file after it is the rotated file with the smallest
	// first sequence number above hint, or the current file.
	hint uint64
	// next is the smallest sequence number still to give.
	next uint64
	// lines counts lines read, to look at ctx now and then.
	lines int
}

// emit gives e unless it was given already or is too old.
func (c *cursor) emit(e Entry) error {
	if e.Seq < c.next {
		return nil
	}
	c.next = e.Seq + 1
	if !c.since.IsZero() && e.Time.Before(c.since) {
		return nil
	}
	e.Unit = c.unit
	return c.fn(e)
}

func (c *cursor) close() {
	if c.file != nil {
		c.file.Close()
		c.file, c.r = nil, nil
	}
}

func (c *cursor) set(f *os.File, isCurrent bool, off int64, hint uint64) {
	c.close()
	c.file, c.r, c.isCurrent, c.hint = f, newLineReader(f, off), isCurrent, hint
}

// readFiles gives the entries on disk from the cursor on, up to the end of
// the current file.
func (c *cursor) readFiles(ctx context.Context) error {
	for {
		if c.file == nil {
			if err := c.advance(); err != nil {
				return fmt.Errorf("journal: read %s: %w", c.unit, err)
			}
			if c.file == nil {
				return nil // no current file yet
			}
		}
		line, _, ok, err := c.r.next()
		if err != nil {
			return fmt.Errorf("journal: read %s: %s: %w", c.unit, c.file.Name(), err)
		}
		if ok {
			if c.lines++; c.lines%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			e, err := decodeLine(line)
			if err != nil {
				continue // damage: see decodeLine
			}
			c.hint = e.Seq
			if err := c.emit(e); err != nil {
				return err
			}
			continue
		}
		if c.isCurrent {
			rotated, err := c.rotated()
			if err != nil {
				return fmt.Errorf("journal: read %s: %w", c.unit, err)
			}
			if !rotated {
				return nil // at the end, for now
			}
			// Rotated: the writer wrote its last line to this file
			// before renaming it, so reading it to its end once more
			// finishes it.
			c.isCurrent = false
			continue
		}
		c.close()
	}
}

// rotated reports whether the cursor's current file has been renamed (or
// deleted) since it was opened.
func (c *cursor) rotated() (bool, error) {
	held, err := c.file.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(filepath.Join(c.dir, currentName))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !os.SameFile(held, now), nil
}

// advance opens the file after the one the cursor finished (or the first
// one), leaving the cursor without a file when there is none yet.
func (c *cursor) advance() error {
	prev := c.hint
	for range 100 {
		segs, err := listSegments(c.dir)
		if err != nil {
			return err
		}
		if start := c.pick(segs, prev); start != 0 {
			f, err := os.Open(segmentPath(c.dir, start))
			if errors.Is(err, fs.ErrNotExist) {
				continue // pruned while we looked: look again
			}
			if err != nil {
				return err
			}
			c.set(f, false, 0, start)
			return nil
		}
		f, err := os.Open(filepath.Join(c.dir, currentName))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		// A rotation between the listing and the open would make us
		// skip the file it renamed: look again.
		if segs, err = listSegments(c.dir); err != nil {
			f.Close()
			return err
		}
		if c.pick(segs, prev) != 0 {
			f.Close()
			continue
		}
		c.set(f, true, 0, prev)
		return nil
	}
	return fmt.Errorf("%s keeps changing under the reader", c.dir)
}

// pick chooses the rotated file to read after the file holding prev (or,
// with no prev, the first file to read); 0 means the current file.
func (c *cursor) pick(segs []uint64, prev uint64) uint64 {
	if prev > 0 {
		for _, s := range segs {
			if s > prev {
				return s
			}
		}
		return 0
	}
	if len(segs) == 0 {
		return 0
	}
	// No file read yet: the one holding next, or the oldest.
	pick := segs[0]
	for _, s := range segs {
		if s <= c.next {
			pick = s
		}
	}
	return pick
}

// seekTail places the cursor so that it gives the last n entries (of
// those since c.since), counting the entries queued in mem, which come
// after everything on disk. It reads the files backwards from their end,
// newest first, and reads no further back than it must.
func (c *cursor) seekTail(n int, mem []Entry) error {
	var memFirst uint64 // entries from here on are counted in mem
	if len(mem) > 0 {
		memFirst = mem[0].Seq
	}
	fromMem := 0
	for i := len(mem) - 1; i >= 0 && fromMem < n; i-- {
		if !c.since.IsZero() && mem[i].Time.Before(c.since) {
			break
		}
		fromMem++
		c.next = mem[i].Seq
	}
	want := n - fromMem // entries wanted from disk

	// at is where the cursor goes: the earliest record the scan passed
	// that may have to be given.
	var (
		at       *os.File
		atOff    int64
		atHint   uint64
		atIsCur  bool
		lowest   uint64 = math.MaxUint64 // smallest seq seen: older files repeat nothing
		counted  int
		finished bool
	)
	// keep moves at to offset off of f, which holds the record hint.
	keep := func(f *os.File, isCurrent bool, off int64, hint uint64) {
		if at != nil && at != f {
			at.Close()
		}
		at, atIsCur, atOff, atHint = f, isCurrent, off, hint
	}
	// scan reads f backwards; start is its first sequence number, 0 for
	// the current file.
	scan := func(f *os.File, start uint64) error {
		info, err := f.Stat()
		if err != nil {
			return err
		}
		end, err := lastLineEnd(f, info.Size())
		if err != nil {
			return err
		}
		if at == nil {
			keep(f, start == 0, end, start)
		}
		return scanBackward(f, end, func(line []byte, off int64) bool {
			e, err := decodeLine(line)
			if err != nil || e.Seq >= lowest {
				return true // damage, or a record seen in a newer file
			}
			lowest = e.Seq
			if memFirst > 0 && e.Seq >= memFirst {
				keep(f, start == 0, off, e.Seq)
				return true // given from mem
			}
			if counted == want || !c.since.IsZero() && e.Time.Before(c.since) {
				finished = true
				return false
			}
			counted++
			keep(f, start == 0, off, e.Seq)
			c.next = e.Seq
			return true
		})
	}

	// The current file first, then the rotated ones: a rotation between
	// the two steps shows a file twice, which lowest passes over.
	cur, err := os.Open(filepath.Join(c.dir, currentName))
	switch {
	case err == nil:
		if err := scan(cur, 0); err != nil {
			cur.Close()
			return err
		}
		if at != cur {
			cur.Close()
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	segs, err := listSegments(c.dir)
	if err != nil {
		return err
	}
	for i := len(segs) - 1; i >= 0 && !finished; i-- {
		if segs[i] >= lowest {
			continue
		}
		f, err := os.Open(segmentPath(c.dir, segs[i]))
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned
		}
		if err != nil {
			return err
		}
		if err := scan(f, segs[i]); err != nil {
			f.Close()
			return err
		}
		if at != f {
			f.Close()
		}
	}
	if at == nil {
		return nil
	}
	if !finished {
		// Everything on disk is wanted: from the start of the oldest file
		// the scan reached.
		atOff = 0
	}
	c.set(at, atIsCur, atOff, atHint)
	return nil
}
