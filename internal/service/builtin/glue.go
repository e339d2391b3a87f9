package builtin

import (
	"bytes"
	"io"

	sdunit "github.com/coreos/go-systemd/v22/unit"

	"atoll.dev/atoll/internal/journal"
	unitfile "atoll.dev/atoll/internal/unit"
)

// JournalLogger is a Logger that keeps the units' output and the manager's
// lines in j, where `atoll unit journal` reads them.
func JournalLogger(j *journal.Journal) Logger { return journalLogger{j} }

type journalLogger struct{ j *journal.Journal }

// Capture ends when r does; a closed journal ends it too.
func (l journalLogger) Capture(name, stream string, r io.Reader) {
	l.j.Capture(name, journal.Source{Stream: stream}, r)
}

// Append never blocks: a line the journal cannot take is dropped and
// counted there.
func (l journalLogger) Append(name, line string) {
	l.j.Append(name, journal.Entry{Line: line})
}

// UnitParser returns an Options.ParseUnit that reads unit files with
// package unit: systemd's syntax checked with line numbers, and the
// specifiers expanded for the unit's name (an instance's, for a template's
// file) on this machine; errors name the file (source) and line.
// Warnings (unknown directives) do not stop a unit, as they do not in
// systemd.
func UnitParser(machine unitfile.Context) func(name, source string, content []byte) ([]*sdunit.UnitOption, error) {
	return func(name, source string, content []byte) ([]*sdunit.UnitOption, error) {
		n, err := unitfile.ParseName(name)
		if err != nil {
			return nil, err
		}
		f, _, err := unitfile.Parse(source, bytes.NewReader(content))
		if err != nil {
			return nil, err
		}
		if n.Template {
			// Checked only: specifiers are expanded for each instance.
			return f.Options, nil
		}
		ctx := machine
		ctx.Name = n
		f, err = f.Expand(ctx)
		if err != nil {
			return nil, err
		}
		return f.Options, nil
	}
}
