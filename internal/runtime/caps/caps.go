//go:build linux

// Package caps names, parses and applies the Linux capabilities an atoll app
// may keep.
//
// An app gets by default the 14 capabilities Docker and rkt grant
// (Default); rkt's --caps-retain and --caps-remove change that set (Resolve).
// ConfineThread applies a set to the calling OS thread only, so that the
// program that thread forks and executes can never hold more: the pod's PID 1
// confines one locked thread per app, forks the app from it, and lets the
// thread die with its goroutine. Capability sets are per thread in Linux, so
// the rest of PID 1 keeps its own.
//
// The package imports nothing from atoll. Its name table is written out here
// from the unix.CAP_* constants of golang.org/x/sys (the numbers are those of
// linux/capability.h): a table of 41 names does not need a dependency such as
// libcap or gocapability, and keeping it here lets Parse suggest a spelling.
// Capabilities the running kernel knows beyond the table (All reads
// /proc/sys/kernel/cap_last_cap) are named CAP_<number>.
//
// Choices:
//   - Parse accepts "CAP_NET_ADMIN", "NET_ADMIN" and "net_admin" alike, and
//     an unknown name is an error (ErrUnknown) that suggests the closest
//     known one when one is close.
//   - ConfineThread leaves the thread's effective and permitted sets alone:
//     the forked child still needs them to switch user before execve, and
//     execve computes the app's sets from the bounding set and the (cleared)
//     inheritable and ambient sets. A root app thus gets exactly the set; an
//     app run as another user gets only what file capabilities of its
//     executable grant within the bounding set.
//   - The inheritable set is empty, not the granted set: with it, a non-root
//     app could gain capabilities through an executable's inheritable file
//     capabilities (CVE-2022-24769, fixed the same way in runc and moby).
package caps

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Cap is one Linux capability (its number, as in linux/capability.h).
type Cap int

// Set is a set of capabilities as a bit mask (bit N = capability N).
type Set uint64

// ErrUnknown is returned, wrapped, for a capability name Parse does not know.
var ErrUnknown = errors.New("unknown capability")

// ErrRetainAndRemove is returned by Resolve when both lists are given.
var ErrRetainAndRemove = errors.New("--caps-retain and --caps-remove cannot be used together")

// names is the capability table, indexed by number, from the unix.CAP_*
// constants (linux/capability.h up to Linux 5.9's CAP_CHECKPOINT_RESTORE).
var names = [...]string{
	unix.CAP_CHOWN:              "CAP_CHOWN",
	unix.CAP_DAC_OVERRIDE:       "CAP_DAC_OVERRIDE",
	unix.CAP_DAC_READ_SEARCH:    "CAP_DAC_READ_SEARCH",
	unix.CAP_FOWNER:             "CAP_FOWNER",
	unix.CAP_FSETID:             "CAP_FSETID",
	unix.CAP_KILL:               "CAP_KILL",
	unix.CAP_SETGID:             "CAP_SETGID",
	unix.CAP_SETUID:             "CAP_SETUID",
	unix.CAP_SETPCAP:            "CAP_SETPCAP",
	unix.CAP_LINUX_IMMUTABLE:    "CAP_LINUX_IMMUTABLE",
	unix.CAP_NET_BIND_SERVICE:   "CAP_NET_BIND_SERVICE",
	unix.CAP_NET_BROADCAST:      "CAP_NET_BROADCAST",
	unix.CAP_NET_ADMIN:          "CAP_NET_ADMIN",
	unix.CAP_NET_RAW:            "CAP_NET_RAW",
	unix.CAP_IPC_LOCK:           "CAP_IPC_LOCK",
	unix.CAP_IPC_OWNER:          "CAP_IPC_OWNER",
	unix.CAP_SYS_MODULE:         "CAP_SYS_MODULE",
	unix.CAP_SYS_RAWIO:          "CAP_SYS_RAWIO",
	unix.CAP_SYS_CHROOT:         "CAP_SYS_CHROOT",
	unix.CAP_SYS_PTRACE:         "CAP_SYS_PTRACE",
	unix.CAP_SYS_PACCT:          "CAP_SYS_PACCT",
	unix.CAP_SYS_ADMIN:          "CAP_SYS_ADMIN",
	unix.CAP_SYS_BOOT:           "CAP_SYS_BOOT",
	unix.CAP_SYS_NICE:           "CAP_SYS_NICE",
	unix.CAP_SYS_RESOURCE:       "CAP_SYS_RESOURCE",
	unix.CAP_SYS_TIME:           "CAP_SYS_TIME",
	unix.CAP_SYS_TTY_CONFIG:     "CAP_SYS_TTY_CONFIG",
	unix.CAP_MKNOD:              "CAP_MKNOD",
	unix.CAP_LEASE:              "CAP_LEASE",
	unix.CAP_AUDIT_WRITE:        "CAP_AUDIT_WRITE",
	unix.CAP_AUDIT_CONTROL:      "CAP_AUDIT_CONTROL",
	unix.CAP_SETFCAP:            "CAP_SETFCAP",
	unix.CAP_MAC_OVERRIDE:       "CAP_MAC_OVERRIDE",
	unix.CAP_MAC_ADMIN:          "CAP_MAC_ADMIN",
	unix.CAP_SYSLOG:             "CAP_SYSLOG",
	unix.CAP_WAKE_ALARM:         "CAP_WAKE_ALARM",
	unix.CAP_BLOCK_SUSPEND:      "CAP_BLOCK_SUSPEND",
	unix.CAP_AUDIT_READ:         "CAP_AUDIT_READ",
	unix.CAP_PERFMON:            "CAP_PERFMON",
	unix.CAP_BPF:                "CAP_BPF",
	unix.CAP_CHECKPOINT_RESTORE: "CAP_CHECKPOINT_RESTORE",
}

// Known is the set of every capability in the package's name table
// (CAP_CHOWN through CAP_CHECKPOINT_RESTORE).
const Known Set = 1<<len(names) - 1

// String returns the capability's name, "CAP_CHOWN", or "CAP_<n>" for a
// number the table does not name.
func (c Cap) String() string {
	if c >= 0 && int(c) < len(names) {
		return names[c]
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// Default is the 14 capabilities Docker and rkt grant an app: AUDIT_WRITE,
// CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE,
// NET_RAW, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT.
func Default() Set {
	return Of(
		unix.CAP_AUDIT_WRITE,
		unix.CAP_CHOWN,
		unix.CAP_DAC_OVERRIDE,
		unix.CAP_FOWNER,
		unix.CAP_FSETID,
		unix.CAP_KILL,
		unix.CAP_MKNOD,
		unix.CAP_NET_BIND_SERVICE,
		unix.CAP_NET_RAW,
		unix.CAP_SETFCAP,
		unix.CAP_SETGID,
		unix.CAP_SETPCAP,
		unix.CAP_SETUID,
		unix.CAP_SYS_CHROOT,
	)
}

// Of returns the set holding the given capabilities. Numbers outside 0..63
// are ignored.
func Of(cs ...Cap) Set {
	var s Set
	for _, c := range cs {
		if c >= 0 && c < 64 {
			s |= 1 << uint(c)
		}
	}
	return s
}

// Has reports whether c is in s.
func (s Set) Has(c Cap) bool {
	return c >= 0 && c < 64 && s&(1<<uint(c)) != 0
}

// Len returns the number of capabilities in s.
func (s Set) Len() int {
	n := 0
	for ; s != 0; s &= s - 1 {
		n++
	}
	return n
}

// Caps returns the capabilities in s in numeric order.
func (s Set) Caps() []Cap {
	out := make([]Cap, 0, s.Len())
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			out = append(out, c)
		}
	}
	return out
}

// Names returns the names in s, "CAP_CHOWN", ..., in numeric order.
func (s Set) Names() []string {
	out := make([]string, 0, s.Len())
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			out = append(out, c.String())
		}
	}
	return out
}

// String returns the comma-separated Names of s ("" for the empty set).
func (s Set) String() string {
	return strings.Join(s.Names(), ",")
}

// Parse reads capability names: "CAP_NET_ADMIN", "NET_ADMIN" and
// "net_admin" all name the same one; surrounding spaces are ignored. An
// unknown name is an error wrapping ErrUnknown that names it and, where a
// known name is close, suggests the right spelling.
func Parse(names []string) (Set, error) {
	var s Set
	for _, n := range names {
		c, err := lookup(n)
		if err != nil {
			return 0, err
		}
		s |= 1 << uint(c)
	}
	return s, nil
}

// lookup resolves one name.
func lookup(name string) (Cap, error) {
	key := strings.ToUpper(strings.TrimSpace(name))
	if key == "" {
		return 0, fmt.Errorf("%w: empty name", ErrUnknown)
	}
	key = strings.TrimPrefix(key, "CAP_")
	for i, n := range names {
		if n[len("CAP_"):] == key {
			return Cap(i), nil
		}
	}
	if hint := suggest(key); hint != "" {
		return 0, fmt.Errorf("%w %q (did you mean %s?)", ErrUnknown, name, hint)
	}
	return 0, fmt.Errorf("%w %q", ErrUnknown, name)
}

// suggest returns the table name closest to key (upper case, no CAP_
// prefix), or "" when none is close enough to be a likely typo.
func suggest(key string) string {
	if len(key) > 64 { // the longest name is 22 bytes: no typo of one
		return ""
	}
	best, bestD := "", -1
	for _, n := range names {
		d := distance(key, n[len("CAP_"):])
		if bestD < 0 || d < bestD {
			best, bestD = n, d
		}
	}
	if bestD <= 2 || bestD <= len(key)/3 {
		return best
	}
	return ""
}

// distance is the Levenshtein distance between a and b (ASCII).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Resolve applies rkt's flags: retain (--caps-retain) replaces the default
// set, remove (--caps-remove) removes from it; both at once is an error
// wrapping ErrRetainAndRemove. With neither, the set is Default().
func Resolve(retain, remove []string) (Set, error) {
	switch {
	case len(retain) > 0 && len(remove) > 0:
		return 0, fmt.Errorf("caps: %w", ErrRetainAndRemove)
	case len(retain) > 0:
		s, err := Parse(retain)
		if err != nil {
			return 0, fmt.Errorf("caps: --caps-retain: %w", err)
		}
		return s, nil
	case len(remove) > 0:
		s, err := Parse(remove)
		if err != nil {
			return 0, fmt.Errorf("caps: --caps-remove: %w", err)
		}
		return Default() &^ s, nil
	}
	return Default(), nil
}
