//go:build linux

package seccomp

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/caps"
)

// The groups ParseRkt knows besides @systemd/NAME (systemdSets).
const (
	groupAll             = "@appc.io/all"
	groupEmpty           = "@appc.io/empty"
	groupDockerBlacklist = "@docker/default-blacklist"
	groupDockerWhitelist = "@docker/default-whitelist"
	groupRktBlacklist    = "@rkt/default-blacklist"
	groupRktWhitelist    = "@rkt/default-whitelist"
)

// groupNames returns every group ParseRkt knows, sorted.
func groupNames() []string {
	out := []string{groupAll, groupEmpty, groupDockerBlacklist, groupDockerWhitelist, groupRktBlacklist, groupRktWhitelist}
	for _, s := range systemdSets {
		out = append(out, "@systemd/"+s.name)
	}
	slices.Sort(out)
	return out
}

// ParseRkt reads rkt's --seccomp flag, a comma-separated list:
//
//	mode=retain,errno=ENOSYS,@docker/default-whitelist,mount,umount2
//	mode=remove,@docker/default-blacklist,reboot
//
// mode=retain makes an allowlist of the syscalls and groups named,
// mode=remove a blocklist. errno= names the Linux errno a denied syscall
// gets (EPERM, ENOSYS, ENOTSUP...); without it, EPERM (rkt killed the app
// instead: see the package doc). Syscalls named outright take precedence
// over a group's conditions (mode=retain,@docker/default-whitelist,clone3
// allows clone3).
//
// Groups: @docker/default-whitelist and its rkt name @rkt/default-whitelist
// are the allowlist of Default(retained), with its argument conditions;
// @docker/default-blacklist and @rkt/default-blacklist deny what Docker's
// profile denies for these capabilities (every syscall of the architecture
// table it does not allow, argument conditions kept); @appc.io/all and
// @appc.io/empty are every syscall and none; @systemd/NAME are systemd's
// sets chown, clock, cpu-emulation, debug, module, mount, obsolete,
// privileged, raw-io, reboot and swap (see systemd.go).
//
// Unknown syscalls (wrapping ErrUnknownSyscall) and groups
// (ErrUnknownGroup) are errors naming them; syscalls of another
// architecture are accepted and do nothing. A blocklist naming an Essential
// syscall is refused (ErrEssential); a group in a blocklist leaves its
// essential members allowed.
func ParseRkt(spec string, retained caps.Set) (*Profile, error) {
	t, err := nativeTable()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	var (
		mode   string
		errno  unix.Errno
		names  []string
		groups []string
	)
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		key, val, isOpt := strings.Cut(item, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch {
		case item == "":
			return nil, fmt.Errorf("seccomp: %w: empty item in %q", ErrSpec, spec)
		case isOpt && key == "mode":
			if mode != "" {
				return nil, fmt.Errorf("seccomp: %w: mode given twice", ErrSpec)
			}
			if val != "retain" && val != "remove" {
				return nil, fmt.Errorf("seccomp: %w: mode must be retain or remove, not %q", ErrSpec, val)
			}
			mode = val
		case isOpt && key == "errno":
			if errno != 0 {
				return nil, fmt.Errorf("seccomp: %w: errno given twice", ErrSpec)
			}
			if errno, err = parseErrno(val); err != nil {
				return nil, err
			}
		case isOpt:
			return nil, fmt.Errorf("seccomp: %w: unknown option %q (options are mode= and errno=)", ErrSpec, key)
		case strings.HasPrefix(item, "@"):
			all := groupNames()
			if _, ok := slices.BinarySearch(all, item); !ok {
				if hint := closest(strings.ToLower(item), all); hint != "" {
					return nil, fmt.Errorf("seccomp: %w %q (did you mean %q?)", ErrUnknownGroup, item, hint)
				}
				return nil, fmt.Errorf("seccomp: %w %q", ErrUnknownGroup, item)
			}
			if !slices.Contains(groups, item) {
				groups = append(groups, item)
			}
		default:
			if !t.has(item) && !knownAnywhere(item) {
				return nil, fmt.Errorf("seccomp: %w", t.unknown(item))
			}
			if !slices.Contains(names, item) {
				names = append(names, item)
			}
		}
	}
	if mode == "" {
		return nil, fmt.Errorf("seccomp: %w: %q has no mode=retain or mode=remove", ErrSpec, spec)
	}
	if len(names)+len(groups) == 0 {
		return nil, fmt.Errorf("seccomp: %w: %q names no syscall or group", ErrSpec, spec)
	}
	if errno == 0 {
		errno = unix.EPERM
	}
	deny := ActErrno(errno)

	p := &Profile{}
	if mode == "retain" {
		p.Default = deny
		for _, n := range names {
			if t.has(n) {
				p.Rules = append(p.Rules, Rule{Syscall: n, Action: ActAllow})
			}
		}
		for _, g := range groups {
			switch g {
			case groupDockerWhitelist, groupRktWhitelist:
				p.Rules = append(p.Rules, dockerRules(t, retained)...)
			case groupDockerBlacklist, groupRktBlacklist:
				return nil, fmt.Errorf("seccomp: %w: %s is a blocklist, for mode=remove", ErrSpec, g)
			case groupAll:
				p.Default = ActAllow
			case groupEmpty:
			default:
				set, _ := systemdSet(strings.TrimPrefix(g, "@systemd/"))
				for _, n := range set {
					if t.has(n) {
						p.Rules = append(p.Rules, Rule{Syscall: n, Action: ActAllow})
					}
				}
			}
		}
		return p, nil
	}

	p.Default = ActAllow
	for _, n := range names {
		if isEssential(n) {
			return nil, fmt.Errorf("seccomp: %w: %s: atoll forks and executes the app from a thread that already has the filter, and Go's fork and exec path needs it (see seccomp.Essential)", ErrEssential, n)
		}
		if t.has(n) {
			p.Rules = append(p.Rules, Rule{Syscall: n, Action: deny})
		}
	}
	for _, g := range groups {
		switch g {
		case groupDockerBlacklist, groupRktBlacklist:
			p.Rules = append(p.Rules, dockerBlocklist(t, retained, deny)...)
		case groupDockerWhitelist, groupRktWhitelist:
			return nil, fmt.Errorf("seccomp: %w: %s is an allowlist, for mode=retain", ErrSpec, g)
		case groupAll:
			p.Default = deny
		case groupEmpty:
		default:
			set, _ := systemdSet(strings.TrimPrefix(g, "@systemd/"))
			for _, n := range set {
				if t.has(n) {
					p.Rules = append(p.Rules, Rule{Syscall: n, Action: deny})
				}
			}
		}
	}
	return p, nil
}

// dockerBlocklist returns the rules that deny, with deny, what Docker's
// profile denies on t: for every syscall of the table, in number order,
// Docker's own rules for it followed by deny, unless Docker allows it
// whatever the arguments.
func dockerBlocklist(t *table, retained caps.Set, deny Action) []Rule {
	rules := dockerRules(t, retained)
	// Docker's rules for each syscall, as a list threaded through next.
	first := make(map[string]int, len(rules))
	next := make([]int, len(rules))
	last := make([]int, len(rules)) // last[first rule] = its list's tail
	for i, r := range rules {
		next[i] = -1
		if f, ok := first[r.Syscall]; ok {
			next[last[f]] = i
			last[f] = i
			continue
		}
		first[r.Syscall] = i
		last[i] = i
	}
	nrs := make([]int, 0, len(t.info.SyscallNumbers))
	for nr := range t.info.SyscallNumbers {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	out := make([]Rule, 0, len(nrs))
	for _, nr := range nrs {
		name := t.info.SyscallNumbers[nr]
		f, ok := first[name]
		if !ok {
			out = append(out, Rule{Syscall: name, Action: deny})
			continue
		}
		// Docker allows it whatever the arguments if an unconditional rule
		// comes, with only allowing rules up to it.
		allowed, decided := true, false
		for i := f; i >= 0 && !decided; i = next[i] {
			allowed = allowed && rules[i].Action == ActAllow
			decided = len(rules[i].Args) == 0
		}
		if decided && allowed {
			continue
		}
		for i := f; i >= 0; i = next[i] {
			out = append(out, rules[i])
			if len(rules[i].Args) == 0 {
				break
			}
		}
		if !decided {
			out = append(out, Rule{Syscall: name, Action: deny})
		}
	}
	return out
}

// parseErrno reads a Linux errno name: EPERM, ENOSYS... (any case; ENOTSUP,
// EWOULDBLOCK and EDEADLOCK are the aliases they are in C).
func parseErrno(s string) (unix.Errno, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	switch name { // errnos with two names, whichever x/sys uses
	case "ENOTSUP", "EOPNOTSUPP":
		return unix.EOPNOTSUPP, nil
	case "EWOULDBLOCK", "EAGAIN":
		return unix.EAGAIN, nil
	case "EDEADLOCK", "EDEADLK":
		return unix.EDEADLK, nil
	}
	var known []string
	for e := unix.Errno(1); e < 256; e++ { // Linux's errnos end at 133
		n := unix.ErrnoName(e)
		if n == "" {
			continue
		}
		if n == name {
			return e, nil
		}
		known = append(known, n)
	}
	if hint := closest(name, known); hint != "" {
		return 0, fmt.Errorf("seccomp: %w: unknown errno %q (did you mean %s?)", ErrSpec, s, hint)
	}
	return 0, fmt.Errorf("seccomp: %w: unknown errno %q", ErrSpec, s)
}
