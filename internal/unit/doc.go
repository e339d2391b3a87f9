// Package unit reads and writes systemd unit files the way both systemd and
// fleet read them: it parses a unit file or drop-in into a File of options
// (github.com/coreos/go-systemd/v22/unit's UnitOption), reports what
// systemd would ignore as warnings with line numbers, refuses malformed
// files with an error naming the file and line, and writes files back with
// go-systemd's serializer. On top of that it handles unit names, templates
// and instances (Name, File.Instance), specifiers (Expand, File.Expand),
// drop-ins (LoadDropIns, ApplyDropIns), fleet's content hash (File.Hash)
// and fleet's [X-Fleet] section (File.Fleet).
//
// The service manager and fleet's scheduler and API build on it. It does
// no I/O beyond reading the files it is asked to read, and imports nothing
// from atoll.
//
// # Parsing
//
// go-systemd's Deserialize gives options but no line numbers, its errors
// carry no line, and it accepts some files that systemd reads differently.
// So Parse uses its own line scanner, which follows go-systemd's lexer
// (unit/deserialize.go) step by step: every file Parse accepts yields
// exactly the options go-systemd would give (FuzzParse checks this against
// go-systemd itself), so hashes agree with fleet's, which hashes what
// go-systemd parsed. The syntax is systemd's (systemd.syntax(7),
// src/shared/conf-parser.c):
//
//   - a [Section] header on a line of its own; blank lines; comments, whole
//     lines starting with # or ;
//   - Key=Value directives, with white space around the key and value
//     trimmed;
//   - a line ending with a backslash continues on the next line. The
//     option then holds the value as go-systemd and fleet hold it, lines
//     and backslashes included, so that writing it back reproduces the
//     lines; Value, Values and Unfold give the joined value systemd reads;
//   - a UTF-8 byte order mark at the start is skipped, and "\r\n" line ends
//     are read as "\n".
//
// Parse refuses, with a *SyntaxError, what systemd would not read as
// intended and what go-systemd and systemd would read differently, since a
// unit that means one thing to fleet and another to systemd is broken:
//
//   - a directive before the first section header (systemd and go-systemd
//     skip it silently), a line that is neither a header, a comment nor
//     Key=Value, an unterminated or empty section header, text after a
//     header, a directive with no name;
//   - a line of LINE_MAX (2048) bytes or more, the limit of go-systemd and
//     of the systemd fleet ran on; invalid UTF-8, NUL bytes, control
//     characters and lone carriage returns;
//   - white space other than space and tab (such as U+00A0) where it would
//     be trimmed, since go-systemd trims all Unicode space and systemd only
//     ASCII space;
//   - a comment ending in a backslash followed by a line that is neither
//     blank nor a comment (go-systemd skips that line as part of the
//     comment), a comment line that ends a continued value (systemd skips
//     it and keeps the value open), a continued line ending in an escaped
//     backslash "\\" (systemd ends the value there, go-systemd does not),
//     and a file that ends right after a continuation backslash.
//
// Unknown sections, sections that do not belong to the unit's type (such
// as [Socket] in a .service) and unknown or obsolete directives are kept
// in the File and reported as Warnings, since systemd ignores them with a
// warning. The tables of known directives follow systemd's
// src/core/load-fragment-gperf.gperf.in (systemd 258) and are checked in
// the tests against the items systemd 252 dumps. Sections starting with
// "X-" are the user's and never warned about; File.Fleet checks [X-Fleet].
//
// # Writing and hashing
//
// File.Bytes writes options with go-systemd's Serialize, exactly as fleet
// does, so File.Hash, the SHA-1 of those bytes, is the hash fleet's
// unit.UnitFile.Hash computes (coreos/fleet unit/unit.go) and its API and
// registry use. Serialize groups options by section, so a file whose
// sections repeat is written with each section once.
//
// # Names, templates, specifiers and drop-ins
//
// ParseName applies systemd's unit name rules (src/basic/unit-name.c).
// Expand implements systemd's specifiers that depend only on the unit name
// and the machine (%n %N %p %P %i %I %H %l %m %b %%) and refuses the others
// by name. LoadDropIns finds drop-ins the way systemd's src/shared/dropin.c
// does (unit, template, dash-prefix and type directories, sorted by file
// name, more specific files hiding less specific ones of the same name);
// ApplyDropIns appends their options, and Values applies systemd's rule
// that an empty assignment resets a list.
//
// # [X-Fleet]
//
// File.Fleet reads MachineID, MachineOf, MachineMetadata, Conflicts,
// Global and Replaces and their old X-Condition… and X-Conflicts aliases
// with fleet's rules (job/job.go, unit/unit.go, agent/state.go) and refuses
// the combinations fleet's API refuses (api/units.go ValidateOptions).
package unit
