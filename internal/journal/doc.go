// Package journal keeps each unit's log: what the unit's processes write to
// stdout and stderr, line by line with the time each line was read, and the
// unit manager's own lines about the unit. It plays journald's part for
// atoll's builtin service manager, read by `atoll unit journal NAME [-n N]
// [-f] [--since T] [-o json]` and by `atoll unit status`. It is a small store
// of one directory per unit, not journald's binary format.
//
// The manager hands each pipe's read end to [Journal.Capture] and its own
// messages to [Journal.Append]; both queue entries in memory, and one writer
// goroutine per unit appends them to the unit's current file, rotating it
// when it is full. [Journal.Read] gives the entries on disk and then those
// still queued, and with Follow goes on as they come.
//
// # Files
//
// Under the journal's directory (/var/lib/atoll/journal), which holds a
// .lock file that the open Journal flocks, each unit has a directory named
// after it. Letters, digits and "@_-:." stand for
// themselves, so web@1.service is web@1.service on disk; any other byte,
// and a leading ".", is written %XX (a systemd-escaped foo\x2dbar.service is
// foo%5Cx2dbar.service). In it:
//
//	current.jsonl                    the file being written
//	00000000000000001204.jsonl       rotated files, each named after the
//	00000000000000000587.jsonl       sequence number of its first record
//
// Files are only ever appended to. Each holds one record per line: a JSON
// object that starts with the sequence number and ends with "\n",
//
//	{"seq":1204,"time":"2025-11-25T10:51:03.123456789Z","stream":"stderr","pid":812,"pri":3,"line":"disk failed"}
//
// with "time" in RFC 3339 with nanoseconds, UTC; "stream" one of stdout,
// stderr, manager, journal; "pid" left out when not known; "pri" the syslog
// level, left out when it is 6 (info); "break" set to "line-max" or "eof"
// when the line did not end at a newline; and the text in "line", or, when
// it is not valid UTF-8, its bytes in "line_base64". Readers ignore fields
// they do not know. An operator can read the files with cat and jq when
// the daemon is down.
//
// The format is self-delimiting: a record is complete when its newline is
// there and it parses. A write torn by a crash or a full disk is cut off
// when it is found (by the writer, after a failed write, and by Open); if it
// cannot be, a newline ends it, and readers skip the damaged line, picking
// up a record glued behind damage by its `{"seq":` start. Sequence numbers
// let readers pass over a record they have already given, so no damage
// makes them give one twice.
//
// -n reads backwards from the end of the current file, then of the newest
// rotated files, only as far as it must; --since reads backwards until the
// first older entry.
//
// # Rotation and follow
//
// When a record would take the current file past MaxFileBytes, the writer
// fsyncs the file, renames it to the name of its first record, fsyncs the
// directory, deletes the oldest rotated files beyond MaxFiles-1, and starts a
// new current file. Rotated files are never renamed again, so a rotated
// file's name stays valid for as long as it exists; the one rename happens
// after the last write to the file.
//
// A reader holds the file it reads open. At the end of the current file it
// compares the file it holds with the path current.jsonl: the same file
// means it has read everything for now (with Follow it waits to be woken by
// the next queued line); a different one means the file was rotated, and
// since the writer had finished it before the rename, reading it to its end
// once more finishes it. The next file is the rotated file with the smallest
// first sequence number above the last one read, or current.jsonl when
// there is none; a reader that opens current.jsonl lists the rotated files
// again afterwards, so that a rotation between the listing and the open
// cannot make it skip a file. Rotated files, being complete, are read to
// their end and left the same way. So a follower gives every entry once and
// in order across any number of rotations, unless it falls so far behind
// that its next file is deleted before it gets there; then the entries are
// gone, and their sequence numbers are missing from what it gives.
//
// # When the disk is slow or full
//
// A unit never waits for the journal beyond its pipe. Capture reads, stamps
// and queues; it does not write. Each unit's queue holds up to QueueBytes;
// a line that does not fit is dropped and counted. A failed write (ENOSPC,
// EIO) keeps its entries queued and is tried again after a backoff (50 ms
// doubling to 5 s); meanwhile the queue fills and lines drop. When the queue
// has room again, the journal queues a line of its own, stream "journal" at
// warning, where the dropped lines would have been:
//
//	atoll-journal: 1312 lines dropped: write /var/lib/atoll/journal/web.service/current.jsonl: no space left on device
//
// [Stats] counts the drops and reports the last write error. Lines still
// queued are readable, so `atoll unit status` shows a unit's last lines
// even while the disk is full. The manager's own lines (Append) drop only
// past twice QueueBytes.
//
// Files are not fsynced per line: a crash of the machine can lose the last
// seconds of lines, as it can with journald; a crash of the daemon loses
// only what was queued. Rotation and Close fsync.
//
// # Restarts
//
// Open carries on a directory left by an earlier run: it cuts a torn record
// off each unit's current file and continues its sequence numbers above the
// highest in that file (found by searching its bytes for record starts, so
// that a damaged number can only make a gap, never hide new lines from
// readers). A unit whose files cannot be read at all takes its numbers from
// the clock, in nanoseconds, which are above any it can have used. The pipes themselves are the manager's to keep across a
// restart (FIFOs, or descriptors it passes on); Capture is called again with
// the new read end.
//
// # JSON
//
// [Entry] marshals to the object `journalctl -o json` writes, so that
// scripts written against journald keep working, and so that one JSON form
// serves both `-o json` and the daemon's API (UnmarshalJSON reads it back).
// As in journald, every value is a string:
//
//	__REALTIME_TIMESTAMP  microseconds since the epoch
//	__SEQNUM              the entry's sequence number in its unit
//	PRIORITY              syslog level, "6" unless a line said otherwise
//	_TRANSPORT            "stdout" for the unit's output, "journal" for the
//	                      manager's lines, "driver" for the journal's own
//	_SYSTEMD_UNIT         the unit, on the unit's output
//	UNIT                  the unit, on the manager's and the journal's lines,
//	                      as systemd's own "Started ..." messages carry it
//	SYSLOG_IDENTIFIER     "atoll" (manager) or "atoll-journal", and left
//	                      out for the unit's output, whose program name the
//	                      journal does not know
//	_PID                  the process, when known
//	_LINE_BREAK           "line-max" or "eof", as journald marks cut lines
//	_ATOLL_STREAM         stdout, stderr, manager or journal: journald
//	                      cannot tell stdout from stderr, atoll can
//	MESSAGE               the line; when it is not printable UTF-8 (an ANSI
//	                      colour escape, a stray byte) an array of its
//	                      bytes as numbers, exactly as journald writes it
//
// journald gives a service's stdout and stderr the same priority, info,
// unless SyslogLevel= says otherwise or a line starts with a "<N>" level
// prefix; atoll does the same (see [Source]). Fields journald has and atoll
// does not know (_BOOT_ID, _HOSTNAME, __CURSOR, __MONOTONIC_TIMESTAMP) are
// left out rather than made up.
//
// # Imports
//
// This package imports only the standard library and internal/fsutil. It
// must not import the service manager, unit files or the daemon: they use
// it, and the CLI reads through the daemon's API, never these files.
package journal
