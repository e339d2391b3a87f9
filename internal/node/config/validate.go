package config

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// etcd's defaults, used only to compare heartbeat-interval and
// election-timeout when one of them is unset; they are not applied.
const (
	etcdHeartbeat = 100 * time.Millisecond
	etcdElection  = time.Second
)

// Validate checks a Config built in code, for example after command-line
// flags overrode file values, with the same rules and messages as Parse but
// Line 0. A zero field counts as unset. It returns nil or an *Error.
func Validate(cfg Config) error {
	if problems := check(cfg, seenIn(cfg)); len(problems) > 0 {
		return &Error{Problems: problems}
	}
	return nil
}

// Marshal writes cfg as YAML that Parse reads back to an equal Config. It
// refuses a config that Validate refuses, so that what it writes can be
// read; empty maps and lists are written as absent, and Parse returns them
// as nil.
func Marshal(cfg Config) ([]byte, error) {
	if err := Validate(cfg); err != nil {
		return nil, fmt.Errorf("marshal node config: %w", err)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("marshal node config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal node config: %w", err)
	}
	return buf.Bytes(), nil
}

// seen records where a config's keys came from: the line of each key that
// is present (0 when the config was built in code), and the keys whose value
// could not be read, whose values the checks then skip. Entries of a list
// are keyed "store.join[0]" and so on, metadata entries "metadata.<key>".
type seen struct {
	lines  map[string]int
	broken map[string]bool
}

// present reports whether key was given, readable or not.
func (s seen) present(key string) bool {
	_, ok := s.lines[key]
	return ok
}

// set reports whether key was given with a value that could be read.
func (s seen) set(key string) bool { return s.present(key) && !s.broken[key] }

func (s seen) line(key string) int { return s.lines[key] }

// seenIn marks the non-zero fields of a Config built in code as present.
func seenIn(cfg Config) seen {
	s := seen{lines: map[string]int{}}
	mark := func(key string, isSet bool) {
		if isSet {
			s.lines[key] = 0
		}
	}
	st := cfg.Store
	mark("name", cfg.Name != "")
	mark("public-ip", cfg.PublicIP != "")
	mark("metadata", len(cfg.Metadata) > 0)
	for k := range cfg.Metadata {
		mark("metadata."+k, true)
	}
	mark("log-level", cfg.LogLevel != "")
	mark("tls-dir", cfg.TLSDir != "")
	mark("store.role", st.Role != "")
	mark("store.name", st.Name != "")
	mark("store.client-port", st.ClientPort != 0)
	mark("store.peer-port", st.PeerPort != 0)
	mark("store.initial-cluster", st.InitialCluster != "")
	mark("store.initial-cluster-token", st.InitialClusterToken != "")
	mark("store.discovery", st.Discovery != "")
	mark("store.join", len(st.Join) > 0)
	mark("store.endpoints", len(st.Endpoints) > 0)
	mark("store.snapshot-count", st.SnapshotCount != 0)
	mark("store.quota-backend-bytes", st.QuotaBackendBytes != 0)
	mark("store.auto-compaction-retention", st.AutoCompactionRetention != 0)
	mark("store.heartbeat-interval", st.HeartbeatInterval != 0)
	mark("store.election-timeout", st.ElectionTimeout != 0)
	mark("units.backend", cfg.Units.Backend != "")
	fl := cfg.Fleet
	mark("fleet.engine", fl.Engine != nil)
	mark("fleet.agent", fl.Agent != nil)
	mark("fleet.ttl", fl.TTL != 0)
	mark("fleet.grace", fl.Grace != 0)
	mark("fleet.listen", fl.Listen != "")
	mark("fleet.prefix", fl.Prefix != "")
	return s
}

// checker collects the problems of one config.
type checker struct {
	seen     seen
	problems []Problem
}

// add records a problem with key at the line key was given on.
func (c *checker) add(key, format string, args ...any) {
	c.addAt(key, c.seen.line(key), format, args...)
}

func (c *checker) addAt(key string, line int, format string, args ...any) {
	c.problems = append(c.problems, Problem{Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// lineSuffix is " (line N)" for a key given on line N, or "".
func (c *checker) lineSuffix(key string) string {
	if line := c.seen.line(key); line > 0 {
		return fmt.Sprintf(" (line %d)", line)
	}
	return ""
}

// check applies every value rule to cfg; s says which keys are set and
// where. It is pure: the same config and lines give the same problems.
func check(cfg Config, s seen) []Problem {
	c := &checker{seen: s}
	if s.set("name") {
		c.name("name", cfg.Name)
	}
	if s.set("public-ip") && net.ParseIP(cfg.PublicIP) == nil {
		c.add("public-ip", "%q is not an IP address", cfg.PublicIP)
	}
	c.metadata(cfg.Metadata)
	if s.set("log-level") && !slices.Contains([]string{"debug", "info", "warn", "error"}, cfg.LogLevel) {
		c.add("log-level", "%q is not one of debug, info, warn, error", cfg.LogLevel)
	}
	if s.set("tls-dir") {
		c.text("tls-dir", c.seen.line("tls-dir"), cfg.TLSDir)
	}
	c.store(cfg.Store)
	if s.set("units.backend") && !slices.Contains([]string{BackendAuto, BackendBuiltin, BackendSystemd}, cfg.Units.Backend) {
		c.add("units.backend", "%q is not one of auto, builtin, systemd", cfg.Units.Backend)
	}
	c.fleet(cfg.Fleet)
	return c.problems
}

func (c *checker) fleet(f Fleet) {
	if c.seen.set("fleet.ttl") && (time.Duration(f.TTL) < time.Second || time.Duration(f.TTL)%time.Second != 0) {
		c.add("fleet.ttl", "%s: want a whole number of seconds, at least 1s (etcd leases count in seconds)", f.TTL)
	}
	if c.seen.set("fleet.grace") && f.Grace < 0 {
		c.add("fleet.grace", "%s is negative", f.Grace)
	}
	if c.seen.set("fleet.listen") {
		if _, port, err := net.SplitHostPort(f.Listen); err != nil || port == "" {
			c.add("fleet.listen", "%q is not host:port", f.Listen)
		}
	}
	if c.seen.set("fleet.prefix") && (!strings.HasPrefix(f.Prefix, "/") || strings.ContainsAny(f.Prefix, " \t\n")) {
		c.add("fleet.prefix", "%q: want a key prefix starting with /", f.Prefix)
	}
}

func (c *checker) name(key, name string) {
	if !validName(name) {
		c.add(key, "%q is not a valid name: want a letter or digit, then up to 62 letters, digits, '_', '.' or '-'", name)
	}
}

// validName reports whether s matches [A-Za-z0-9][A-Za-z0-9_.-]{0,62}.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlnum(s[i]) && !strings.ContainsRune("_.-", rune(s[i])) {
			return false
		}
	}
	return true
}

// validMetadataKey reports whether s matches [A-Za-z0-9_.-]{1,63}.
func validMetadataKey(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && !strings.ContainsRune("_.-", rune(s[i])) {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// badText says what makes s unfit to be one line of text, or "".
func badText(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\u0085' || r == '\u2028' || r == '\u2029':
			return "contains a line break"
		case unicode.IsControl(r):
			return "contains a control character"
		}
	}
	return ""
}

// text checks a free-text value: not empty, one line, printable.
func (c *checker) text(key string, line int, s string) {
	if s == "" {
		c.addAt(key, line, "must not be empty")
	} else if why := badText(s); why != "" {
		c.addAt(key, line, "%q %s", s, why)
	}
}

func (c *checker) metadata(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		key := "metadata." + k
		line := c.seen.line(key)
		if !validMetadataKey(k) {
			c.addAt("metadata", line, "key %q is not valid: want 1 to 63 letters, digits, '_', '.' or '-'", k)
		}
		v := m[k]
		if why := badText(v); why != "" {
			c.addAt(key, line, "%q %s", v, why)
		} else if n := utf8.RuneCountInString(v); n > 255 {
			c.addAt(key, line, "value is %d characters long, more than 255", n)
		}
	}
}

func (c *checker) store(st Store) {
	s := c.seen
	roleOK := false
	if s.set("store.role") {
		roleOK = slices.Contains([]string{RoleMember, RoleClient, RoleAuto}, st.Role)
		if !roleOK {
			c.add("store.role", "%q is not one of member, client, auto", st.Role)
		}
	}
	if s.set("store.name") {
		c.name("store.name", st.Name)
	}
	c.ports(st)
	if s.set("store.initial-cluster") {
		c.initialCluster(st.InitialCluster)
	}
	if s.set("store.initial-cluster-token") {
		c.text("store.initial-cluster-token", s.line("store.initial-cluster-token"), st.InitialClusterToken)
	}
	if s.set("store.discovery") {
		if why := discoveryURL(st.Discovery); why != "" {
			c.add("store.discovery", "%q %s", st.Discovery, why)
		}
	}
	c.urls("store.join", st.Join)
	c.urls("store.endpoints", st.Endpoints)
	c.bootstrap()
	if roleOK {
		c.role(st.Role)
	}
	if s.set("store.snapshot-count") && st.SnapshotCount < 1 {
		c.add("store.snapshot-count", "%d is less than 1", st.SnapshotCount)
	}
	if q := st.QuotaBackendBytes; s.set("store.quota-backend-bytes") && (q < 16*mib || q > 64*gib) {
		c.add("store.quota-backend-bytes", "%s is out of range 16MiB..64GiB", q)
	}
	c.timing(st)
}

func (c *checker) ports(st Store) {
	s := c.seen
	const client, peer = "store.client-port", "store.peer-port"
	for _, p := range []struct {
		key  string
		port int
	}{{client, st.ClientPort}, {peer, st.PeerPort}} {
		if s.set(p.key) && (p.port < 1 || p.port > 65535) {
			c.add(p.key, "%d is out of range 1..65535", p.port)
		}
	}
	if s.set(client) && s.set(peer) && st.ClientPort == st.PeerPort {
		if s.line(client) > s.line(peer) {
			c.add(client, "%d is also store.peer-port%s", st.ClientPort, c.lineSuffix(peer))
		} else {
			c.add(peer, "%d is also store.client-port%s", st.PeerPort, c.lineSuffix(client))
		}
	}
}

// initialCluster checks "name=URL,name=URL": etcd's form, which it splits
// on commas without trimming spaces, so neither does this.
func (c *checker) initialCluster(list string) {
	const key = "store.initial-cluster"
	if list == "" {
		c.add(key, "must not be empty")
		return
	}
	type member struct{ name, url string }
	seenEntry := map[member]bool{}
	nameOf := map[string]string{} // URL -> the member it belongs to
	for entry := range strings.SplitSeq(list, ",") {
		if entry == "" {
			c.add(key, "%q has an empty entry", list)
			continue
		}
		name, u, ok := strings.Cut(entry, "=")
		if !ok {
			c.add(key, "entry %q is not name=URL", entry)
			continue
		}
		if !validName(name) {
			c.add(key, "member name %q is not valid: want a letter or digit, then up to 62 letters, digits, '_', '.' or '-'", name)
		}
		if why := hostPortURL(u); why != "" {
			c.add(key, "member %s: %q %s", name, u, why)
			continue
		}
		m := member{name, u}
		switch other, used := nameOf[u]; {
		case seenEntry[m]:
			c.add(key, "entry %q appears twice", entry)
		case used:
			c.add(key, "URL %q is given to both %s and %s", u, other, name)
		default:
			seenEntry[m] = true
			nameOf[u] = name
		}
	}
}

// urls checks a list of client URLs, each at the line it was given on.
func (c *checker) urls(key string, list []string) {
	if !c.seen.set(key) {
		return
	}
	for i, u := range list {
		line := c.seen.line(key)
		if l, ok := c.seen.lines[fmt.Sprintf("%s[%d]", key, i)]; ok {
			line = l
		}
		if why := hostPortURL(u); why != "" {
			c.addAt(key, line, "%q %s", u, why)
		}
	}
}

// hostPortURL says what keeps u from being http(s)://host:port, or "".
// etcd refuses a path in member URLs, and a client URL has no use for one.
func hostPortURL(u string) string {
	if why := badText(u); why != "" {
		return why
	}
	p, why := httpURL(u)
	switch {
	case why != "":
		return why
	case p.Port() == "":
		return "has no port"
	case p.User != nil:
		return "must not hold a user name or password"
	case p.Path != "" || p.RawPath != "":
		return "must not have a path"
	case p.RawQuery != "" || p.ForceQuery:
		return "must not have a query"
	case p.Fragment != "":
		return "must not have a fragment"
	}
	return ""
}

// discoveryURL says what keeps u from being a discovery token URL, or "".
func discoveryURL(u string) string {
	if why := badText(u); why != "" {
		return why
	}
	p, why := httpURL(u)
	if why != "" {
		return why
	}
	if strings.Trim(p.Path, "/") == "" {
		return "has no path; the path is the discovery token"
	}
	return ""
}

// httpURL parses an http or https URL with a host and, if it has a port, a
// port in range.
func httpURL(u string) (*url.URL, string) {
	p, err := url.Parse(u)
	if err != nil || p.Opaque != "" || (p.Scheme != "http" && p.Scheme != "https") {
		return nil, "is not an http or https URL"
	}
	if p.Hostname() == "" {
		return nil, "has no host"
	}
	if port := p.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, "has a port out of range 1..65535"
		}
	}
	return p, ""
}

// bootstrap allows at most one way to find the cluster, and reports each
// later one at its own line.
func (c *checker) bootstrap() {
	var given []string
	for _, key := range []string{"store.initial-cluster", "store.discovery", "store.join"} {
		if c.seen.present(key) {
			given = append(given, key)
		}
	}
	slices.SortStableFunc(given, func(a, b string) int { return cmp.Compare(c.seen.line(a), c.seen.line(b)) })
	for _, key := range given[min(1, len(given)):] {
		c.add(key, "cannot be combined with %s%s", given[0], c.lineSuffix(given[0]))
	}
}

func (c *checker) role(role string) {
	s := c.seen
	switch role {
	case RoleClient:
		if !s.present("store.endpoints") && !s.present("store.discovery") {
			c.add("store.role", "client needs store.endpoints or store.discovery")
		}
	case RoleAuto:
		if !s.present("store.discovery") {
			c.add("store.role", "auto needs store.discovery")
		}
	case RoleMember:
		if s.present("store.endpoints") {
			c.add("store.endpoints", "cannot be set when store.role is member%s: a member finds its peers itself", c.lineSuffix("store.role"))
		}
	}
}

func (c *checker) timing(st Store) {
	s := c.seen
	const (
		retention = "store.auto-compaction-retention"
		heartbeat = "store.heartbeat-interval"
		election  = "store.election-timeout"
	)
	hb, el := time.Duration(st.HeartbeatInterval), time.Duration(st.ElectionTimeout)
	if s.set(retention) {
		if r := time.Duration(st.AutoCompactionRetention); r <= 0 {
			c.add(retention, "%s is not positive", r)
		} else if r < time.Minute {
			c.add(retention, "%s is less than 1m", r)
		}
	}
	if s.set(heartbeat) {
		if hb <= 0 {
			c.add(heartbeat, "%s is not positive", hb)
		} else if hb < 10*time.Millisecond {
			c.add(heartbeat, "%s is less than 10ms", hb)
		}
	}
	if s.set(election) && el <= 0 {
		c.add(election, "%s is not positive", el)
	}
	// Compare only values that are known: given and readable, or absent
	// and so etcd's default.
	if s.present(heartbeat) && !s.set(heartbeat) || s.present(election) && !s.set(election) {
		return
	}
	if !s.set(heartbeat) && !s.set(election) {
		return
	}
	hbDesc := hb.String()
	if !s.set(heartbeat) {
		hb, hbDesc = etcdHeartbeat, etcdHeartbeat.String()+", etcd's default"
	}
	if !s.set(election) {
		el = etcdElection
	}
	if hb <= 0 || el <= 0 {
		return
	}
	if hb <= math.MaxInt64/5 && el >= 5*hb {
		return
	}
	if s.set(election) {
		c.add(election, "%s is less than 5 times store.heartbeat-interval (%s)", el, hbDesc)
	} else {
		c.add(heartbeat, "%s needs store.election-timeout of at least 5 times as much, more than etcd's default of %s", hb, etcdElection)
	}
}
