//go:build linux

package seccomp

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/caps"
)

// Errors callers may test with errors.Is.
var (
	// ErrUnknownSyscall: a name is no syscall of any architecture known here.
	ErrUnknownSyscall = errors.New("unknown syscall")
	// ErrUnknownGroup: a "@group" of ParseRkt is not one of its groups.
	ErrUnknownGroup = errors.New("unknown syscall group")
	// ErrEssential: a blocklist names a syscall the fork and exec path needs.
	ErrEssential = errors.New("syscall cannot be denied")
	// ErrSpec: ParseRkt's spec is malformed (mode, errno, empty items...).
	ErrSpec = errors.New("bad seccomp spec")
	// ErrInvalid: a profile or filter cannot be compiled or loaded as it is.
	ErrInvalid = errors.New("invalid seccomp profile")
	// ErrUnsupportedArch: no syscall table for the running architecture.
	ErrUnsupportedArch = errors.New("unsupported architecture")
)

// Action is what the filter returns for a syscall: a SECCOMP_RET_* value,
// with its data (the errno) in the low 16 bits.
type Action uint32

// Actions. ActErrno makes the errno ones.
const (
	ActAllow       Action = unix.SECCOMP_RET_ALLOW
	ActKillProcess Action = unix.SECCOMP_RET_KILL_PROCESS
	ActKillThread  Action = unix.SECCOMP_RET_KILL_THREAD
	ActTrap        Action = unix.SECCOMP_RET_TRAP
	ActLog         Action = unix.SECCOMP_RET_LOG
)

// ActErrno returns the action that fails the syscall with errno e.
func ActErrno(e unix.Errno) Action {
	return Action(unix.SECCOMP_RET_ERRNO | uint32(e)&unix.SECCOMP_RET_DATA)
}

// String names the action: "allow", "errno(EPERM)", "kill-process"...
func (a Action) String() string {
	data := uint32(a) & unix.SECCOMP_RET_DATA
	switch uint32(a) & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW:
		return "allow"
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "kill-process"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "kill-thread"
	case unix.SECCOMP_RET_TRAP:
		return "trap"
	case unix.SECCOMP_RET_LOG:
		return "log"
	case unix.SECCOMP_RET_TRACE:
		return "trace(" + strconv.Itoa(int(data)) + ")"
	case unix.SECCOMP_RET_USER_NOTIF:
		return "user-notif"
	case unix.SECCOMP_RET_ERRNO:
		if n := unix.ErrnoName(unix.Errno(data)); n != "" {
			return "errno(" + n + ")"
		}
		return "errno(" + strconv.Itoa(int(data)) + ")"
	}
	return fmt.Sprintf("action(%#x)", uint32(a))
}

// valid reports whether the kernel knows a and this package can install it
// (no user notification: nobody would listen; no ERRNO(0), a fake success).
func (a Action) valid() bool {
	data := uint32(a) & unix.SECCOMP_RET_DATA
	switch uint32(a) & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_KILL_PROCESS, unix.SECCOMP_RET_KILL_THREAD, unix.SECCOMP_RET_LOG:
		return data == 0
	case unix.SECCOMP_RET_TRAP, unix.SECCOMP_RET_TRACE:
		return true
	case unix.SECCOMP_RET_ERRNO:
		return data >= 1 && data <= 4095 // MAX_ERRNO
	}
	return false
}

// Op compares a syscall argument with Arg.Value.
type Op uint8

// Comparisons, as libseccomp's SCMP_CMP_*; values are unsigned 64-bit.
const (
	OpEQ       Op = iota + 1 // arg == Value
	OpNE                     // arg != Value
	OpLT                     // arg < Value
	OpLE                     // arg <= Value
	OpGT                     // arg > Value
	OpGE                     // arg >= Value
	OpMaskedEQ               // arg & Mask == Value
)

var opNames = [...]string{OpEQ: "==", OpNE: "!=", OpLT: "<", OpLE: "<=", OpGT: ">", OpGE: ">=", OpMaskedEQ: "&mask=="}

func (o Op) String() string {
	if int(o) > 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Arg is a condition on one syscall argument.
type Arg struct {
	Index uint   // the argument, 0 to 5
	Op    Op     // how to compare
	Value uint64 // what to compare with
	Mask  uint64 // for OpMaskedEQ: the bits compared
}

// Rule gives Action to a syscall when all its Args hold (or always when it
// has none).
type Rule struct {
	Syscall string
	Args    []Arg
	Action  Action
}

// Profile is a seccomp allowlist or blocklist for the running architecture:
// an allowlist has a denying Default and rules that allow, a blocklist the
// other way round. For one syscall, the first of its rules whose
// conditions hold decides; when none does, Default does. Whatever the
// rules, the filter Assemble makes allows the Essential syscalls first.
type Profile struct {
	Default Action
	Rules   []Rule
}

// Default is Docker's default profile (moby's seccomp/default.json; see
// docker.go for the version): an allowlist with default action
// ERRNO(EPERM), personality allowed for five values only, socket for every
// family but AF_VSOCK, clone without namespace flags and clone3 answering
// ENOSYS (so that libcs fall back to clone) unless CAP_SYS_ADMIN is
// retained, and the syscalls Docker allows only with a capability
// (CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_SYS_BOOT,
// CAP_SYS_RAWIO, CAP_SYS_TIME, CAP_SYS_NICE, CAP_SYS_PACCT,
// CAP_SYS_TTY_CONFIG, CAP_SYSLOG, CAP_SYS_CHROOT, CAP_DAC_READ_SEARCH,
// CAP_BPF, CAP_PERFMON) when retained holds it.
func Default(retained caps.Set) (*Profile, error) {
	t, err := nativeTable()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return &Profile{Default: ActErrno(unix.EPERM), Rules: dockerRules(t, retained)}, nil
}

// Check tells what the assembled filter does with syscall name: the action
// it takes when no argument condition matches, and whether argument
// conditions can change that.
func (p *Profile) Check(name string) (fallback Action, conditional bool, err error) {
	t, err := nativeTable()
	if err != nil {
		return 0, false, fmt.Errorf("seccomp: %w", err)
	}
	nr, ok := t.nr(name)
	if !ok {
		return 0, false, fmt.Errorf("seccomp: %w", t.unknown(name))
	}
	c, err := p.plan(t)
	if err != nil {
		return 0, false, err
	}
	ch := c.chainOf(nr)
	return ch.fallback, len(ch.rules) > 0, nil
}

// Allowed returns, sorted, the syscalls of the running architecture that
// the assembled filter allows for at least some arguments.
func (p *Profile) Allowed() ([]string, error) {
	t, err := nativeTable()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	c, err := p.plan(t)
	if err != nil {
		return nil, err
	}
	var out []string
	for name, nr := range t.info.SyscallNames {
		ch := c.chainOf(nr)
		ok := ch.fallback == ActAllow
		for _, r := range ch.rules {
			ok = ok || r.Action == ActAllow
		}
		if ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// unknown returns the error for a syscall name t does not have.
func (t *table) unknown(name string) error {
	if knownAnywhere(name) {
		return fmt.Errorf("%w %q on %s", ErrUnknownSyscall, name, t.info.Name)
	}
	if hint := closest(strings.ToLower(name), t.names()); hint != "" {
		return fmt.Errorf("%w %q (did you mean %q?)", ErrUnknownSyscall, name, hint)
	}
	return fmt.Errorf("%w %q", ErrUnknownSyscall, name)
}

func (t *table) names() []string {
	out := make([]string, 0, len(t.info.SyscallNames))
	for n := range t.info.SyscallNames {
		out = append(out, n)
	}
	slices.Sort(out) // ties in closest go to the first in order
	return out
}

// closest returns the candidate nearest to s, or "" when none is close
// enough to be a likely typo (or s is too long to be one).
func closest(s string, candidates []string) string {
	if len(s) > maxHintLen {
		return ""
	}
	best, bestD := "", -1
	for _, c := range candidates {
		d := distance(s, c)
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD >= 0 && (bestD <= 2 || bestD <= len(s)/3) {
		return best
	}
	return ""
}

// maxHintLen bounds the names closest compares, so that a huge name costs
// nothing; the longest syscall or group name is 28 bytes.
const maxHintLen = 64

// distance is the Levenshtein distance between a and b (bytes).
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
