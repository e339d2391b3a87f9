package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A unit's directory holds its current file and its rotated files, each
// rotated file named after the sequence number of its first record.
const (
	currentName = "current.jsonl"
	fileSuffix  = ".jsonl"
	seqDigits   = 20 // enough for any uint64, so names sort as numbers
)

func segmentPath(dir string, start uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%0*d%s", seqDigits, start, fileSuffix))
}

// parseFileName reads a file name of a unit's directory: the first
// sequence number of a rotated file, or 0 for the current file.
func parseFileName(name string) (start uint64, ok bool) {
	if name == currentName {
		return 0, true
	}
	digits, found := strings.CutSuffix(name, fileSuffix)
	if !found || len(digits) != seqDigits {
		return 0, false
	}
	start, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || start == 0 {
		return 0, false
	}
	return start, true
}

// listSegments returns the first sequence numbers of a unit's rotated
// files, oldest first. A unit without a directory has none.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var starts []uint64
	for _, de := range entries {
		if start, ok := parseFileName(de.Name()); ok && start > 0 {
			starts = append(starts, start)
		}
	}
	slices.Sort(starts)
	return starts, nil
}

// maxRecordBytes bounds a record a reader will hold in memory. The
// longest record a writer makes is MaxLineBytes of control characters,
// each escaped in 6 bytes; a longer "record" is damage and is skipped.
const maxRecordBytes = 8 << 20

// readChunk is how much a reader reads at a time.
const readChunk = 64 << 10

// lineReader reads the complete lines of a file that may still be growing,
// from a given offset. An incomplete last line stays buffered until its
// newline arrives.
type lineReader struct {
	f        io.ReaderAt
	base     int64 // file offset of buf[0]
	buf      []byte
	start    int // next line starts at buf[start]
	end      int // bytes read are buf[:end]
	skipping bool
}

func newLineReader(f io.ReaderAt, off int64) *lineReader {
	return &lineReader{f: f, base: off}
}

// pos is the file offset of the next line next returns.
func (r *lineReader) pos() int64 { return r.base + int64(r.start) }

// next returns the next complete line, without its newline, and its
// offset; ok is false when the file holds no further complete line yet.
// The line is valid until the next call.
func (r *lineReader) next() (line []byte, off int64, ok bool, err error) {
	for {
		if i := bytes.IndexByte(r.buf[r.start:r.end], '\n'); i >= 0 {
			line, off = r.buf[r.start:r.start+i], r.pos()
			r.start += i + 1
			if r.skipping {
				r.skipping = false
				continue
			}
			return line, off, true, nil
		}
		if r.end-r.start > maxRecordBytes {
			// Damage without a newline: skip to the next one.
			r.skipping = true
			r.start = r.end
		}
		if r.start > 0 {
			n := copy(r.buf, r.buf[r.start:r.end])
			r.base += int64(r.start)
			r.start, r.end = 0, n
		}
		if r.end == len(r.buf) {
			r.buf = slices.Grow(r.buf[:r.end], max(readChunk, len(r.buf)))
			r.buf = r.buf[:cap(r.buf)]
		}
		n, err := r.f.ReadAt(r.buf[r.end:], r.base+int64(r.end))
		r.end += n
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return nil, 0, false, nil
			}
			return nil, 0, false, err
		}
	}
}

// scanBackward calls fn with the complete lines of f[:end], newest first,
// each with its offset, until fn returns false. Bytes after the last
// newline are an incomplete line and are passed over. The line is valid
// only during the call.
func scanBackward(f io.ReaderAt, end int64, fn func(line []byte, off int64) bool) error {
	var buf []byte // f[pos : pos+len(buf)]
	pos := end
	trimmed := false // buf ends just after a newline
	for {
		if trimmed && len(buf) > 0 {
			i := bytes.LastIndexByte(buf[:len(buf)-1], '\n')
			if i >= 0 || pos == 0 {
				start := i + 1
				if !fn(buf[start:len(buf)-1], pos+int64(start)) {
					return nil
				}
				buf = buf[:start]
				continue
			}
		}
		if !trimmed {
			if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
				buf = buf[:i+1]
				trimmed = true
				continue
			}
		}
		if pos == 0 {
			return nil
		}
		n := min(int64(readChunk), pos)
		grown := make([]byte, int(n)+len(buf))
		if _, err := f.ReadAt(grown[:n], pos-n); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		copy(grown[n:], buf)
		buf, pos = grown, pos-n
	}
}

// lastLineEnd is the offset just after the last newline in f[:size], 0
// when there is none.
func lastLineEnd(f io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, readChunk)
	for pos := size; pos > 0; {
		n := min(int64(len(buf)), pos)
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i) + 1, nil
		}
	}
	return 0, nil
}

// maxSeq is the largest sequence number any record in f[:end] starts
// with, 0 for none. It looks for record starts as bytes rather than
// decoding records, so it is quick; a damaged record may make it too high,
// which costs only a gap in the numbers. The text `{"seq":` cannot occur
// inside a record's line, where quotes are escaped.
func maxSeq(f io.ReaderAt, end int64) (uint64, error) {
	const overlap = len(recordStart) + 20 // a start and its digits
	var best uint64
	buf := make([]byte, readChunk+overlap)
	carry := 0 // bytes kept from the end of the previous chunk
	for off := int64(0); off < end; {
		n := int(min(int64(readChunk), end-off))
		if _, err := f.ReadAt(buf[carry:carry+n], off); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		off += int64(n)
		data := buf[:carry+n]
		for i := 0; ; {
			k := bytes.Index(data[i:], []byte(recordStart))
			if k < 0 {
				break
			}
			i += k + len(recordStart)
			j := i
			for j < len(data) && j-i < 20 && '0' <= data[j] && data[j] <= '9' {
				j++
			}
			if j == len(data) && off < end {
				break // the digits go on in the next chunk: the overlap has them
			}
			if seq, err := strconv.ParseUint(string(data[i:j]), 10, 64); err == nil {
				best = max(best, seq)
			}
		}
		carry = copy(buf, data[max(0, len(data)-overlap):])
	}
	return best, nil
}

// firstSeq is the sequence number of the first record in f[:end], 0 when
// it holds none.
func firstSeq(f io.ReaderAt, end int64) (uint64, error) {
	r := newLineReader(f, 0)
	for {
		line, off, ok, err := r.next()
		if err != nil || !ok || off >= end {
			return 0, err
		}
		if e, err := decodeLine(line); err == nil {
			return e.Seq, nil
		}
	}
}
