//go:build linux

package seccomp

import (
	"errors"
	"testing"

	"atoll.dev/atoll/internal/runtime/caps"
)

// FuzzParseRkt: ParseRkt never panics, fails only with its sentinel errors,
// and whatever it accepts assembles into a filter the kernel would take
// that allows every essential syscall.
func FuzzParseRkt(f *testing.F) {
	for _, s := range []string{
		"mode=retain,errno=ENOSYS,@docker/default-whitelist,mount,umount2",
		"mode=remove,@docker/default-blacklist,reboot",
		"mode=retain,@rkt/default-whitelist",
		"mode=remove,errno=ENOTSUP,socket",
		"mode=remove,@systemd/privileged,@systemd/mount,@systemd/obsolete",
		"mode=retain,@systemd/clock,@systemd/debug,read,write,exit_group",
		"mode=retain,@appc.io/empty",
		"mode=remove,@appc.io/all",
		"mode=remove,execve",
		"mode=retain,mout",
		"mode=retain,,read",
		"errno=EPERM,mode=retain,read",
		"mode=retain,@docker/default-whitelist,clone3,personality,s390_runtime_instr",
	} {
		f.Add(s, uint64(caps.Default()))
	}
	f.Add("mode=retain,@docker/default-whitelist", uint64(caps.All()))
	f.Add("mode=remove,@rkt/default-blacklist", uint64(0))

	tbl := mustTable(f)
	essentialNames := Essential()
	f.Fuzz(func(t *testing.T, spec string, retained uint64) {
		p, err := ParseRkt(spec, caps.Set(retained))
		if err != nil {
			if !errors.Is(err, ErrSpec) && !errors.Is(err, ErrUnknownSyscall) &&
				!errors.Is(err, ErrUnknownGroup) && !errors.Is(err, ErrEssential) {
				t.Fatalf("ParseRkt(%q) error %v wraps none of the package's errors", spec, err)
			}
			return
		}
		if p == nil {
			t.Fatalf("ParseRkt(%q) = nil, nil", spec)
		}
		filter, err := p.Assemble()
		if err != nil {
			t.Fatalf("ParseRkt(%q) accepted, but Assemble: %v", spec, err)
		}
		if err := verify(filter); err != nil {
			t.Fatalf("ParseRkt(%q): the kernel would refuse the filter: %v", spec, err)
		}
		ft := newFilterT(t, filter, tbl)
		for _, n := range essentialNames {
			var args []uint64
			if n == "clone" {
				args = []uint64{goFork}
			}
			if got := ft.call(n, args...); got != ActAllow {
				t.Fatalf("ParseRkt(%q): essential %s = %s, want allow", spec, n, got)
			}
		}
	})
}
