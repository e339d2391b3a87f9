package network

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// iptables is driven through iptables-save and iptables-restore --noflush:
// one exec reads every rule, one more applies any number of changes in a
// single transaction. Rules are found again by their comments, never by
// position.
const (
	// ChainHostPorts is the nat chain of the built-in network's DNAT
	// rules, jumped to from PREROUTING and OUTPUT for local destinations.
	ChainHostPorts = "ATOLL-HOSTPORTS"
	// hostPortMark marks connections to masquerade on the way out, as
	// CNI's portmap does (same bit, same meaning).
	hostPortMark     = "0x2000/0x2000"
	podCommentPrefix = "atoll pod "
)

func podComment(podID string) string { return podCommentPrefix + podID }

// rule is one iptables rule that atoll owns, found by its comment.
type rule struct {
	table, chain string
	insert       bool   // at the head of the chain, rather than the tail
	match        string // before the comment
	comment      string
	target       string // after the comment
}

func (r rule) line() string {
	op := "-A " + r.chain
	if r.insert {
		op = "-I " + r.chain + " 1"
	}
	parts := []string{op}
	if r.match != "" {
		parts = append(parts, r.match)
	}
	parts = append(parts, "-m comment --comment "+quoteComment(r.comment), r.target)
	return strings.Join(parts, " ")
}

// quoteComment quotes as iptables-save does; atoll's comments hold no
// quotes or backslashes.
func quoteComment(c string) string { return `"` + c + `"` }

// masqRules are the built-in network's rules for IPMasq: masquerade what
// leaves the subnet, and let forwarding through a FORWARD chain whose policy
// is DROP (docker's): out of the subnet, and back in for replies and
// published ports.
func masqRules(subnet string) []rule {
	c := "atoll default network " + subnet
	return []rule{
		{table: "nat", chain: "POSTROUTING", match: "-s " + subnet + " ! -d " + subnet, comment: c + " masquerade", target: "-j MASQUERADE"},
		{table: "filter", chain: "FORWARD", insert: true, match: "-s " + subnet, comment: c + " forward out", target: "-j ACCEPT"},
		{table: "filter", chain: "FORWARD", insert: true, match: "-d " + subnet + " -m conntrack --ctstate RELATED,ESTABLISHED,DNAT", comment: c + " forward in", target: "-j ACCEPT"},
	}
}

// hostPortRules are the rules shared by every pod that publishes ports on
// the built-in network through bridge.
func hostPortRules(bridge string) []rule {
	return []rule{
		{table: "nat", chain: "PREROUTING", match: "-m addrtype --dst-type LOCAL", comment: "atoll host ports", target: "-j " + ChainHostPorts},
		{table: "nat", chain: "OUTPUT", match: "-m addrtype --dst-type LOCAL", comment: "atoll host ports", target: "-j " + ChainHostPorts},
		{table: "nat", chain: "POSTROUTING", match: "-m mark --mark " + hostPortMark, comment: "atoll host ports masquerade", target: "-j MASQUERADE"},
		// route_localnet lets 127.0.0.1 through the bridge; without this a
		// pod could reach the host's loopback services through its gateway.
		{table: "filter", chain: "INPUT", insert: true, match: "-i " + bridge + " -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT", comment: "atoll bridge " + bridge + " localnet guard", target: "-j DROP"},
	}
}

// podRules are one pod's DNAT rules in ChainHostPorts, each carrying the pod
// ID in its comment. Connections from the host's loopback and from the
// subnet itself (hairpin) are marked to be masqueraded, or the replies would
// not come back through the NAT.
func podRules(podID string, ip net.IP, subnet string, ports []PortMapping) []string {
	c := "-m comment --comment " + quoteComment(podComment(podID))
	var lines []string
	for _, m := range ports {
		match := fmt.Sprintf("-p %s -m %s --dport %d", m.Protocol, m.Protocol, m.HostPort)
		if m.HostIP != "" {
			match = "-d " + m.HostIP + "/32 " + match
		}
		dst := net.JoinHostPort(ip.String(), fmt.Sprint(m.ContainerPort))
		lines = append(lines,
			fmt.Sprintf("-A %s -s %s %s %s -j MARK --set-xmark %s", ChainHostPorts, subnet, match, c, hostPortMark),
			fmt.Sprintf("-A %s -s 127.0.0.0/8 %s %s -j MARK --set-xmark %s", ChainHostPorts, match, c, hostPortMark),
			fmt.Sprintf("-A %s %s %s -j DNAT --to-destination %s", ChainHostPorts, match, c, dst),
		)
	}
	return lines
}

// ruleCheckInterval is how long Setup trusts a check that found (or made)
// the shared rules: within it, pods add their own rules, or nothing, without
// reading iptables again. Shared rules that someone flushed come back with
// the next Setup after it, or at once for a pod with ports (its rules need
// ChainHostPorts, and their failure sends Setup to the check).
const ruleCheckInterval = 10 * time.Second

// applyRules makes sure the shared rules Setup needs exist (IPMasq, host
// ports) and adds the pod's DNAT rules. Checking costs one iptables-save;
// when a shared rule is missing, the check and the add run again under a
// lock so that concurrent pods add it once.
func (e *env) applyRules(ctx context.Context, podID string, ip net.IP, ports []PortMapping) error {
	var want []rule
	var chains []string // nat chains
	if e.cfg.Default.IPMasq {
		want = append(want, masqRules(e.subnet.String())...)
	}
	var pod []string
	if len(ports) > 0 {
		want = append(want, hostPortRules(e.cfg.Default.Bridge)...)
		chains = append(chains, ChainHostPorts)
		pod = podRules(podID, ip, e.subnet.String(), ports)
	}
	stamp := e.ruleStamp(chains, want)
	if fi, err := os.Stat(stamp); err == nil && time.Since(fi.ModTime()) < ruleCheckInterval {
		if len(pod) == 0 {
			return nil
		}
		if err := iptablesRestore(ctx, map[string][]string{"nat": pod}); err == nil {
			return nil
		}
	}
	rs, err := iptablesSave(ctx)
	if err != nil {
		return err
	}
	if rs.missing(chains, want) == "" {
		if err := iptablesRestore(ctx, map[string][]string{"nat": pod}); err != nil {
			return err
		}
		touch(stamp)
		return nil
	}
	lock, err := lockFile(filepath.Join(e.paths.lockDir(), "iptables"), false)
	if err != nil {
		return err
	}
	defer lock.unlock()
	if rs, err = iptablesSave(ctx); err != nil {
		return err
	}
	in := map[string][]string{}
	for _, c := range chains {
		if !rs.table("nat").chains[c] {
			in["nat"] = append(in["nat"], ":"+c+" - [0:0]")
		}
	}
	for _, r := range want {
		if !rs.has(r) {
			in[r.table] = append(in[r.table], r.line())
		}
	}
	in["nat"] = append(in["nat"], pod...)
	if err := iptablesRestore(ctx, in); err != nil {
		return err
	}
	touch(stamp)
	return nil
}

// ruleStamp names the file whose mtime says when the shared rules were last
// checked.
func (e *env) ruleStamp(chains []string, want []rule) string {
	h := sha256.New()
	for _, c := range chains {
		fmt.Fprintln(h, c)
	}
	for _, r := range want {
		fmt.Fprintln(h, r.table, r.line())
	}
	return filepath.Join(e.paths.lockDir(), fmt.Sprintf("rules-%x", h.Sum(nil)[:8]))
}

func touch(path string) { _ = os.WriteFile(path, nil, 0o644) }

// deletePodRules deletes the pod's DNAT rules: first as Setup made them
// (one exec), else every rule whose comment names the pod, as
// iptables-save shows them.
func deletePodRules(ctx context.Context, podID string, made []string) error {
	if len(made) > 0 {
		del := make([]string, len(made))
		for i, l := range made {
			del[i] = "-D" + strings.TrimPrefix(l, "-A")
		}
		if iptablesRestore(ctx, map[string][]string{"nat": del}) == nil {
			return nil
		}
	}
	var err error
	for range 3 {
		var rs ruleset
		if rs, err = iptablesSave(ctx); err != nil {
			return err
		}
		del := rs.withComment(podComment(podID))
		if len(del) == 0 {
			return nil
		}
		// A concurrent delete of the same rule fails the transaction: read
		// again and retry.
		if err = iptablesRestore(ctx, del); err == nil {
			return nil
		}
	}
	return err
}

// deleteRules deletes atoll's rules with the given comments (tests; an
// uninstall).
func deleteRules(ctx context.Context, comments ...string) error {
	rs, err := iptablesSave(ctx)
	if err != nil {
		return err
	}
	del := map[string][]string{}
	for _, c := range comments {
		for t, lines := range rs.withComment(c) {
			del[t] = append(del[t], lines...)
		}
	}
	if len(del) == 0 {
		return nil
	}
	return iptablesRestore(ctx, del)
}

// ruleset is what iptables-save printed: per table, the chains and the
// rules (the "-A" lines).
type ruleset map[string]*tableRules

type tableRules struct {
	chains map[string]bool
	rules  []string
}

func (rs ruleset) table(name string) *tableRules {
	if t, ok := rs[name]; ok {
		return t
	}
	return &tableRules{chains: map[string]bool{}}
}

func parseSave(out string) ruleset {
	rs := ruleset{}
	var cur *tableRules
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "*"):
			cur = &tableRules{chains: map[string]bool{}}
			rs[line[1:]] = cur
		case cur == nil:
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			cur.chains[name] = true
		case strings.HasPrefix(line, "-A "):
			cur.rules = append(cur.rules, line)
		}
	}
	return rs
}

func hasComment(line, comment string) bool {
	return strings.Contains(line, "--comment "+quoteComment(comment)+" ") ||
		strings.HasSuffix(line, "--comment "+quoteComment(comment))
}

// has reports whether the rule, by chain and comment, exists.
func (rs ruleset) has(r rule) bool {
	for _, line := range rs.table(r.table).rules {
		if strings.HasPrefix(line, "-A "+r.chain+" ") && hasComment(line, r.comment) {
			return true
		}
	}
	return false
}

// missing names the first wanted chain or rule that does not exist, or "".
func (rs ruleset) missing(chains []string, want []rule) string {
	for _, c := range chains {
		if !rs.table("nat").chains[c] {
			return c
		}
	}
	for _, r := range want {
		if !rs.has(r) {
			return r.comment
		}
	}
	return ""
}

// withComment gives, per table, the "-D" lines that delete the rules
// carrying comment.
func (rs ruleset) withComment(comment string) map[string][]string {
	out := map[string][]string{}
	for name, t := range rs {
		for _, line := range t.rules {
			if hasComment(line, comment) {
				out[name] = append(out[name], "-D"+strings.TrimPrefix(line, "-A"))
			}
		}
	}
	return out
}

func iptablesSave(ctx context.Context) (ruleset, error) {
	bin, err := findTool("iptables-save")
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("iptables-save: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return parseSave(stdout.String()), nil
}

// iptablesRestore applies lines per table in one transaction, leaving every
// other rule alone.
func iptablesRestore(ctx context.Context, tables map[string][]string) error {
	names := make([]string, 0, len(tables))
	for t, lines := range tables {
		if len(lines) > 0 {
			names = append(names, t)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	var in strings.Builder
	for _, t := range names {
		fmt.Fprintf(&in, "*%s\n", t)
		for _, l := range tables[t] {
			in.WriteString(l)
			in.WriteByte('\n')
		}
		in.WriteString("COMMIT\n")
	}
	bin, err := findTool("iptables-restore")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "--noflush", "--wait")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables-restore: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// findTool finds an iptables program in PATH, or in /usr/sbin and /sbin
// when PATH lacks them.
func findTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}
