//go:build linux

package seccomp

// systemd's syscall filter sets that rkt exposes as @systemd/NAME,
// transcribed from syscall_filter_sets in src/shared/seccomp-util.c of
// github.com/systemd/systemd at commit
// 000c05207d68658b76af9e1caf9aa3a4e3fa697b (systemd v246). Only the sets
// that name privileged or unusual operations are here (the ones a blocklist
// names); each list is sorted, and a name beginning with "@" is another set.
// Names for other architectures (s390_*, rtas, subpage_prot...) are kept as
// systemd lists them; they do nothing on this one.
var systemdSets = []struct {
	name  string
	names []string
}{
	{"chown", []string{"chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32"}},
	{"clock", []string{"adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday", "stime"}},
	{"cpu-emulation", []string{"modify_ldt", "subpage_prot", "switch_endian", "vm86", "vm86old"}},
	{"debug", []string{"lookup_dcookie", "perf_event_open", "pidfd_getfd", "ptrace", "rtas", "s390_runtime_instr", "sys_debug_setcontext"}},
	{"module", []string{"delete_module", "finit_module", "init_module"}},
	{"mount", []string{"chroot", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "move_mount", "open_tree", "pivot_root", "umount", "umount2"}},
	{"obsolete", []string{
		"_sysctl",
		"afs_syscall",
		"bdflush",
		"break",
		"create_module",
		"ftime",
		"get_kernel_syms",
		"getpmsg",
		"gtty",
		"idle",
		"lock",
		"mpx",
		"prof",
		"profil",
		"putpmsg",
		"query_module",
		"security",
		"sgetmask",
		"ssetmask",
		"stty",
		"sysfs",
		"tuxcall",
		"ulimit",
		"uselib",
		"ustat",
		"vserver",
	}},
	{"privileged", []string{
		"@chown",
		"@clock",
		"@module",
		"@raw-io",
		"@reboot",
		"@swap",
		"_sysctl",
		"acct",
		"bpf",
		"capset",
		"chroot",
		"fanotify_init",
		"fanotify_mark",
		"nfsservctl",
		"open_by_handle_at",
		"pivot_root",
		"quotactl",
		"setdomainname",
		"setfsuid",
		"setfsuid32",
		"setgroups",
		"setgroups32",
		"sethostname",
		"setresuid",
		"setresuid32",
		"setreuid",
		"setreuid32",
		"setuid",
		"setuid32",
		"vhangup",
	}},
	{"raw-io", []string{"ioperm", "iopl", "pciconfig_iobase", "pciconfig_read", "pciconfig_write", "s390_pci_mmio_read", "s390_pci_mmio_write"}},
	{"reboot", []string{"kexec_file_load", "kexec_load", "reboot"}},
	{"swap", []string{"swapoff", "swapon"}},
}

// systemdSet returns the syscalls of systemd set name (without "@"),
// nested sets expanded, and whether the set exists.
func systemdSet(name string) ([]string, bool) {
	for _, s := range systemdSets {
		if s.name != name {
			continue
		}
		var out []string
		for _, n := range s.names {
			if n[0] == '@' {
				sub, _ := systemdSet(n[1:])
				out = append(out, sub...)
				continue
			}
			out = append(out, n)
		}
		return out, true
	}
	return nil, false
}
