//go:build linux

package seccomp

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Classic BPF opcodes the package emits.
const (
	opLdAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAndK   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJa     = unix.BPF_JMP | unix.BPF_JA
	opJeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgtK   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJgeK   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opJsetK  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	opRetK   = unix.BPF_RET | unix.BPF_K
)

// verify checks what the kernel's checker would: known opcodes, aligned
// loads inside seccomp_data, jumps that stay inside the program, and a
// return at the end.
func verify(f []unix.SockFilter) error {
	if len(f) == 0 || len(f) > maxInsns {
		return fmt.Errorf("length %d", len(f))
	}
	for pc, in := range f {
		switch in.Code {
		case opLdAbsW:
			if in.K%4 != 0 || in.K+4 > 64 {
				return fmt.Errorf("insn %d: load at %d", pc, in.K)
			}
		case opAndK, opRetK:
		case opJa:
			if pc+1+int(in.K) >= len(f) {
				return fmt.Errorf("insn %d: ja %d leaves the program", pc, in.K)
			}
		case opJeqK, opJgtK, opJgeK, opJsetK:
			if pc+1+int(max(in.Jt, in.Jf)) >= len(f) {
				return fmt.Errorf("insn %d: jump %d/%d leaves the program", pc, in.Jt, in.Jf)
			}
		default:
			return fmt.Errorf("insn %d: opcode %#x", pc, in.Code)
		}
	}
	if f[len(f)-1].Code != opRetK {
		return fmt.Errorf("last instruction %#x is no return", f[len(f)-1].Code)
	}
	return nil
}

// exec runs the filter as the kernel would on one seccomp_data.
func execFilter(f []unix.SockFilter, auditArch, nr uint32, args ...uint64) (Action, error) {
	var data [64]byte
	binary.LittleEndian.PutUint32(data[offNr:], nr)
	binary.LittleEndian.PutUint32(data[offArch:], auditArch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[offArgs+8*i:], a)
	}
	var a uint32
	for pc := 0; pc < len(f); pc++ {
		in := f[pc]
		jump := func(cond bool) {
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		}
		switch in.Code {
		case opLdAbsW:
			a = binary.LittleEndian.Uint32(data[in.K:])
		case opAndK:
			a &= in.K
		case opJa:
			pc += int(in.K)
		case opJeqK:
			jump(a == in.K)
		case opJgtK:
			jump(a > in.K)
		case opJgeK:
			jump(a >= in.K)
		case opJsetK:
			jump(a&in.K != 0)
		case opRetK:
			return Action(in.K), nil
		default:
			return 0, fmt.Errorf("insn %d: opcode %#x", pc, in.Code)
		}
	}
	return 0, fmt.Errorf("ran off the end")
}

// newVM loads f into x/net/bpf's interpreter, the second opinion.
func newVM(f []unix.SockFilter) (*bpf.VM, error) {
	raw := make([]bpf.RawInstruction, len(f))
	for i, in := range f {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		return nil, fmt.Errorf("x/net/bpf cannot decode every instruction")
	}
	return bpf.NewVM(insns)
}

// runVM runs f in x/net/bpf's interpreter. That one loads words big-endian
// (network order), so each 32-bit word of seccomp_data is stored so.
func runVM(vm *bpf.VM, auditArch, nr uint32, args ...uint64) (Action, error) {
	var data [64]byte
	binary.BigEndian.PutUint32(data[offNr:], nr)
	binary.BigEndian.PutUint32(data[offArch:], auditArch)
	for i, a := range args {
		binary.BigEndian.PutUint32(data[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[offArgs+8*i+4:], uint32(a>>32))
	}
	r, err := vm.Run(data[:])
	return Action(uint32(r)), err
}

// filterT is an assembled filter with helpers to ask it things.
type filterT struct {
	tb testing.TB
	f  []unix.SockFilter
	t  *table
	vm *bpf.VM
}

func newFilterT(tb testing.TB, f []unix.SockFilter, t *table) *filterT {
	tb.Helper()
	vm, err := newVM(f)
	if err != nil {
		tb.Fatalf("x/net/bpf refuses the filter: %v", err)
	}
	return &filterT{tb: tb, f: f, t: t, vm: vm}
}

func assemble(tb testing.TB, p *Profile) *filterT {
	tb.Helper()
	f, err := p.Assemble()
	if err != nil {
		tb.Fatalf("Assemble: %v", err)
	}
	if err := verify(f); err != nil {
		tb.Fatalf("Assemble made a filter the kernel would refuse: %v", err)
	}
	t, err := nativeTable()
	if err != nil {
		tb.Fatal(err)
	}
	return newFilterT(tb, f, t)
}

// call returns the action for syscall name with args, on the native arch.
func (ft *filterT) call(name string, args ...uint64) Action {
	ft.tb.Helper()
	nr, ok := ft.t.nr(name)
	if !ok {
		ft.tb.Fatalf("no syscall %q on %s", name, ft.t.info.Name)
	}
	return ft.nr(uint32(nr), args...)
}

func (ft *filterT) nr(nr uint32, args ...uint64) Action {
	ft.tb.Helper()
	return ft.raw(uint32(ft.t.info.ID), nr, args...)
}

func (ft *filterT) raw(auditArch, nr uint32, args ...uint64) Action {
	ft.tb.Helper()
	a, err := execFilter(ft.f, auditArch, nr, args...)
	if err != nil {
		ft.tb.Fatalf("running the filter on nr %d: %v", nr, err)
	}
	b, err := runVM(ft.vm, auditArch, nr, args...)
	if err != nil || b != a {
		ft.tb.Fatalf("nr %d%v: x/net/bpf says %s, %v; this package's interpreter %s", nr, args, b, err, a)
	}
	return a
}

// foreignArch returns an audit arch other than the native one.
func foreignArch(t *table) uint32 {
	if t.info.ID == arch.I386.ID {
		return uint32(arch.X86_64.ID)
	}
	return uint32(arch.I386.ID)
}
