package systemd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"atoll.dev/atoll/internal/journal"
	"atoll.dev/atoll/internal/service"
)

// Journal reads units' logs from journald with journalctl, in the shape
// of (*journal.Journal).Read, so that the daemon serves `atoll unit
// journal` from journald when the backend is systemd. Its zero value runs
// the journalctl on PATH.
type Journal struct {
	// Journalctl is the program to run; "journalctl" if empty.
	Journalctl string
}

// Read calls fn with the unit's entries, oldest first: what `journalctl
// -u UNIT` shows, the unit's output and systemd's lines about it. Lines,
// Since and Follow act as journalctl's -n, --since and -f; without Lines,
// every entry is given (with Follow too, where journalctl would start
// with the last ten).
//
// Read returns the first error fn returns, or nil once the entries there
// are have been given; with Follow it returns ctx.Err() when ctx ends.
// journalctl failing (no journal readable) is an error with what it said.
func (j Journal) Read(ctx context.Context, unit string, o journal.ReadOptions, fn func(journal.Entry) error) error {
	if err := checkName(unit); err != nil {
		return err
	}
	prog := j.Journalctl
	if prog == "" {
		prog = "journalctl"
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(runCtx, prog, journalctlArgs(unit, o)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("journal of %s: %w", unit, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("journal of %s: %w", unit, err)
	}
	sc := bufio.NewScanner(stdout)
	// journalctl writes one entry a line; an entry can hold a long
	// message.
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	var fnErr, decodeErr error
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e journal.Entry
		if err := e.UnmarshalJSON(line); err != nil {
			decodeErr = fmt.Errorf("journal of %s: %w", unit, err)
			break
		}
		// journald names the unit a line of systemd's is about in UNIT,
		// and the sender's (init.scope) in _SYSTEMD_UNIT, which Entry
		// reads first: every entry here is about unit.
		e.Unit = unit
		if err := fn(e); err != nil {
			fnErr = err
			break
		}
	}
	scanErr := sc.Err()
	if fnErr != nil || decodeErr != nil || scanErr != nil {
		// journalctl may have more to say, or follow on: stop it.
		cancel()
	}
	waitErr := cmd.Wait()
	switch {
	case fnErr != nil:
		return fnErr
	case ctx.Err() != nil:
		// journalctl was stopped, maybe in the middle of a line.
		return ctx.Err()
	case decodeErr != nil:
		return decodeErr
	case scanErr != nil:
		return fmt.Errorf("journal of %s: %w", unit, scanErr)
	case waitErr != nil:
		return fmt.Errorf("journal of %s: journalctl: %w: %s", unit, waitErr, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// journalctlArgs are the arguments that read a unit's journal as o asks.
func journalctlArgs(unit string, o journal.ReadOptions) []string {
	args := []string{"--unit=" + unit, "--output=json", "--all", "--no-pager", "--quiet"}
	if o.Lines > 0 {
		args = append(args, "--lines="+strconv.Itoa(o.Lines))
	} else {
		args = append(args, "--lines=all")
	}
	if !o.Since.IsZero() {
		us := o.Since.UnixMicro()
		args = append(args, fmt.Sprintf("--since=@%d.%06d", us/1e6, us%1e6))
	}
	if o.Follow {
		args = append(args, "--follow")
	}
	return args
}

var _ service.Journal = Journal{}
