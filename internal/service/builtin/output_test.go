package builtin

import (
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// captureCounter is a memLogger that counts Capture calls and says when
// one returns.
type captureCounter struct {
	*memLogger
	calls    atomic.Int64
	returned chan string
}

func (l *captureCounter) Capture(unit, stream string, r io.Reader) {
	l.calls.Add(1)
	l.memLogger.Capture(unit, stream, r)
	l.returned <- stream
}

func (e *testEnv) managerWith(logger Logger) *Manager {
	e.t.Helper()
	m, err := New(Options{UnitDir: e.unitDir, RunDir: e.runDir, CgroupParent: e.cgroupParent, Logger: logger})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { m.Close() })
	return m
}

// TestOutputReadOnlyWhileItComes checks that a unit writing nothing holds
// no Capture, that a Capture ends once the stream is idle at the end of a
// line, and that a line written in pieces, with pauses, arrives whole.
func TestOutputReadOnlyWhileItComes(t *testing.T) {
	e := newTestEnv(t)
	logger := &captureCounter{memLogger: e.log, returned: make(chan string, 16)}
	m := e.managerWith(logger)
	ctx := ctxT(t)

	load(t, m, "quiet.service", "[Service]\nExecStart=/bin/sleep 1000\n")
	if err := m.Start(ctx, "quiet.service"); err != nil {
		t.Fatal(err)
	}
	if n := logger.calls.Load(); n != 0 {
		t.Errorf("%d Capture calls for a unit that wrote nothing, want 0", n)
	}

	load(t, m, "pieces.service", `[Service]
ExecStart=/bin/sh -c 'printf par; sleep 0.2; printf "tial\nnext\n"; sleep 0.2; echo last; sleep 1000'
`)
	if err := m.Start(ctx, "pieces.service"); err != nil {
		t.Fatal(err)
	}
	e.log.waitLine(t, "pieces.service", "stdout: last")
	var output []string
	for _, line := range e.log.get("pieces.service") {
		if strings.HasPrefix(line, "stdout: ") {
			output = append(output, line)
		}
	}
	if want := []string{"stdout: partial", "stdout: next", "stdout: last"}; !slices.Equal(output, want) {
		t.Errorf("output %q, want %q", output, want)
	}
	// The stream is idle at the end of a line: every Capture returns,
	// the one that read "last" included.
	for returned := int64(0); returned < logger.calls.Load(); returned++ {
		select {
		case stream := <-logger.returned:
			if stream != "stdout" {
				t.Errorf("Capture of %s called, want stdout only", stream)
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d Capture calls returned: one still reads an idle stream", returned, logger.calls.Load())
		}
	}
	for _, name := range []string{"quiet.service", "pieces.service"} {
		if err := m.Stop(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
}
