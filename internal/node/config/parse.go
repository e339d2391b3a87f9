package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path. A missing file is an error that wraps
// fs.ErrNotExist and names the path; a refused file is an *Error.
func Load(path string) (Config, []Problem, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("load node config: %w", err)
	}
	return Parse(path, data)
}

// Parse reads a config; file is the name used in messages. Unknown keys are
// warnings and do not refuse the file. Bad values, wrong types, YAML syntax
// errors, a top level that is not a mapping and duplicate keys refuse it
// with an *Error listing them all, sorted by line; the Config is then zero.
// The warnings are returned in either case.
func Parse(file string, data []byte) (cfg Config, warnings []Problem, err error) {
	d := &decoder{
		seen:   seen{lines: map[string]int{}, broken: map[string]bool{}},
		budget: maxMergedKeys,
	}
	if root := d.document(data); root != nil {
		cfg = d.config(root)
	}
	// Values that could be read are checked even when others could not, so
	// that one run shows every problem; the broken ones are skipped.
	errs := append(d.errs, check(cfg, d.seen)...)
	warnings = finish(file, d.warns)
	if len(errs) > 0 {
		return Config{}, warnings, &Error{Problems: finish(file, errs)}
	}
	return cfg, warnings, nil
}

// finish names the file in each problem, sorts them by line and drops
// repeats (a merged anchor can bring the same problem more than once).
func finish(file string, problems []Problem) []Problem {
	if len(problems) == 0 {
		return nil
	}
	out := make([]Problem, 0, len(problems))
	had := make(map[Problem]bool, len(problems))
	for _, p := range problems {
		p.File = file
		if !had[p] {
			had[p] = true
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	return out
}

const (
	// maxMergedKeys bounds the keys that YAML merge keys (<<) may bring in,
	// so that a few lines of nested aliases cannot make Parse loop for long.
	maxMergedKeys = 10000
	// maxMergeDepth bounds merges of merges; a mapping that merges itself
	// would otherwise never end.
	maxMergeDepth = 16
)

// decoder turns a YAML node tree into a Config, recording where each key
// was and what was wrong with it.
type decoder struct {
	seen   seen
	errs   []Problem
	warns  []Problem
	budget int // merged keys still allowed; see maxMergedKeys
}

// entry is one key of a mapping and its value.
type entry struct {
	name  string
	line  int
	value *yaml.Node
}

func (d *decoder) errorf(key string, line int, format string, args ...any) {
	d.errs = append(d.errs, Problem{Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// fail records a value that could not be read: the key is present, so
// checks that only ask whether it is there see it, but its value is not
// checked again.
func (d *decoder) fail(key string, line int, format string, args ...any) {
	d.errorf(key, line, format, args...)
	d.seen.lines[key] = line
	d.seen.broken[key] = true
}

// document parses data and returns the root node of its one document, or
// nil when the file is empty or cannot be read.
func (d *decoder) document(data []byte) (root *yaml.Node) {
	// yaml.v3 reports its own bugs as panics; Parse must refuse the file
	// rather than take the daemon down.
	defer func() {
		if r := recover(); r != nil {
			d.errorf("", 0, "invalid YAML: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntax(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntax(err)
		return nil
	default:
		d.errorf("", next.Line, "a second YAML document starts here; the node config is one document")
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// syntax records a YAML syntax error, with its line when yaml.v3 gives one.
func (d *decoder) syntax(err error) {
	msg, _ := strings.CutPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, after
			}
		}
	}
	d.errorf("", line, "invalid YAML: %s", msg)
}

// topKeys are the keys known at the top level, in file order.
func topKeys() []string {
	return []string{"name", "public-ip", "metadata", "log-level", "tls-dir", "store", "units", "fleet"}
}

// fleetKeys are the keys known under fleet.
func fleetKeys() []string { return []string{"engine", "agent", "ttl", "grace", "listen", "prefix"} }

// unitsKeys are the keys known under units.
func unitsKeys() []string { return []string{"backend"} }

// storeKeys are the keys known under store, in file order.
func storeKeys() []string {
	return []string{
		"role", "name", "client-port", "peer-port", "initial-cluster",
		"initial-cluster-token", "discovery", "join", "endpoints",
		"snapshot-count", "quota-backend-bytes", "auto-compaction-retention",
		"heartbeat-interval", "election-timeout",
	}
}

func (d *decoder) config(root *yaml.Node) Config {
	var cfg Config
	n := resolve(root)
	if isNull(n) {
		return cfg
	}
	if n.Kind != yaml.MappingNode {
		d.errorf("", n.Line, "the top level must be a mapping of keys to values, got %s", describe(n))
		return cfg
	}
	for _, e := range d.flatten("", n, 0) {
		switch e.name {
		case "name":
			d.str(&cfg.Name, "name", e)
		case "public-ip":
			d.str(&cfg.PublicIP, "public-ip", e)
		case "metadata":
			cfg.Metadata = d.metadata(e)
		case "log-level":
			d.str(&cfg.LogLevel, "log-level", e)
		case "tls-dir":
			d.str(&cfg.TLSDir, "tls-dir", e)
		case "store":
			cfg.Store = d.store(e)
		case "units":
			cfg.Units = d.units(e)
		case "fleet":
			cfg.Fleet = d.fleet(e)
		default:
			d.unknown("", e, topKeys())
		}
	}
	return cfg
}

func (d *decoder) store(e entry) Store {
	var st Store
	entries, ok := d.mapping("store", e)
	if !ok {
		return st
	}
	for _, e := range entries {
		key := "store." + e.name
		switch e.name {
		case "role":
			d.str(&st.Role, key, e)
		case "name":
			d.str(&st.Name, key, e)
		case "client-port":
			d.port(&st.ClientPort, key, e)
		case "peer-port":
			d.port(&st.PeerPort, key, e)
		case "initial-cluster":
			d.str(&st.InitialCluster, key, e)
		case "initial-cluster-token":
			d.str(&st.InitialClusterToken, key, e)
		case "discovery":
			d.str(&st.Discovery, key, e)
		case "join":
			st.Join = d.list(key, e)
		case "endpoints":
			st.Endpoints = d.list(key, e)
		case "snapshot-count":
			d.count(&st.SnapshotCount, key, e)
		case "quota-backend-bytes":
			if text, ok := d.scalar(key, e, "a size"); ok {
				if v, err := parseSize(text); err != nil {
					d.fail(key, e.line, "%v", err)
				} else {
					st.QuotaBackendBytes = v
				}
			}
		case "auto-compaction-retention":
			d.duration(&st.AutoCompactionRetention, key, e)
		case "heartbeat-interval":
			d.duration(&st.HeartbeatInterval, key, e)
		case "election-timeout":
			d.duration(&st.ElectionTimeout, key, e)
		default:
			d.unknown("store", e, storeKeys())
		}
	}
	return st
}

func (d *decoder) units(e entry) Units {
	var u Units
	entries, ok := d.mapping("units", e)
	if !ok {
		return u
	}
	for _, e := range entries {
		switch e.name {
		case "backend":
			d.str(&u.Backend, "units.backend", e)
		default:
			d.unknown("units", e, unitsKeys())
		}
	}
	return u
}

func (d *decoder) fleet(e entry) Fleet {
	var f Fleet
	entries, ok := d.mapping("fleet", e)
	if !ok {
		return f
	}
	for _, e := range entries {
		key := "fleet." + e.name
		switch e.name {
		case "engine":
			f.Engine = d.boolean(key, e)
		case "agent":
			f.Agent = d.boolean(key, e)
		case "ttl":
			d.duration(&f.TTL, key, e)
		case "grace":
			d.duration(&f.Grace, key, e)
		case "listen":
			d.str(&f.Listen, key, e)
		case "prefix":
			d.str(&f.Prefix, key, e)
		default:
			d.unknown("fleet", e, fleetKeys())
		}
	}
	return f
}

// boolean reads true or false (YAML 1.2's words, in any case, and yes/no/on/off).
func (d *decoder) boolean(key string, e entry) *bool {
	text, ok := d.scalar(key, e, "true or false")
	if !ok {
		return nil
	}
	var v bool
	switch strings.ToLower(text) {
	case "true", "yes", "on":
		v = true
	case "false", "no", "off":
	default:
		d.fail(key, e.line, "%q is not true or false", text)
		return nil
	}
	return &v
}

// metadata reads the free key/value pairs. Values are scalars taken as
// their text, so `disk: 1` is "1"; an empty value is "".
func (d *decoder) metadata(e entry) map[string]string {
	entries, ok := d.mapping("metadata", e)
	if !ok || len(entries) == 0 {
		return nil
	}
	d.seen.lines["metadata"] = e.line
	m := make(map[string]string, len(entries))
	for _, me := range entries {
		key := "metadata." + me.name
		v := resolve(me.value)
		if v.Kind != yaml.ScalarNode {
			d.fail(key, me.line, "want a string, got %s", describe(v))
			continue
		}
		text := v.Value
		if isNull(v) {
			text = ""
		}
		m[me.name] = text
		d.seen.lines[key] = me.line
	}
	return m
}

// unknown warns about a key this package does not know; path is the key
// of the mapping it is in.
func (d *decoder) unknown(path string, e entry, known []string) {
	msg := fmt.Sprintf("unknown key %q", e.name)
	if s, ok := suggest(e.name, known); ok {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	d.warns = append(d.warns, Problem{Line: e.line, Key: path, Msg: msg})
}

// mapping returns the entries of the mapping that is e's value; null is an
// empty mapping. It is false when the value is not a mapping.
func (d *decoder) mapping(key string, e entry) ([]entry, bool) {
	n := resolve(e.value)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		d.fail(key, e.line, "want a mapping, got %s", describe(n))
		return nil, false
	}
	return d.flatten(key, n, 0), true
}

// flatten returns the keys of mapping n, whose own key is path, with YAML
// merge keys (<<) expanded: keys written in n win over merged ones, and an
// earlier merged mapping wins over a later one. A key written twice in n is
// an error at the second.
func (d *decoder) flatten(path string, n *yaml.Node, depth int) []entry {
	if depth > maxMergeDepth {
		d.errorf(path, n.Line, "merge keys (<<) nested more than %d deep", maxMergeDepth)
		return nil
	}
	if depth > 0 {
		if d.budget < 0 {
			return nil // already reported
		}
		d.budget -= len(n.Content) / 2
		if d.budget < 0 {
			d.errorf(path, n.Line, "merge keys (<<) bring in more than %d keys", maxMergedKeys)
			return nil
		}
	}
	var entries []entry
	first := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyNode, value := n.Content[i], n.Content[i+1]
		k := resolve(keyNode)
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, keyNode, value)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(path, keyNode.Line, "a key must be a string, got %s", describe(k))
			continue
		}
		if line, dup := first[k.Value]; dup {
			d.errorf(join(path, k.Value), keyNode.Line, "duplicate key (first at line %d)", line)
			continue
		}
		first[k.Value] = keyNode.Line
		entries = append(entries, entry{name: k.Value, line: keyNode.Line, value: value})
	}
	for i := 0; i < len(merges); i += 2 {
		keyNode, value := merges[i], merges[i+1]
		for _, m := range d.mergeSources(path, keyNode.Line, value) {
			for _, e := range d.flatten(path, m, depth+1) {
				if _, ok := first[e.name]; !ok {
					first[e.name] = e.line
					entries = append(entries, e)
				}
			}
		}
	}
	return entries
}

// mergeSources returns the mappings a merge key's value names: one mapping
// or a list of them.
func (d *decoder) mergeSources(path string, line int, value *yaml.Node) []*yaml.Node {
	v := resolve(value)
	switch v.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, el := range v.Content {
			m := resolve(el)
			if m.Kind != yaml.MappingNode {
				d.errorf(path, el.Line, "a merge key (<<) takes a mapping or a list of mappings, got a list holding %s", describe(m))
				continue
			}
			out = append(out, m)
		}
		return out
	}
	d.errorf(path, line, "a merge key (<<) takes a mapping or a list of mappings, got %s", describe(v))
	return nil
}

// scalar returns the text of e's scalar value. It is false when the value
// is null (the key is then absent) or not a scalar (an error naming want).
func (d *decoder) scalar(key string, e entry, want string) (string, bool) {
	v := resolve(e.value)
	if isNull(v) {
		return "", false
	}
	if v.Kind != yaml.ScalarNode {
		d.fail(key, e.line, "want %s, got %s", want, describe(v))
		return "", false
	}
	d.seen.lines[key] = e.line
	return v.Value, true
}

// str reads a string. Numbers and booleans are taken as their text.
func (d *decoder) str(dst *string, key string, e entry) {
	if text, ok := d.scalar(key, e, "a string"); ok {
		*dst = text
	}
}

func (d *decoder) port(dst *int, key string, e entry) {
	text, ok := d.scalar(key, e, "an integer")
	if !ok {
		return
	}
	n, err := strconv.ParseInt(text, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange), err == nil && int64(int(n)) != n:
		d.fail(key, e.line, "%s is out of range 1..65535", strings.TrimPrefix(text, "+"))
	case err != nil:
		d.fail(key, e.line, "%q is not an integer", text)
	default:
		*dst = int(n)
	}
}

func (d *decoder) count(dst *uint64, key string, e entry) {
	text, ok := d.scalar(key, e, "an integer")
	if !ok {
		return
	}
	n, err := strconv.ParseInt(text, 10, 64)
	switch {
	case err == nil && n < 1:
		d.fail(key, e.line, "%d is less than 1", n)
	case err == nil:
		*dst = uint64(n)
	case errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(text, "-"):
		u, err := strconv.ParseUint(strings.TrimPrefix(text, "+"), 10, 64)
		if err != nil {
			d.fail(key, e.line, "%s is too large", text)
			return
		}
		*dst = u
	case errors.Is(err, strconv.ErrRange):
		d.fail(key, e.line, "%s is less than 1", text)
	default:
		d.fail(key, e.line, "%q is not an integer", text)
	}
}

func (d *decoder) duration(dst *Duration, key string, e entry) {
	text, ok := d.scalar(key, e, "a duration")
	if !ok {
		return
	}
	v, err := parseDuration(text)
	if err != nil {
		d.fail(key, e.line, "%v", err)
		return
	}
	*dst = v
}

// list reads a list of strings, written as a YAML list or as one
// comma-separated string. An empty list or string is no list: the key is
// then absent. Each entry's line is kept for the checks.
func (d *decoder) list(key string, e entry) []string {
	v := resolve(e.value)
	var out []string
	switch {
	case isNull(v):
		return nil
	case v.Kind == yaml.ScalarNode:
		if strings.TrimSpace(v.Value) == "" {
			return nil
		}
		for part := range strings.SplitSeq(v.Value, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				d.fail(key, e.line, "%q has an empty entry", v.Value)
				return nil
			}
			d.seen.lines[fmt.Sprintf("%s[%d]", key, len(out))] = e.line
			out = append(out, part)
		}
	case v.Kind == yaml.SequenceNode:
		if len(v.Content) == 0 {
			return nil
		}
		for _, el := range v.Content {
			s := resolve(el)
			if s.Kind != yaml.ScalarNode || isNull(s) {
				d.errorf(key, el.Line, "want a list of strings, got a list holding %s", describe(s))
				continue
			}
			d.seen.lines[fmt.Sprintf("%s[%d]", key, len(out))] = el.Line
			out = append(out, s.Value)
		}
	default:
		d.fail(key, e.line, "want a list or a comma-separated string, got %s", describe(v))
		return nil
	}
	d.seen.lines[key] = e.line
	return out
}

// maxAliasHops bounds how far resolve follows an alias.
const maxAliasHops = 64

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; i < maxAliasHops && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of a node for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a string"
	}
	return "nothing"
}

// join returns the dotted path of key under path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest returns the one known key closest to key, when it is within edit
// distance 2 after lowercasing and reading '_' as '-'.
func suggest(key string, known []string) (string, bool) {
	norm := strings.ReplaceAll(strings.ToLower(key), "_", "-")
	best, bestDist, ties := "", 3, 0
	for _, k := range known {
		dist := editDistance(norm, k, 3)
		switch {
		case dist > 2:
		case dist < bestDist:
			best, bestDist, ties = k, dist, 1
		case dist == bestDist:
			ties++
		}
	}
	if ties != 1 {
		return "", false
	}
	return best, true
}

// editDistance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and swaps of neighbours, by rune),
// or limit when it is at least limit.
func editDistance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if diff := len(ra) - len(rb); diff >= limit || -diff >= limit {
		return limit
	}
	// rows[0] is two rows back, rows[1] the previous row, rows[2] this row.
	rows := [3][]int{make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)}
	for j := range rows[1] {
		rows[1][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur := rows[2]
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(rows[1][j]+1, cur[j-1]+1, rows[1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], rows[0][j-2]+1)
			}
		}
		rows[0], rows[1], rows[2] = rows[1], cur, rows[0]
	}
	return min(rows[1][len(rb)], limit)
}
