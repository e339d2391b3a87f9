package builtin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Logger receives what units write and what the manager says about them.
// The journal implements it; it must be safe for concurrent use.
type Logger interface {
	// Capture reads one output stream of a unit ("stdout" or "stderr")
	// until r fails, storing what it reads under unit. The manager calls
	// it on a goroutine of its own, and again for the same unit and
	// stream after a restart of the daemon; it closes r to end it.
	Capture(unit, stream string, r io.Reader)
	// Append stores a line the manager writes about unit ("Started
	// web.service.", "Main process exited, code=exited, status=1/FAILURE").
	Append(unit, line string)
}

// discardLogger drains output and forgets it.
type discardLogger struct{}

// Capture reads with a small buffer: one waits on every unit's streams.
func (discardLogger) Capture(_, _ string, r io.Reader) {
	io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{r}, make([]byte, 512))
}
func (discardLogger) Append(_, _ string) {}

// Output streams. Each is a FIFO in the run directory, not a pipe: a
// pipe's read end would die with the daemon and take the units with it
// (SIGPIPE at their next write), while a FIFO outlives both ends' holders
// and a new daemon finds it again by its path.
//
//   - The unit's processes get the FIFO opened read-write. A process
//     holding a FIFO's read side never gets EPIPE, so a unit writes on
//     while the daemon is away; what it writes waits in the pipe's buffer
//     (enlarged to 1 MiB) for the next daemon, and a unit that fills the
//     buffer meanwhile blocks in write until it is read.
//   - The daemon opens it read-write too, non-blocking, so that it reads
//     from the runtime's poller and never sees end-of-file between one
//     process of the unit and the next.
var streams = []string{"stdout", "stderr"}

// pipeSize is the FIFOs' buffer: what a unit can write while no daemon
// reads it.
const pipeSize = 1 << 20

// unitOutput is a unit's output FIFOs, read by the Logger.
type unitOutput struct {
	paths   map[string]string
	readers []*os.File
}

// openOutput makes (or finds again) the unit's FIFOs under dir and
// starts logger capturing them.
func openOutput(dir, unit string, logger Logger) (*unitOutput, error) {
	o := &unitOutput{paths: map[string]string{}}
	for _, stream := range streams {
		p := filepath.Join(dir, unit+"."+stream)
		if err := unix.Mkfifo(p, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
			o.close()
			return nil, fmt.Errorf("output of %s: %w", unit, err)
		}
		if st, err := os.Lstat(p); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
			o.close()
			return nil, fmt.Errorf("output of %s: %s is not a FIFO", unit, p)
		}
		// os.OpenFile makes a FIFO non-blocking and pollable.
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("output of %s: %w", unit, err)
		}
		if rc, err := f.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
		}
		o.paths[stream] = p
		o.readers = append(o.readers, f)
		go logger.Capture(unit, stream, f)
	}
	return o, nil
}

// writers opens the FIFOs for a process of the unit: blocking,
// read-write (see streams).
func (o *unitOutput) writers() (stdout, stderr *os.File, err error) {
	open := func(stream string) (*os.File, error) {
		fd, err := unix.Open(o.paths[stream], unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", o.paths[stream], err)
		}
		return os.NewFile(uintptr(fd), o.paths[stream]), nil
	}
	if stdout, err = open("stdout"); err != nil {
		return nil, nil, err
	}
	if stderr, err = open("stderr"); err != nil {
		stdout.Close()
		return nil, nil, err
	}
	return stdout, stderr, nil
}

// close stops reading: the Logger's Capture calls return. The FIFOs stay
// for the units and the next daemon.
func (o *unitOutput) close() {
	for _, f := range o.readers {
		f.Close()
	}
	o.readers = nil
}

// remove closes the FIFOs and deletes them: the unit is gone.
func (o *unitOutput) remove() {
	o.close()
	for _, p := range o.paths {
		os.Remove(p)
	}
}
