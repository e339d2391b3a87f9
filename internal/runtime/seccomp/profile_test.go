//go:build linux

package seccomp

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/caps"
)

var (
	eperm  = ActErrno(unix.EPERM)
	enosys = ActErrno(unix.ENOSYS)
)

// Go's fork: CLONE_VFORK|CLONE_VM|SIGCHLD, with and without CLONE_PIDFD.
const (
	goFork      = unix.CLONE_VFORK | unix.CLONE_VM | uint64(unix.SIGCHLD)
	goForkPidfd = goFork | unix.CLONE_PIDFD
)

func mustDefault(t testing.TB, retained caps.Set) *Profile {
	t.Helper()
	p, err := Default(retained)
	if err != nil {
		t.Fatalf("Default(%v): %v", retained, err)
	}
	return p
}

func TestListsSortedAndUnique(t *testing.T) {
	lists := map[string][]string{
		"dockerAllowed":     dockerAllowed,
		"dockerMinKernel48": dockerMinKernel48,
		"essential":         essential,
	}
	for _, a := range dockerByArch {
		lists["dockerByArch "+strings.Join(a.arches, ",")] = a.names
	}
	for _, g := range dockerByCap {
		lists["dockerByCap "+g.cap.String()] = g.names
	}
	for _, s := range systemdSets {
		lists["systemd "+s.name] = s.names
	}
	for name, l := range lists {
		if !slices.IsSorted(l) {
			t.Errorf("%s is not sorted: %v", name, l)
		}
		if len(slices.Compact(slices.Clone(l))) != len(l) {
			t.Errorf("%s has duplicates: %v", name, l)
		}
	}
	if !slices.IsSortedFunc(systemdSets, func(a, b struct {
		name  string
		names []string
	}) int {
		return strings.Compare(a.name, b.name)
	}) {
		t.Errorf("systemdSets is not sorted by name")
	}
}

// Every name in the data is a syscall of a table here, but for the few
// that only other architectures have.
func TestListsNameRealSyscalls(t *testing.T) {
	otherArches := []string{
		"riscv_flush_icache", "riscv_hwprobe", "rtas", "s390_pci_mmio_read", "s390_pci_mmio_write",
		"s390_runtime_instr", "subpage_prot", "swapcontext", "switch_endian", "sync_file_range2",
		"sys_debug_setcontext",
	}
	inTables := func(n string) bool {
		for _, a := range []*arch.Info{arch.X86_64, arch.AARCH64, arch.I386, arch.ARM, arch.X32} {
			if _, ok := a.SyscallNames[n]; ok {
				return true
			}
		}
		return false
	}
	var all []string
	all = append(all, dockerAllowed...)
	all = append(all, dockerMinKernel48...)
	all = append(all, essential...)
	for _, a := range dockerByArch {
		all = append(all, a.names...)
	}
	for _, g := range dockerByCap {
		all = append(all, g.names...)
	}
	for _, s := range systemdSets {
		for _, n := range s.names {
			if n[0] != '@' {
				all = append(all, n)
			}
		}
	}
	for _, n := range all {
		if !inTables(n) && !slices.Contains(otherArches, n) {
			t.Errorf("%q is in no syscall table (a typo?)", n)
		}
	}
}

func TestEssentialInDocker(t *testing.T) {
	// Docker's profile allows all of them: the essential rules change
	// nothing in Default.
	for _, n := range essential {
		if !slices.Contains(dockerAllowed, n) {
			t.Errorf("essential %q is not in Docker's allowlist", n)
		}
	}
}

func TestDefault(t *testing.T) {
	plain := assemble(t, mustDefault(t, caps.Default()))
	admin := assemble(t, mustDefault(t, caps.Default()|caps.Of(unix.CAP_SYS_ADMIN)))
	tests := []struct {
		name         string
		args         []uint64
		plain, admin Action
	}{
		{"read", nil, ActAllow, ActAllow},
		{"write", nil, ActAllow, ActAllow},
		{"openat", nil, ActAllow, ActAllow},
		{"execve", nil, ActAllow, ActAllow},
		{"kexec_load", nil, eperm, eperm},
		{"kexec_file_load", nil, eperm, eperm},
		{"init_module", nil, eperm, eperm},
		{"mount", nil, eperm, ActAllow},
		{"umount2", nil, eperm, ActAllow},
		{"unshare", []uint64{unix.CLONE_NEWUSER}, eperm, ActAllow},
		{"setns", nil, eperm, ActAllow},
		{"reboot", nil, eperm, eperm},
		{"chroot", nil, ActAllow, ActAllow}, // CAP_SYS_CHROOT is a default capability
		{"ptrace", nil, ActAllow, ActAllow}, // Docker's minKernel 4.8 rule
		{"bpf", nil, eperm, ActAllow},
		{"io_uring_setup", nil, eperm, eperm},
		{"keyctl", nil, ActAllow, ActAllow},
		{"open_by_handle_at", nil, eperm, eperm},
		{"personality", []uint64{0}, ActAllow, ActAllow},
		{"personality", []uint64{8}, ActAllow, ActAllow},
		{"personality", []uint64{0x20008}, ActAllow, ActAllow},
		{"personality", []uint64{0xffffffff}, ActAllow, ActAllow},
		{"personality", []uint64{1}, eperm, eperm},
		{"personality", []uint64{0x1_00000000}, eperm, eperm},
		{"clone", []uint64{goFork}, ActAllow, ActAllow},
		{"clone", []uint64{goForkPidfd}, ActAllow, ActAllow},
		{"clone", []uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, eperm, ActAllow},
		{"clone", []uint64{unix.CLONE_NEWNET}, eperm, ActAllow},
		{"clone", []uint64{1 << 40}, ActAllow, ActAllow}, // no namespace bit
		{"clone3", nil, enosys, ActAllow},
		{"socket", []uint64{unix.AF_INET}, ActAllow, ActAllow},
		{"socket", []uint64{unix.AF_VSOCK}, eperm, eperm},
		{"socket", []uint64{1<<32 | unix.AF_VSOCK}, ActAllow, ActAllow},
	}
	if plain.t.info.ID == arch.X86_64.ID {
		tests = append(tests, struct {
			name         string
			args         []uint64
			plain, admin Action
		}{"arch_prctl", nil, ActAllow, ActAllow})
	}
	for _, tt := range tests {
		if got := plain.call(tt.name, tt.args...); got != tt.plain {
			t.Errorf("Default(caps.Default()): %s%v = %s, want %s", tt.name, tt.args, got, tt.plain)
		}
		if got := admin.call(tt.name, tt.args...); got != tt.admin {
			t.Errorf("Default(+CAP_SYS_ADMIN): %s%v = %s, want %s", tt.name, tt.args, got, tt.admin)
		}
	}
}

func TestDefaultCapabilityGroups(t *testing.T) {
	for _, g := range dockerByCap {
		without := assemble(t, mustDefault(t, 0))
		with := assemble(t, mustDefault(t, caps.Of(g.cap)))
		for _, n := range g.names {
			if !with.t.has(n) {
				continue
			}
			if got := with.call(n, 0); got != ActAllow {
				t.Errorf("Default(%s): %s = %s, want allow", g.cap, n, got)
			}
			want := eperm
			switch {
			case n == "clone3":
				want = enosys
			case n == "clone" || slices.Contains(dockerMinKernel48, n):
				want = ActAllow // clone(0) has no namespace flag
			}
			if got := without.call(n, 0); got != want {
				t.Errorf("Default(no caps): %s = %s, want %s", n, got, want)
			}
		}
	}
}

func TestDefaultArchChecks(t *testing.T) {
	f := assemble(t, mustDefault(t, caps.Default()))
	nr, _ := f.t.nr("read")
	if got := f.raw(foreignArch(f.t), uint32(nr)); got != ActKillProcess {
		t.Errorf("read from a foreign arch = %s, want kill-process", got)
	}
	if got := f.nr(4000); got != eperm {
		t.Errorf("unassigned syscall 4000 = %s, want %s", got, eperm)
	}
	if got := f.nr(0xffffffff); got != eperm {
		t.Errorf("syscall -1 = %s, want %s", got, eperm)
	}
	if f.t.x32 {
		if got := f.nr(x32Bit | uint32(nr)); got != ActKillProcess {
			t.Errorf("x32 read = %s, want kill-process", got)
		}
		if got := f.nr(0xfffffffe); got != ActKillProcess {
			t.Errorf("syscall 0xfffffffe = %s, want kill-process", got)
		}
	}
}

func TestDefaultCheckAndAllowed(t *testing.T) {
	p := mustDefault(t, caps.Default())
	checks := []struct {
		name        string
		fallback    Action
		conditional bool
	}{
		{"read", ActAllow, false},
		{"mount", eperm, false},
		{"kexec_load", eperm, false},
		{"personality", eperm, true},
		{"clone", eperm, true},
		{"clone3", enosys, false},
	}
	for _, c := range checks {
		fb, cond, err := p.Check(c.name)
		if err != nil || fb != c.fallback || cond != c.conditional {
			t.Errorf("Check(%s) = %s, %v, %v; want %s, %v, nil", c.name, fb, cond, err, c.fallback, c.conditional)
		}
	}
	admin := mustDefault(t, caps.Default()|caps.Of(unix.CAP_SYS_ADMIN))
	if fb, cond, err := admin.Check("clone"); err != nil || fb != ActAllow || cond {
		t.Errorf("with CAP_SYS_ADMIN, Check(clone) = %s, %v, %v; want allow, false, nil", fb, cond, err)
	}
	if _, _, err := p.Check("mout"); !errors.Is(err, ErrUnknownSyscall) || !strings.Contains(err.Error(), `did you mean "mount"`) {
		t.Errorf(`Check("mout") error = %v, want ErrUnknownSyscall suggesting "mount"`, err)
	}

	allowed, err := p.Allowed()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"read", "write", "personality", "clone", "execve"} {
		if !slices.Contains(allowed, n) {
			t.Errorf("Allowed() lacks %s", n)
		}
	}
	for _, n := range []string{"mount", "kexec_load", "clone3", "reboot"} {
		if slices.Contains(allowed, n) {
			t.Errorf("Allowed() has %s", n)
		}
	}
	tb := mustTable(t)
	t.Logf("Default(caps.Default()) allows %d of the %d syscalls of %s", len(allowed), len(tb.info.SyscallNames), tb.info.Name)
}

func mustTable(t testing.TB) *table {
	t.Helper()
	tb, err := nativeTable()
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// Whatever the profile, the essential syscalls stay allowed.
func TestEssentialAlwaysAllowed(t *testing.T) {
	profiles := map[string]*Profile{
		"deny all, kill": {Default: ActKillProcess},
		"deny essentials": {Default: ActAllow, Rules: []Rule{
			{Syscall: "execve", Action: ActKillProcess},
			{Syscall: "clone", Action: eperm},
			{Syscall: "write", Args: []Arg{{Index: 0, Op: OpEQ, Value: 1}}, Action: eperm},
		}},
	}
	for name, p := range profiles {
		f := assemble(t, p)
		for _, n := range Essential() {
			args := []uint64{}
			if n == "clone" {
				args = []uint64{goFork}
			}
			if got := f.call(n, args...); got != ActAllow {
				t.Errorf("%s: %s = %s, want allow", name, n, got)
			}
		}
		if got := f.call("clone", goForkPidfd); got != ActAllow {
			t.Errorf("%s: clone(Go's flags|CLONE_PIDFD) = %s, want allow", name, got)
		}
		if got := f.call("write", 1); got != ActAllow {
			t.Errorf("%s: write(1) = %s, want allow", name, got)
		}
	}
	deny := assemble(t, profiles["deny all, kill"])
	if got := deny.call("openat"); got != ActKillProcess {
		t.Errorf("deny all: openat = %s, want kill-process", got)
	}
	if got := deny.call("clone", unix.CLONE_NEWUSER); got != ActKillProcess {
		t.Errorf("deny all: clone(CLONE_NEWUSER) = %s, want kill-process", got)
	}
	if got := assemble(t, profiles["deny essentials"]).call("clone", unix.CLONE_NEWNS); got != eperm {
		t.Errorf("deny essentials: clone(CLONE_NEWNS) = %s, want %s", got, eperm)
	}
	want := []string{"clone", "execve", "exit", "exit_group", "futex", "read", "rt_sigreturn", "write"}
	for _, n := range want {
		if !slices.Contains(Essential(), n) {
			t.Errorf("Essential() = %v, want it to hold %s", Essential(), n)
		}
	}
}

// Argument comparisons, against a direct evaluation.
func TestArgOps(t *testing.T) {
	values := []uint64{0, 1, 5, 6, 0xffffffff, 1 << 32, 1<<32 | 5, 5 << 32, 1<<63 | 7, ^uint64(0)}
	ops := []struct {
		op   Op
		eval func(arg, v, m uint64) bool
	}{
		{OpEQ, func(a, v, _ uint64) bool { return a == v }},
		{OpNE, func(a, v, _ uint64) bool { return a != v }},
		{OpLT, func(a, v, _ uint64) bool { return a < v }},
		{OpLE, func(a, v, _ uint64) bool { return a <= v }},
		{OpGT, func(a, v, _ uint64) bool { return a > v }},
		{OpGE, func(a, v, _ uint64) bool { return a >= v }},
		{OpMaskedEQ, func(a, v, m uint64) bool { return a&m == v }},
	}
	const mask = 0x0000_00ff_0000_000f
	for _, o := range ops {
		for _, v := range values {
			p := &Profile{Default: eperm, Rules: []Rule{
				// Two conditions, on arguments 2 and 4, the second always true.
				{Syscall: "pread64", Args: []Arg{
					{Index: 2, Op: o.op, Value: v, Mask: mask},
					{Index: 4, Op: OpGE, Value: 0},
				}, Action: ActAllow},
				{Syscall: "pread64", Args: []Arg{{Index: 0, Op: OpEQ, Value: 99}}, Action: enosys},
			}}
			f := assemble(t, p)
			for _, a := range values {
				want := eperm
				if o.eval(a, v, mask) {
					want = ActAllow
				}
				if got := f.call("pread64", 0, 0, a, 0, 3); got != want {
					t.Errorf("arg %#x %s %#x: got %s, want %s", a, o.op, v, got, want)
				}
				if !o.eval(a, v, mask) {
					if got := f.call("pread64", 99, 0, a); got != enosys {
						t.Errorf("arg %#x %s %#x, arg0 99: got %s, want %s (second rule)", a, o.op, v, got, enosys)
					}
				}
			}
		}
	}
}

// A profile where every other syscall differs makes a tree whose branches
// need long jumps; every syscall must still get its own action.
func TestLongJumps(t *testing.T) {
	tb := mustTable(t)
	p := &Profile{Default: ActAllow}
	want := map[int]Action{}
	for name, nr := range tb.info.SyscallNames {
		if isEssential(name) {
			continue
		}
		switch nr % 3 {
		case 0:
			p.Rules = append(p.Rules, Rule{Syscall: name, Action: ActErrno(unix.Errno(1 + nr%100))})
			want[nr] = ActErrno(unix.Errno(1 + nr%100))
		case 1:
			p.Rules = append(p.Rules, Rule{Syscall: name, Args: []Arg{{Index: 1, Op: OpNE, Value: 7}}, Action: ActLog})
			want[nr] = ActLog
		}
	}
	f := assemble(t, p)
	if len(f.f) < 1000 {
		t.Fatalf("filter has %d instructions, want a long one", len(f.f))
	}
	for name, nr := range tb.info.SyscallNames {
		w, ok := want[nr]
		if !ok {
			w = ActAllow
		}
		if got := f.nr(uint32(nr), 0, 0); got != w {
			t.Errorf("%s (%d) = %s, want %s", name, nr, got, w)
		}
		if w == ActLog {
			if got := f.nr(uint32(nr), 0, 7); got != ActAllow {
				t.Errorf("%s (%d) with arg1 7 = %s, want allow", name, nr, got)
			}
		}
	}
}

func TestAssembleErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Profile
		want error
		msg  string
	}{
		{"unknown syscall", Profile{Default: eperm, Rules: []Rule{{Syscall: "mout", Action: ActAllow}}}, ErrUnknownSyscall, `did you mean "mount"`},
		{"bad default", Profile{Default: ActErrno(0)}, ErrInvalid, "default action"},
		{"user notif", Profile{Default: eperm, Rules: []Rule{{Syscall: "read", Action: unix.SECCOMP_RET_USER_NOTIF}}}, ErrInvalid, "user-notif"},
		{"bad arg index", Profile{Default: eperm, Rules: []Rule{{Syscall: "read", Args: []Arg{{Index: 6, Op: OpEQ}}, Action: ActAllow}}}, ErrInvalid, "argument 6"},
		{"bad op", Profile{Default: eperm, Rules: []Rule{{Syscall: "read", Args: []Arg{{Index: 0}}, Action: ActAllow}}}, ErrInvalid, "op(0)"},
	}
	for _, tt := range tests {
		_, err := tt.p.Assemble()
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: Assemble error = %v, want %v containing %q", tt.name, err, tt.want, tt.msg)
		}
	}
	// Another architecture's syscall is skipped, as libseccomp does.
	p := Profile{Default: eperm, Rules: []Rule{{Syscall: "s390_runtime_instr", Action: ActAllow}}}
	if _, err := p.Assemble(); err != nil {
		t.Errorf("Assemble with another arch's syscall: %v, want nil", err)
	}
}

func TestActionString(t *testing.T) {
	tests := map[Action]string{
		ActAllow:                   "allow",
		ActKillProcess:             "kill-process",
		ActKillThread:              "kill-thread",
		ActTrap:                    "trap",
		ActLog:                     "log",
		eperm:                      "errno(EPERM)",
		enosys:                     "errno(ENOSYS)",
		ActErrno(4000):             "errno(4000)",
		unix.SECCOMP_RET_TRACE | 3: "trace(3)",
	}
	for a, want := range tests {
		if got := a.String(); got != want {
			t.Errorf("Action(%#x).String() = %q, want %q", uint32(a), got, want)
		}
	}
}

// benchCPU runs f b.N times on a locked thread and reports the thread's
// CPU time per call besides the wall time, which a loaded machine inflates.
func benchCPU(b *testing.B, f func() error) {
	b.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &before); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := f(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &after); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
}

func BenchmarkAssembleDefault(b *testing.B) {
	p := mustDefault(b, caps.Default())
	benchCPU(b, func() error {
		_, err := p.Assemble()
		return err
	})
}

func BenchmarkDefaultAndAssemble(b *testing.B) {
	benchCPU(b, func() error {
		p, err := Default(caps.Default())
		if err != nil {
			return err
		}
		_, err = p.Assemble()
		return err
	})
}

func BenchmarkParseRktAndAssemble(b *testing.B) {
	benchCPU(b, func() error {
		p, err := ParseRkt("mode=remove,errno=ENOSYS,@docker/default-blacklist,@systemd/privileged,reboot", caps.Default())
		if err != nil {
			return err
		}
		_, err = p.Assemble()
		return err
	})
}
