//go:build linux

package seccomp

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data: nr, arch, instruction_pointer, args[6].
// The four architectures with tables here are little-endian, so an
// argument's low word comes first.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// badArch is what a syscall of another architecture or ABI gets.
const badArch = ActKillProcess

// x32Bit marks x32 syscall numbers on amd64 (__X32_SYSCALL_BIT).
const x32Bit = 0x40000000

// maxInsns is the kernel's limit on a filter's length (BPF_MAXINSNS).
const maxInsns = 4096

// chain is what the filter does with one syscall: the conditional rules in
// order, then fallback (the first unconditional rule's action, or the
// profile's default).
type chain struct {
	rules    []Rule
	fallback Action
}

// plan is a profile resolved against one architecture: the chains of the
// syscalls that do not simply get the default, sorted by number.
type plan struct {
	t      *table
	def    Action
	nrs    []int
	chains []chain
}

func (c *plan) chainOf(nr int) chain {
	if i, ok := slices.BinarySearch(c.nrs, nr); ok {
		return c.chains[i]
	}
	return chain{fallback: c.def}
}

// plan checks p and resolves it against t, essential syscalls first.
func (p *Profile) plan(t *table) (*plan, error) {
	if !p.Default.valid() {
		return nil, fmt.Errorf("seccomp: %w: default action %s", ErrInvalid, p.Default)
	}
	// One entry per rule that applies here: idx is the rule's index in
	// p.Rules, or idxEssential or idxEssentialClone. No pointers, so that
	// sorting them is cheap.
	type entry struct{ nr, idx int32 }
	const (
		idxEssentialClone = -2
		idxEssential      = -1
	)
	es := make([]entry, 0, len(essential)+1+len(p.Rules))
	for _, n := range essential {
		if nr, ok := t.nr(n); ok {
			es = append(es, entry{nr: int32(nr), idx: idxEssential})
		}
	}
	if nr, ok := t.nr(essentialClone.Syscall); ok {
		es = append(es, entry{nr: int32(nr), idx: idxEssentialClone})
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		nr, ok := t.nr(r.Syscall)
		if !ok {
			if knownAnywhere(r.Syscall) {
				continue // another architecture's syscall
			}
			return nil, fmt.Errorf("seccomp: rule %d: %w", i, t.unknown(r.Syscall))
		}
		if !r.Action.valid() {
			return nil, fmt.Errorf("seccomp: rule %d (%s): %w: action %s", i, r.Syscall, ErrInvalid, r.Action)
		}
		for _, a := range r.Args {
			if a.Index > 5 || a.Op < OpEQ || a.Op > OpMaskedEQ {
				return nil, fmt.Errorf("seccomp: rule %d (%s): %w: argument %d %s", i, r.Syscall, ErrInvalid, a.Index, a.Op)
			}
		}
		es = append(es, entry{nr: int32(nr), idx: int32(i)})
	}
	// For one syscall: essential rules first, then the profile's in its order.
	slices.SortFunc(es, func(a, b entry) int {
		if a.nr != b.nr {
			return int(a.nr - b.nr)
		}
		return int(a.idx - b.idx)
	})
	rule := func(e entry) (args []Arg, act Action) {
		switch e.idx {
		case idxEssential:
			return nil, ActAllow
		case idxEssentialClone:
			return essentialClone.Args, essentialClone.Action
		}
		return p.Rules[e.idx].Args, p.Rules[e.idx].Action
	}

	c := &plan{t: t, def: p.Default, nrs: make([]int, 0, len(es)), chains: make([]chain, 0, len(es))}
	for i := 0; i < len(es); {
		nr := es[i].nr
		ch := chain{fallback: p.Default}
		decided := false
		for ; i < len(es) && es[i].nr == nr; i++ {
			if decided {
				continue // after an unconditional rule: never reached
			}
			args, act := rule(es[i])
			if len(args) == 0 {
				ch.fallback, decided = act, true
				continue
			}
			ch.rules = append(ch.rules, Rule{Args: args, Action: act})
		}
		// A last conditional rule that does what the fallback does changes
		// nothing (the essential clone rule, when the profile allows clone).
		for n := len(ch.rules); n > 0 && ch.rules[n-1].Action == ch.fallback; n-- {
			ch.rules = ch.rules[:n-1]
		}
		if len(ch.rules) == 0 && ch.fallback == p.Default {
			continue
		}
		c.nrs = append(c.nrs, int(nr))
		c.chains = append(c.chains, ch)
	}
	return c, nil
}

// Assemble compiles the profile to BPF for the running architecture. The
// filter checks the audit architecture first (another one, or amd64's x32
// ABI, kills the process), then finds the syscall number in a binary search
// tree; argument conditions compare 64-bit values. The Essential syscalls
// are allowed whatever the profile says.
func (p *Profile) Assemble() ([]unix.SockFilter, error) {
	t, err := nativeTable()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	c, err := p.plan(t)
	if err != nil {
		return nil, err
	}
	return c.program()
}

// Classic BPF instructions, as seccomp takes them.
func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jmp(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_JMP | code | unix.BPF_K, Jt: jt, Jf: jf, K: k}
}

func load(off uint32) unix.SockFilter { return stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }

func ret(a Action) unix.SockFilter { return stmt(unix.BPF_RET|unix.BPF_K, uint32(a)) }

// segment is a range of syscall numbers, from start to the next segment's
// start, that share one outcome: a plain action, or a chain.
type segment struct {
	start uint32
	act   Action
	ch    *chain // nil: act
	size  int    // instructions of the outcome
}

// program lays out the whole filter.
func (c *plan) program() ([]unix.SockFilter, error) {
	segs := make([]segment, 0, 2*len(c.nrs)+4)
	push := func(s segment) {
		if n := len(segs); n > 0 && s.ch == nil && segs[n-1].ch == nil && segs[n-1].act == s.act {
			return // same outcome as the range before: extend it
		}
		s.size = 1
		if s.ch != nil {
			s.size = chainSize(s.ch)
		}
		segs = append(segs, s)
	}
	next := uint64(0)
	for i, nr := range c.nrs {
		if nr < 0 || nr >= x32Bit {
			return nil, fmt.Errorf("seccomp: %w: syscall number %d", ErrInvalid, nr)
		}
		if uint64(nr) > next {
			push(segment{start: uint32(next), act: c.def})
		}
		if ch := &c.chains[i]; len(ch.rules) > 0 {
			push(segment{start: uint32(nr), ch: ch})
		} else {
			push(segment{start: uint32(nr), act: ch.fallback})
		}
		next = uint64(nr) + 1
	}
	push(segment{start: uint32(next), act: c.def})
	if c.t.x32 {
		// x32 calls are another ABI; -1 (a tracer skipping a call) is not.
		push(segment{start: x32Bit, act: badArch})
		push(segment{start: 0xffffffff, act: c.def})
	}

	n := 4 + treeSize(segs)
	if n > maxInsns {
		return nil, fmt.Errorf("seccomp: %w: %d instructions, the kernel takes %d", ErrInvalid, n, maxInsns)
	}
	out := make([]unix.SockFilter, 0, n)
	out = append(out,
		load(offArch),
		jmp(unix.BPF_JEQ, uint32(c.t.info.ID), 1, 0),
		ret(badArch),
		load(offNr),
	)
	out, err := emitTree(out, segs)
	if err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fmt.Errorf("seccomp: internal error: %d instructions laid out, %d planned", len(out), n)
	}
	return out, nil
}

// treeSize is the length of emitTree's code for segs.
func treeSize(segs []segment) int {
	if len(segs) == 1 {
		return segs[0].size
	}
	m := len(segs) / 2
	left := treeSize(segs[:m])
	n := 1 + left + treeSize(segs[m:])
	if left > 255 {
		n++
	}
	return n
}

// emitTree appends the code that, with the syscall number in A, runs the
// outcome of the segment holding it. Segments are split in halves on their
// start; a branch farther than a conditional jump reaches goes through an
// unconditional one.
func emitTree(out []unix.SockFilter, segs []segment) ([]unix.SockFilter, error) {
	if len(segs) == 1 {
		if s := segs[0]; s.ch != nil {
			return chainCode(out, s.ch)
		}
		return append(out, ret(segs[0].act)), nil
	}
	m := len(segs) / 2
	if left := treeSize(segs[:m]); left <= 255 {
		out = append(out, jmp(unix.BPF_JGE, segs[m].start, uint8(left), 0))
	} else {
		out = append(out,
			jmp(unix.BPF_JGE, segs[m].start, 0, 1),
			stmt(unix.BPF_JMP|unix.BPF_JA, uint32(left)),
		)
	}
	out, err := emitTree(out, segs[:m])
	if err != nil {
		return nil, err
	}
	return emitTree(out, segs[m:])
}

// chainSize is the length of chainCode's code for ch.
func chainSize(ch *chain) int {
	n := 1
	for _, r := range ch.rules {
		n += ruleSize(r)
	}
	return n
}

// chainCode appends the code for one syscall's conditional rules: each
// rule's conditions, failing to the next rule, then its return; last the
// fallback.
func chainCode(out []unix.SockFilter, ch *chain) ([]unix.SockFilter, error) {
	for _, r := range ch.rules {
		var err error
		if out, err = ruleCode(out, r); err != nil {
			return nil, err
		}
	}
	return append(out, ret(ch.fallback)), nil
}

// ruleSize is the length of ruleCode's code for r.
func ruleSize(r Rule) int {
	n := 1
	for _, a := range r.Args {
		switch a.Op {
		case OpEQ, OpNE:
			n += 4
		case OpMaskedEQ:
			n += 6
		default:
			n += 5
		}
	}
	return n
}

// ruleCode appends the code for one rule: its conditions in order, each
// jumping past the rule's return when it does not hold, then the return.
func ruleCode(out []unix.SockFilter, r Rule) ([]unix.SockFilter, error) {
	const fail = 0xff // placeholder: jump to the next rule
	start := len(out)
	end := start + ruleSize(r) // the next rule's first instruction
	if end-start > 256 {
		return nil, fmt.Errorf("seccomp: %w: rule with %d conditions is too long", ErrInvalid, len(r.Args))
	}
	for _, a := range r.Args {
		lo := offArgs + 8*uint32(a.Index)
		hi := lo + 4
		vhi, vlo := uint32(a.Value>>32), uint32(a.Value)
		// Each case goes on to the next condition when it holds.
		switch a.Op {
		case OpEQ:
			out = append(out, load(hi), jmp(unix.BPF_JEQ, vhi, 0, fail),
				load(lo), jmp(unix.BPF_JEQ, vlo, 0, fail))
		case OpNE:
			out = append(out, load(hi), jmp(unix.BPF_JEQ, vhi, 0, 2), // high words differ: holds
				load(lo), jmp(unix.BPF_JEQ, vlo, fail, 0))
		case OpMaskedEQ:
			and := uint16(unix.BPF_ALU | unix.BPF_AND | unix.BPF_K)
			out = append(out, load(hi), stmt(and, uint32(a.Mask>>32)), jmp(unix.BPF_JEQ, vhi, 0, fail),
				load(lo), stmt(and, uint32(a.Mask)), jmp(unix.BPF_JEQ, vlo, 0, fail))
		case OpGT, OpGE:
			last := uint16(unix.BPF_JGT)
			if a.Op == OpGE {
				last = unix.BPF_JGE
			}
			out = append(out, load(hi),
				jmp(unix.BPF_JGT, vhi, 3, 0),    // high word above: holds
				jmp(unix.BPF_JEQ, vhi, 0, fail), // below: fails
				load(lo), jmp(last, vlo, 0, fail))
		case OpLT, OpLE:
			last := uint16(unix.BPF_JGE) // arg < v: fails when arg >= v
			if a.Op == OpLE {
				last = unix.BPF_JGT
			}
			out = append(out, load(hi),
				jmp(unix.BPF_JGT, vhi, fail, 0), // high word above: fails
				jmp(unix.BPF_JEQ, vhi, 0, 2),    // below: holds
				load(lo), jmp(last, vlo, fail, 0))
		default:
			return nil, fmt.Errorf("seccomp: %w: operator %s", ErrInvalid, a.Op)
		}
	}
	out = append(out, ret(r.Action))
	for i := start; i < end; i++ {
		in := &out[i]
		if in.Code&0x07 != unix.BPF_JMP {
			continue
		}
		if in.Jt == fail {
			in.Jt = uint8(end - i - 1)
		}
		if in.Jf == fail {
			in.Jf = uint8(end - i - 1)
		}
	}
	return out, nil
}
