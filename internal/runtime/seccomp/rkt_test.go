//go:build linux

package seccomp

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/caps"
)

func mustParse(t testing.TB, spec string, retained caps.Set) *Profile {
	t.Helper()
	p, err := ParseRkt(spec, retained)
	if err != nil {
		t.Fatalf("ParseRkt(%q): %v", spec, err)
	}
	return p
}

func TestParseRktErrors(t *testing.T) {
	tests := []struct {
		spec string
		want error
		msg  string
	}{
		{"", ErrSpec, "empty item"},
		{"mode=retain,read,,write", ErrSpec, "empty item"},
		{"mode=retain", ErrSpec, "names no syscall or group"},
		{"mode=retain,errno=ENOSYS", ErrSpec, "names no syscall or group"},
		{"read,write", ErrSpec, "no mode=retain or mode=remove"},
		{"mode=keep,read", ErrSpec, `mode must be retain or remove, not "keep"`},
		{"mode=retain,mode=remove,read", ErrSpec, "mode given twice"},
		{"mode=retain,errno=EPERM,errno=ENOSYS,read", ErrSpec, "errno given twice"},
		{"mode=retain,errno=EFROBNICATE,read", ErrSpec, `unknown errno "EFROBNICATE"`},
		{"mode=retain,errno=EPRM,read", ErrSpec, `unknown errno "EPRM" (did you mean EPERM?)`},
		{"mode=retain,errno=,read", ErrSpec, `unknown errno ""`},
		{"mode=retain,frob=1,read", ErrSpec, `unknown option "frob"`},
		{"mode=retain,mout", ErrUnknownSyscall, `unknown syscall "mout" (did you mean "mount"?)`},
		{"mode=retain,read,frobnicate_everything", ErrUnknownSyscall, `unknown syscall "frobnicate_everything"`},
		{"mode=retain,MOUNT", ErrUnknownSyscall, `did you mean "mount"?`},
		{"mode=retain,@docker/default-whitlist", ErrUnknownGroup, `unknown syscall group "@docker/default-whitlist" (did you mean "@docker/default-whitelist"?)`},
		{"mode=retain,@systemd/mnt", ErrUnknownGroup, `"@systemd/mnt" (did you mean "@systemd/mount"?)`},
		{"mode=retain,@nothing/at-all-like-this", ErrUnknownGroup, `unknown syscall group "@nothing/at-all-like-this"`},
		{"mode=remove,execve", ErrEssential, "execve"},
		{"mode=remove,reboot,clone", ErrEssential, "clone"},
		{"mode=remove,setuid", ErrEssential, "setuid"},
		{"mode=remove,rt_sigreturn", ErrEssential, "Go's fork and exec path needs it"},
		{"mode=retain,@docker/default-blacklist", ErrSpec, "@docker/default-blacklist is a blocklist"},
		{"mode=remove,@rkt/default-whitelist", ErrSpec, "@rkt/default-whitelist is an allowlist"},
	}
	for _, tt := range tests {
		_, err := ParseRkt(tt.spec, caps.Default())
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseRkt(%q) error = %v, want %v containing %q", tt.spec, err, tt.want, tt.msg)
		}
	}
}

func TestParseRkt(t *testing.T) {
	type call struct {
		name string
		args []uint64
		want Action
	}
	cases := []struct {
		spec  string
		calls []call
	}{
		{"mode=retain,errno=ENOSYS,@docker/default-whitelist,mount,umount2", []call{
			{"mount", nil, ActAllow},
			{"umount2", nil, ActAllow},
			{"read", nil, ActAllow},
			{"kexec_load", nil, enosys},
			{"unshare", nil, enosys},
			{"personality", []uint64{1}, enosys},
			{"personality", []uint64{8}, ActAllow},
			{"clone3", nil, enosys}, // Docker's own rule
			{"socket", []uint64{unix.AF_VSOCK}, enosys},
		}},
		{"mode=retain,@rkt/default-whitelist,clone3,personality", []call{
			{"clone3", nil, ActAllow}, // named outright: beats the group's rule
			{"personality", []uint64{1}, ActAllow},
			{"mount", nil, eperm},
		}},
		{" mode = retain , read , write ", []call{ // spaces, essentials only
			{"read", nil, ActAllow},
			{"openat", nil, eperm},
			{"execve", nil, ActAllow},
			{"clone", []uint64{goFork}, ActAllow},
			{"clone", []uint64{unix.CLONE_NEWNS}, eperm},
		}},
		{"mode=retain,errno=enotsup,@systemd/clock", []call{
			{"settimeofday", nil, ActAllow},
			{"openat", nil, ActErrno(unix.EOPNOTSUPP)},
		}},
		{"mode=retain,@appc.io/all", []call{
			{"kexec_load", nil, ActAllow},
			{"mount", nil, ActAllow},
		}},
		{"mode=retain,@appc.io/empty,s390_runtime_instr", []call{
			{"openat", nil, eperm},
			{"exit_group", nil, ActAllow},
		}},
		{"mode=remove,reboot", []call{
			{"reboot", nil, eperm},
			{"mount", nil, ActAllow},
			{"kexec_load", nil, ActAllow},
		}},
		{"mode=remove,errno=ENOTSUP,socket", []call{
			{"socket", []uint64{unix.AF_INET}, ActErrno(unix.EOPNOTSUPP)},
		}},
		{"mode=remove,errno=ENOSYS,@docker/default-blacklist,reboot", []call{
			{"reboot", nil, enosys},
			{"mount", nil, enosys},
			{"kexec_load", nil, enosys},
			{"io_uring_setup", nil, enosys},
			{"personality", []uint64{1}, enosys},
			{"personality", []uint64{0}, ActAllow},
			{"clone", []uint64{unix.CLONE_NEWUSER}, enosys},
			{"clone", []uint64{goFork}, ActAllow},
			{"clone3", nil, enosys},
			{"socket", []uint64{unix.AF_VSOCK}, enosys},
			{"socket", []uint64{unix.AF_UNIX}, ActAllow},
			{"read", nil, ActAllow},
			{"openat", nil, ActAllow},
			{"chroot", nil, ActAllow},
		}},
		{"mode=remove,@systemd/privileged,@systemd/mount", []call{
			{"mount", nil, eperm},
			{"pivot_root", nil, eperm},
			{"settimeofday", nil, eperm}, // @clock, nested
			{"kexec_load", nil, eperm},   // @reboot, nested
			{"capset", nil, eperm},
			{"setuid", nil, ActAllow},    // essential: kept
			{"setgroups", nil, ActAllow}, // essential: kept
			{"setreuid", nil, eperm},
			{"openat", nil, ActAllow},
		}},
		{"mode=remove,@appc.io/all", []call{
			{"openat", nil, eperm},
			{"execve", nil, ActAllow},
		}},
	}
	for _, c := range cases {
		f := assemble(t, mustParse(t, c.spec, caps.Default()))
		for _, cl := range c.calls {
			if got := f.call(cl.name, cl.args...); got != cl.want {
				t.Errorf("ParseRkt(%q): %s%v = %s, want %s", c.spec, cl.name, cl.args, got, cl.want)
			}
		}
	}
}

// argSets are the argument vectors the equivalence tests try on every
// syscall.
var argSets = [][]uint64{
	{0},
	{1},
	{8},
	{0xffffffff},
	{unix.AF_VSOCK},
	{goFork},
	{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)},
	{1 << 33},
}

// @docker/default-whitelist is Default, and @docker/default-blacklist
// denies the same syscalls of the table Default does.
func TestParseRktDockerGroupsMatchDefault(t *testing.T) {
	for _, retained := range []caps.Set{0, caps.Default(), caps.All(), caps.Of(unix.CAP_SYS_ADMIN), caps.Of(unix.CAP_SYS_PTRACE, unix.CAP_BPF)} {
		def := assemble(t, mustDefault(t, retained))
		white := assemble(t, mustParse(t, "mode=retain,@docker/default-whitelist", retained))
		black := assemble(t, mustParse(t, "mode=remove,@docker/default-blacklist", retained))
		for name, nr := range def.t.info.SyscallNames {
			for _, args := range argSets {
				d := def.nr(uint32(nr), args...)
				if w := white.nr(uint32(nr), args...); w != d {
					t.Errorf("caps %v: %s%v: whitelist %s, Default %s", retained, name, args, w, d)
				}
				if b := black.nr(uint32(nr), args...); b != d {
					t.Errorf("caps %v: %s%v: blacklist %s, Default %s", retained, name, args, b, d)
				}
			}
		}
		// Outside the table the blocklist allows.
		if got := black.nr(4000); got != ActAllow {
			t.Errorf("caps %v: blacklist on syscall 4000 = %s, want allow", retained, got)
		}
	}
}

func TestParseRktAcceptsEveryGroup(t *testing.T) {
	for _, g := range groupNames() {
		mode := "retain"
		if strings.Contains(g, "blacklist") {
			mode = "remove"
		}
		p := mustParse(t, "mode="+mode+","+g, caps.Default())
		assemble(t, p)
	}
	got := groupNames()
	for _, want := range []string{"@docker/default-whitelist", "@docker/default-blacklist", "@rkt/default-whitelist",
		"@systemd/clock", "@systemd/mount", "@systemd/reboot", "@systemd/swap", "@systemd/module", "@systemd/raw-io",
		"@systemd/obsolete", "@systemd/privileged", "@systemd/cpu-emulation", "@systemd/debug"} {
		if !slices.Contains(got, want) {
			t.Errorf("groupNames() = %v, want it to hold %s", got, want)
		}
	}
}

func TestParseErrno(t *testing.T) {
	tests := map[string]unix.Errno{
		"EPERM": unix.EPERM, "ENOSYS": unix.ENOSYS, "eacces": unix.EACCES, "ENOTSUP": unix.EOPNOTSUPP,
		"EWOULDBLOCK": unix.EAGAIN, "EDEADLOCK": unix.EDEADLK, "EHWPOISON": unix.EHWPOISON,
	}
	for in, want := range tests {
		if got, err := parseErrno(in); err != nil || got != want {
			t.Errorf("parseErrno(%q) = %d, %v; want %d, nil", in, got, err, want)
		}
	}
}
