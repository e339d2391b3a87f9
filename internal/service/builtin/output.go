package builtin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Logger receives what units write and what the manager says about them.
// The journal implements it; it must be safe for concurrent use.
type Logger interface {
	// Capture reads one output stream of a unit ("stdout" or "stderr")
	// until r ends or fails, storing what it reads under unit. The
	// manager calls it on a goroutine of its own when the stream has
	// something to read, and closes r to end it. r ends (io.EOF) once
	// what it gave ends a line and nothing more waits: the manager calls
	// Capture again when more comes, so that a unit writing nothing
	// holds no goroutine. A line is never split between two calls, and
	// a call starts only once r of the one before has ended. Capture
	// stores what it read before it reads again, as a line-by-line
	// reader does: the manager takes the next Read as the sign that what
	// a process wrote is stored, before it says that the process ended.
	Capture(unit, stream string, r io.Reader)
	// Append stores a line the manager writes about unit ("Started
	// web.service.", "Main process exited, code=exited, status=1/FAILURE").
	Append(unit, line string)
}

// discardLogger drains output and forgets it.
type discardLogger struct{}

// Capture reads with a small buffer: it runs only while output comes, but
// may run for many units at once.
func (discardLogger) Capture(_, _ string, r io.Reader) {
	io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{r}, make([]byte, 512))
}
func (discardLogger) Append(_, _ string) {}

// pipeSize is the FIFOs' buffer: what a unit can write while no daemon
// reads it.
const pipeSize = 1 << 20

// unitOutput is a unit's output streams. Each is a FIFO in the run
// directory, not a pipe: a pipe's read end would die with the daemon and
// take the units with it (SIGPIPE at their next write), while a FIFO
// outlives both ends' holders and a new daemon finds it again by its
// path.
//
//   - The unit's processes get the FIFO opened read-write. A process
//     holding a FIFO's read side never gets EPIPE, so a unit writes on
//     while the daemon is away; what it writes waits in the pipe's buffer
//     (enlarged to 1 MiB, pipeSize) for the next daemon, and a unit that
//     fills the buffer meanwhile blocks in write until it is read.
//   - The daemon opens it read-write too, non-blocking, so that it never
//     sees end-of-file between one process of the unit and the next.
//   - Nothing reads it while it is empty: the manager's poller waits on
//     it, and when output comes the Logger's Capture reads it until it is
//     empty again at the end of a line (outputStream).
type unitOutput struct {
	stdout, stderr outputStream
}

// outputStream is one FIFO. While it has nothing to read, the manager's
// poller waits on it; when something comes, a goroutine runs the Logger's
// Capture with a captureReader, which reads until the FIFO is empty at
// the end of a line and then gives the FIFO back to the poller.
type outputStream struct {
	unit, name, path string
	logger           Logger
	f                *os.File // the daemon's end: read-write, non-blocking
	watch            *watch

	mu sync.Mutex
	// capturing says a Capture runs on the stream; abandoned, that one
	// returned before the stream was idle, and none runs again.
	capturing, abandoned bool
	// handed counts the bytes Read gave the Logger, stored those it has
	// stored: all it was handed, once it reads again.
	handed, stored int64
	// progress is closed, and replaced, when any of the above changes.
	progress chan struct{}
}

// openOutput makes (or finds again) the unit's FIFOs under dir; logger
// captures them, through poller.
func openOutput(dir, unit string, logger Logger, p *poller) (*unitOutput, error) {
	o := &unitOutput{}
	for _, s := range []*outputStream{&o.stdout, &o.stderr} {
		s.unit, s.logger = unit, logger
		s.name = "stdout"
		if s == &o.stderr {
			s.name = "stderr"
		}
		s.progress = make(chan struct{})
		if err := s.open(dir, p); err != nil {
			o.close()
			return nil, fmt.Errorf("output of %s: %w", unit, err)
		}
	}
	return o, nil
}

func (s *outputStream) open(dir string, p *poller) error {
	s.path = filepath.Join(dir, s.unit+"."+s.name)
	if err := unix.Mkfifo(s.path, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	if st, err := os.Lstat(s.path); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return fmt.Errorf("%s is not a FIFO", s.path)
	}
	// os.OpenFile makes a FIFO non-blocking and pollable.
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
	s.f = f
	if s.watch, err = p.newWatch(f, s.path, s.capture); err != nil {
		return err
	}
	return s.watch.start()
}

// capture runs the Logger on the stream, which has something to read,
// unless a Capture runs already.
func (s *outputStream) capture() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked()
}

func (s *outputStream) startLocked() {
	if s.capturing || s.abandoned {
		return
	}
	s.capturing = true
	r := &captureReader{s: s, lineStart: true}
	go func() {
		s.logger.Capture(s.unit, s.name, r)
		s.mu.Lock()
		if !r.done {
			// The Logger gave up before the stream was idle: the
			// stream is left unread, as it was before output was read
			// only while it came.
			s.capturing, s.abandoned, s.stored = false, true, s.handed
			s.progressed()
		}
		s.mu.Unlock()
	}()
}

// progressed wakes those waiting in flush; s.mu is held.
func (s *outputStream) progressed() {
	close(s.progress)
	s.progress = make(chan struct{})
}

// flush waits until the Logger has stored what the stream held when it
// was called, but for a line not ended yet (which waits for its end), or
// until quit is closed. The manager calls it when a process of the unit
// ends, before saying so: what the process wrote comes first.
func (s *outputStream) flush(quit <-chan struct{}) {
	if s.f == nil {
		return
	}
	var avail int
	if rc, err := s.f.SyscallConn(); err == nil {
		// TIOCINQ is FIONREAD: the bytes a pipe holds.
		rc.Control(func(fd uintptr) { avail, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	}
	s.mu.Lock()
	target := s.handed + int64(avail)
	if avail > 0 {
		s.startLocked()
	}
	for s.stored < target && !s.abandoned {
		progress := s.progress
		s.mu.Unlock()
		select {
		case <-progress:
		case <-quit:
			return
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
}

// captureReader is what Capture reads: the FIFO, until it is empty at the
// end of a line.
type captureReader struct {
	s *outputStream
	// lineStart says that what Read gave so far ends a line.
	lineStart bool
	done      bool
}

func (r *captureReader) Read(b []byte) (int, error) {
	s := r.s
	s.mu.Lock()
	if s.stored != s.handed {
		// Reading again: the Logger has stored what it was given.
		s.stored = s.handed
		s.progressed()
	}
	s.mu.Unlock()
	if r.done {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	rc, err := s.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		n    int
		rerr error
		idle bool
	)
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), b)
			if rerr != unix.EINTR {
				break
			}
		}
		if rerr == unix.EAGAIN {
			// Empty: done at the end of a line, else wait for the rest.
			idle = r.lineStart
			return idle
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case idle:
		// Back to the poller, which starts Capture again when more
		// comes (at once if some came meanwhile).
		r.done = true
		s.mu.Lock()
		s.capturing = false
		s.progressed()
		s.mu.Unlock()
		if err := s.watch.rearm(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	case rerr != nil:
		return 0, rerr
	case n == 0: // no writer left: not while the daemon holds one
		return 0, io.EOF
	}
	r.lineStart = b[n-1] == '\n'
	s.mu.Lock()
	s.handed += int64(n)
	s.mu.Unlock()
	return n, nil
}

// flush waits until the Logger has stored what the FIFOs hold (see
// outputStream.flush).
func (o *unitOutput) flush(quit <-chan struct{}) {
	o.stdout.flush(quit)
	o.stderr.flush(quit)
}

// writers opens the FIFOs for a process of the unit: blocking,
// read-write (see unitOutput).
func (o *unitOutput) writers() (stdout, stderr *os.File, err error) {
	open := func(path string) (*os.File, error) {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return os.NewFile(uintptr(fd), path), nil
	}
	if stdout, err = open(o.stdout.path); err != nil {
		return nil, nil, err
	}
	if stderr, err = open(o.stderr.path); err != nil {
		stdout.Close()
		return nil, nil, err
	}
	return stdout, stderr, nil
}

// close stops reading: Capture calls return. The FIFOs stay for the units
// and the next daemon. A Capture running meanwhile may still use the
// stream, which is left as it is: what it finds closed fails.
func (o *unitOutput) close() {
	for _, s := range []*outputStream{&o.stdout, &o.stderr} {
		if s.watch != nil {
			s.watch.stop()
		}
		if s.f != nil {
			s.f.Close()
		}
	}
}

// remove closes the FIFOs and deletes them: the unit is gone.
func (o *unitOutput) remove() {
	o.close()
	for _, s := range []*outputStream{&o.stdout, &o.stderr} {
		if s.path != "" {
			os.Remove(s.path)
		}
	}
}
