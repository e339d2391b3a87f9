//go:build linux

package seccomp

import (
	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/caps"
)

// Docker's default seccomp profile, transcribed from seccomp/default.json of
// github.com/moby/profiles at commit 190fa92cb2750186268c960ce30718d3495a228d
// ("defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1). Every list is
// sorted (byte order, so "_llseek" comes first); tests check it.

// dockerAllowed is the profile's first entry: syscalls allowed whatever the
// arguments, architecture or capabilities.
var dockerAllowed = []string{
	"_llseek",
	"_newselect",
	"accept",
	"accept4",
	"access",
	"add_key",
	"adjtimex",
	"alarm",
	"bind",
	"brk",
	"cachestat",
	"capget",
	"capset",
	"chdir",
	"chmod",
	"chown",
	"chown32",
	"clock_adjtime",
	"clock_adjtime64",
	"clock_getres",
	"clock_getres_time64",
	"clock_gettime",
	"clock_gettime64",
	"clock_nanosleep",
	"clock_nanosleep_time64",
	"close",
	"close_range",
	"connect",
	"copy_file_range",
	"creat",
	"dup",
	"dup2",
	"dup3",
	"epoll_create",
	"epoll_create1",
	"epoll_ctl",
	"epoll_ctl_old",
	"epoll_pwait",
	"epoll_pwait2",
	"epoll_wait",
	"epoll_wait_old",
	"eventfd",
	"eventfd2",
	"execve",
	"execveat",
	"exit",
	"exit_group",
	"faccessat",
	"faccessat2",
	"fadvise64",
	"fadvise64_64",
	"fallocate",
	"fanotify_mark",
	"fchdir",
	"fchmod",
	"fchmodat",
	"fchmodat2",
	"fchown",
	"fchown32",
	"fchownat",
	"fcntl",
	"fcntl64",
	"fdatasync",
	"fgetxattr",
	"flistxattr",
	"flock",
	"fork",
	"fremovexattr",
	"fsetxattr",
	"fstat",
	"fstat64",
	"fstatat64",
	"fstatfs",
	"fstatfs64",
	"fsync",
	"ftruncate",
	"ftruncate64",
	"futex",
	"futex_requeue",
	"futex_time64",
	"futex_wait",
	"futex_waitv",
	"futex_wake",
	"futimesat",
	"get_robust_list",
	"get_thread_area",
	"getcpu",
	"getcwd",
	"getdents",
	"getdents64",
	"getegid",
	"getegid32",
	"geteuid",
	"geteuid32",
	"getgid",
	"getgid32",
	"getgroups",
	"getgroups32",
	"getitimer",
	"getpeername",
	"getpgid",
	"getpgrp",
	"getpid",
	"getppid",
	"getpriority",
	"getrandom",
	"getresgid",
	"getresgid32",
	"getresuid",
	"getresuid32",
	"getrlimit",
	"getrusage",
	"getsid",
	"getsockname",
	"getsockopt",
	"gettid",
	"gettimeofday",
	"getuid",
	"getuid32",
	"getxattr",
	"getxattrat",
	"inotify_add_watch",
	"inotify_init",
	"inotify_init1",
	"inotify_rm_watch",
	"io_cancel",
	"io_destroy",
	"io_getevents",
	"io_pgetevents",
	"io_pgetevents_time64",
	"io_setup",
	"io_submit",
	"ioctl",
	"ioprio_get",
	"ioprio_set",
	"ipc",
	"keyctl",
	"kill",
	"landlock_add_rule",
	"landlock_create_ruleset",
	"landlock_restrict_self",
	"lchown",
	"lchown32",
	"lgetxattr",
	"link",
	"linkat",
	"listen",
	"listmount",
	"listxattr",
	"listxattrat",
	"llistxattr",
	"lremovexattr",
	"lseek",
	"lsetxattr",
	"lstat",
	"lstat64",
	"madvise",
	"map_shadow_stack",
	"membarrier",
	"memfd_create",
	"memfd_secret",
	"mincore",
	"mkdir",
	"mkdirat",
	"mknod",
	"mknodat",
	"mlock",
	"mlock2",
	"mlockall",
	"mmap",
	"mmap2",
	"mprotect",
	"mq_getsetattr",
	"mq_notify",
	"mq_open",
	"mq_timedreceive",
	"mq_timedreceive_time64",
	"mq_timedsend",
	"mq_timedsend_time64",
	"mq_unlink",
	"mremap",
	"mseal",
	"msgctl",
	"msgget",
	"msgrcv",
	"msgsnd",
	"msync",
	"munlock",
	"munlockall",
	"munmap",
	"name_to_handle_at",
	"nanosleep",
	"newfstatat",
	"open",
	"openat",
	"openat2",
	"pause",
	"pidfd_open",
	"pidfd_send_signal",
	"pipe",
	"pipe2",
	"pkey_alloc",
	"pkey_free",
	"pkey_mprotect",
	"poll",
	"ppoll",
	"ppoll_time64",
	"prctl",
	"pread64",
	"preadv",
	"preadv2",
	"prlimit64",
	"process_mrelease",
	"pselect6",
	"pselect6_time64",
	"pwrite64",
	"pwritev",
	"pwritev2",
	"read",
	"readahead",
	"readlink",
	"readlinkat",
	"readv",
	"recv",
	"recvfrom",
	"recvmmsg",
	"recvmmsg_time64",
	"recvmsg",
	"remap_file_pages",
	"removexattr",
	"removexattrat",
	"rename",
	"renameat",
	"renameat2",
	"request_key",
	"restart_syscall",
	"riscv_hwprobe",
	"rmdir",
	"rseq",
	"rt_sigaction",
	"rt_sigpending",
	"rt_sigprocmask",
	"rt_sigqueueinfo",
	"rt_sigreturn",
	"rt_sigsuspend",
	"rt_sigtimedwait",
	"rt_sigtimedwait_time64",
	"rt_tgsigqueueinfo",
	"sched_get_priority_max",
	"sched_get_priority_min",
	"sched_getaffinity",
	"sched_getattr",
	"sched_getparam",
	"sched_getscheduler",
	"sched_rr_get_interval",
	"sched_rr_get_interval_time64",
	"sched_setaffinity",
	"sched_setattr",
	"sched_setparam",
	"sched_setscheduler",
	"sched_yield",
	"seccomp",
	"select",
	"semctl",
	"semget",
	"semop",
	"semtimedop",
	"semtimedop_time64",
	"send",
	"sendfile",
	"sendfile64",
	"sendmmsg",
	"sendmsg",
	"sendto",
	"set_robust_list",
	"set_thread_area",
	"set_tid_address",
	"setfsgid",
	"setfsgid32",
	"setfsuid",
	"setfsuid32",
	"setgid",
	"setgid32",
	"setgroups",
	"setgroups32",
	"setitimer",
	"setpgid",
	"setpriority",
	"setregid",
	"setregid32",
	"setresgid",
	"setresgid32",
	"setresuid",
	"setresuid32",
	"setreuid",
	"setreuid32",
	"setrlimit",
	"setsid",
	"setsockopt",
	"setuid",
	"setuid32",
	"setxattr",
	"setxattrat",
	"shmat",
	"shmctl",
	"shmdt",
	"shmget",
	"shutdown",
	"sigaltstack",
	"signalfd",
	"signalfd4",
	"sigprocmask",
	"sigreturn",
	"socketcall",
	"socketpair",
	"splice",
	"stat",
	"stat64",
	"statfs",
	"statfs64",
	"statmount",
	"statx",
	"symlink",
	"symlinkat",
	"sync",
	"sync_file_range",
	"syncfs",
	"sysinfo",
	"tee",
	"tgkill",
	"time",
	"timer_create",
	"timer_delete",
	"timer_getoverrun",
	"timer_gettime",
	"timer_gettime64",
	"timer_settime",
	"timer_settime64",
	"timerfd_create",
	"timerfd_gettime",
	"timerfd_gettime64",
	"timerfd_settime",
	"timerfd_settime64",
	"times",
	"tkill",
	"truncate",
	"truncate64",
	"ugetrlimit",
	"umask",
	"uname",
	"unlink",
	"unlinkat",
	"uretprobe",
	"utime",
	"utimensat",
	"utimensat_time64",
	"utimes",
	"vfork",
	"vmsplice",
	"wait4",
	"waitid",
	"waitpid",
	"write",
	"writev",
}

// dockerMinKernel48 is the profile's entry with "includes": {"minKernel":
// "4.8"}: before 4.8 ptrace could bypass seccomp. It always applies here.
var dockerMinKernel48 = []string{
	"process_vm_readv",
	"process_vm_writev",
	"ptrace",
}

// dockerPersonality is the values personality(2) may be called with:
// PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff to
// query the current persona.
var dockerPersonality = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// dockerCloneNamespaces is the mask of clone flags (CLONE_NEWNS, NEWUTS,
// NEWIPC, NEWUSER, NEWPID, NEWNET, NEWCGROUP: 2114060288) that clone may not
// carry unless CAP_SYS_ADMIN is retained.
const dockerCloneNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// dockerByArch is the profile's "includes": {"arches": ...} entries. Arch
// names are Docker's: amd64, x32, x86, arm, arm64, ppc64le, s390, s390x,
// riscv64.
var dockerByArch = []struct {
	arches []string
	names  []string
}{
	{[]string{"ppc64le"}, []string{"swapcontext", "sync_file_range2"}},
	{[]string{"arm", "arm64"}, []string{"arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls", "sync_file_range2"}},
	{[]string{"amd64", "x32"}, []string{"arch_prctl"}},
	{[]string{"amd64", "x32", "x86"}, []string{"modify_ldt"}},
	{[]string{"s390", "s390x"}, []string{"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"}},
	{[]string{"riscv64"}, []string{"riscv_flush_icache"}},
}

// dockerByCap is the profile's "includes": {"caps": ...} entries, in the
// profile's order: syscalls allowed only when the app retains the
// capability. (The clone and clone3 rules for apps without CAP_SYS_ADMIN
// are in dockerRules.)
var dockerByCap = []struct {
	cap   caps.Cap
	names []string
}{
	{unix.CAP_DAC_READ_SEARCH, []string{"open_by_handle_at"}},
	{unix.CAP_SYS_ADMIN, []string{
		"bpf",
		"clone",
		"clone3",
		"fanotify_init",
		"fsconfig",
		"fsmount",
		"fsopen",
		"fspick",
		"lookup_dcookie",
		"lsm_get_self_attr",
		"lsm_list_modules",
		"lsm_set_self_attr",
		"mount",
		"mount_setattr",
		"move_mount",
		"open_tree",
		"perf_event_open",
		"quotactl",
		"quotactl_fd",
		"setdomainname",
		"sethostname",
		"setns",
		"syslog",
		"umount",
		"umount2",
		"unshare",
	}},
	{unix.CAP_SYS_BOOT, []string{"reboot"}},
	{unix.CAP_SYS_CHROOT, []string{"chroot"}},
	{unix.CAP_SYS_MODULE, []string{"delete_module", "finit_module", "init_module"}},
	{unix.CAP_SYS_PACCT, []string{"acct"}},
	{unix.CAP_SYS_PTRACE, []string{"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}},
	{unix.CAP_SYS_RAWIO, []string{"ioperm", "iopl"}},
	{unix.CAP_SYS_TIME, []string{"clock_settime", "clock_settime64", "settimeofday", "stime"}},
	{unix.CAP_SYS_TTY_CONFIG, []string{"vhangup"}},
	{unix.CAP_SYS_NICE, []string{"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
	{unix.CAP_SYSLOG, []string{"syslog"}},
	{unix.CAP_BPF, []string{"bpf"}},
	{unix.CAP_PERFMON, []string{"perf_event_open"}},
}

// dockerArchName returns Docker's name for the running architecture.
func dockerArchName(goarch string) string {
	if goarch == "386" {
		return "x86"
	}
	return goarch // amd64, arm64, arm, s390x, ppc64le, riscv64
}

// dockerRules returns Docker's profile as rules for architecture t and the
// retained capabilities, in the profile's order, leaving out syscalls the
// architecture does not have. With the default action ERRNO(EPERM) these
// rules are the profile.
func dockerRules(t *table, retained caps.Set) []Rule {
	rules := make([]Rule, 0, len(dockerAllowed)+64)
	allow := func(names ...string) {
		for _, n := range names {
			if t.has(n) {
				rules = append(rules, Rule{Syscall: n, Action: ActAllow})
			}
		}
	}
	allow(dockerAllowed...)
	allow(dockerMinKernel48...)
	if t.has("socket") {
		// Every address family but AF_VSOCK.
		rules = append(rules, Rule{Syscall: "socket", Args: []Arg{{Index: 0, Op: OpNE, Value: unix.AF_VSOCK}}, Action: ActAllow})
	}
	if t.has("personality") {
		for _, v := range dockerPersonality {
			rules = append(rules, Rule{Syscall: "personality", Args: []Arg{{Index: 0, Op: OpEQ, Value: v}}, Action: ActAllow})
		}
	}
	for _, a := range dockerByArch {
		for _, name := range a.arches {
			if name == t.dockerArch {
				allow(a.names...)
				break
			}
		}
	}
	for _, g := range dockerByCap {
		if g.cap == unix.CAP_SYS_ADMIN && !retained.Has(g.cap) {
			// The profile's "excludes": {"caps": ["CAP_SYS_ADMIN"]} entries,
			// which come right after the CAP_SYS_ADMIN group. (On s390 the
			// flags are clone's second argument; no s390 table here.)
			if t.has("clone") {
				rules = append(rules, Rule{Syscall: "clone", Args: []Arg{{Index: 0, Op: OpMaskedEQ, Mask: dockerCloneNamespaces, Value: 0}}, Action: ActAllow})
			}
			if t.has("clone3") {
				rules = append(rules, Rule{Syscall: "clone3", Action: ActErrno(unix.ENOSYS)})
			}
			continue
		}
		if retained.Has(g.cap) {
			allow(g.names...)
		}
	}
	return rules
}
