package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fullFile = `# a member of a three-machine lab cluster
name: m1
public-ip: 10.213.1.11
metadata:
  region: lab
  disk: ssd
  cores: 8
  fast: true
log-level: info
tls-dir: /etc/atoll/tls
store:
  role: member
  name: m1-etcd
  client-port: 2379
  peer-port: 2380
  initial-cluster: "m1=https://10.0.0.1:2380,m1=https://[fd00::1]:2380,m2=https://10.0.0.2:2380"
  initial-cluster-token: atoll
  snapshot-count: 10000
  quota-backend-bytes: 2GiB
  auto-compaction-retention: 1h
  heartbeat-interval: 100ms
  election-timeout: 1s
units:
  backend: builtin
`

func fullConfig() Config {
	return Config{
		Name:     "m1",
		PublicIP: "10.213.1.11",
		Metadata: map[string]string{"region": "lab", "disk": "ssd", "cores": "8", "fast": "true"},
		LogLevel: "info",
		TLSDir:   "/etc/atoll/tls",
		Store: Store{
			Role:                    RoleMember,
			Name:                    "m1-etcd",
			ClientPort:              2379,
			PeerPort:                2380,
			InitialCluster:          "m1=https://10.0.0.1:2380,m1=https://[fd00::1]:2380,m2=https://10.0.0.2:2380",
			InitialClusterToken:     "atoll",
			SnapshotCount:           10000,
			QuotaBackendBytes:       2 << 30,
			AutoCompactionRetention: Duration(time.Hour),
			HeartbeatInterval:       Duration(100 * time.Millisecond),
			ElectionTimeout:         Duration(time.Second),
		},
		Units: Units{Backend: BackendBuiltin},
	}
}

// mustParse parses in and fails the test on an error.
func mustParse(t *testing.T, in string) (Config, []Problem) {
	t.Helper()
	cfg, warnings, err := Parse("node.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Parse(%q) error = %v, want none", in, err)
	}
	return cfg, warnings
}

// parseProblems parses in and returns the problems of its *Error.
func parseProblems(t *testing.T, in string) []Problem {
	t.Helper()
	_, _, err := Parse("node.yaml", []byte(in))
	if err == nil {
		t.Fatalf("Parse(%q) error = nil, want problems", in)
	}
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("Parse(%q) error = %T %v, want *Error", in, err, err)
	}
	return perr.Problems
}

func TestParseFull(t *testing.T) {
	got, warnings := mustParse(t, fullFile)
	if len(warnings) != 0 {
		t.Errorf("warnings = %v, want none", warnings)
	}
	if want := fullConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(full file) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "# nothing yet\n", "---\n", "~\n", "{}\n", "store:\nmetadata: {}\n"} {
		got, warnings := mustParse(t, in)
		if !reflect.DeepEqual(got, Config{}) || len(warnings) != 0 {
			t.Errorf("Parse(%q) = %+v, %v; want the zero Config and no warnings", in, got, warnings)
		}
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Config
	}{
		{"ipv6", "public-ip: \"fd00::11\"\n", Config{PublicIP: "fd00::11"}},
		{"number as name", "name: 42\n", Config{Name: "42"}},
		{"metadata null and number", "metadata:\n  a:\n  b: 1.50\n  c: '0x1'\n",
			Config{Metadata: map[string]string{"a": "", "b": "1.50", "c": "0x1"}}},
		{"join as comma string", "store: {join: 'https://a:2379, https://b:2379'}\n",
			Config{Store: Store{Join: []string{"https://a:2379", "https://b:2379"}}}},
		{"endpoints as one string", "store: {role: client, endpoints: https://a:2379}\n",
			Config{Store: Store{Role: RoleClient, Endpoints: []string{"https://a:2379"}}}},
		{"endpoints as a list", "store:\n  endpoints:\n    - https://a:2379\n    - http://b:2379\n",
			Config{Store: Store{Endpoints: []string{"https://a:2379", "http://b:2379"}}}},
		{"empty lists are absent", "store: {join: [], endpoints: ''}\n", Config{}},
		{"null is absent", "name: ~\nstore: {client-port: null}\n", Config{}},
		{"quoted port", "store: {client-port: '2379'}\n", Config{Store: Store{ClientPort: 2379}}},
		{"size in bytes", "store: {quota-backend-bytes: 16777216}\n", Config{Store: Store{QuotaBackendBytes: 16 << 20}}},
		{"size in MB", "store: {quota-backend-bytes: 100MB}\n", Config{Store: Store{QuotaBackendBytes: 100e6}}},
		{"size with space", "store: {quota-backend-bytes: 1 GiB}\n", Config{Store: Store{QuotaBackendBytes: 1 << 30}}},
		{"big snapshot count", "store: {snapshot-count: 18446744073709551615}\n", Config{Store: Store{SnapshotCount: 1<<64 - 1}}},
		{"discovery with role auto", "store: {role: auto, discovery: 'https://d.example/abc'}\n",
			Config{Store: Store{Role: RoleAuto, Discovery: "https://d.example/abc"}}},
		{"election without heartbeat", "store: {election-timeout: 500ms}\n", Config{Store: Store{ElectionTimeout: Duration(500 * time.Millisecond)}}},
		{"heartbeat without election", "store: {heartbeat-interval: 200ms}\n", Config{Store: Store{HeartbeatInterval: Duration(200 * time.Millisecond)}}},
		{"anchor and alias", "x-common: &ip 10.0.0.9\npublic-ip: *ip\n", Config{PublicIP: "10.0.0.9"}},
		{"merge key", "x-base: &base {client-port: 2379, peer-port: 2380}\nstore:\n  <<: *base\n  peer-port: 2390\n",
			Config{Store: Store{ClientPort: 2379, PeerPort: 2390}}},
		{"merge list, earlier wins", "a: &a {name: one}\nb: &b {name: two, log-level: warn}\n<<: [*a, *b]\n",
			Config{Name: "one", LogLevel: "warn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := mustParse(t, tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) =\n%+v\nwant\n%+v", tt.in, got, tt.want)
			}
		})
	}
}

// TestParseErrors holds one case per rule; each names the line and key the
// problem must carry and a part of its message.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		line    int
		key     string
		msgPart string
	}{
		// The file as a whole.
		{"syntax error", "name: m1\nstore: [\n", 2, "", "invalid YAML: "},
		{"tab indentation", "name: m1\n\tlog-level: x\n", 2, "", "invalid YAML: found a tab character"},
		{"unknown anchor", "name: *m\n", 0, "", "invalid YAML: unknown anchor 'm' referenced"},
		{"top level list", "- name: m1\n", 1, "", "the top level must be a mapping of keys to values, got a list"},
		{"top level string", "hello\n", 1, "", "got a string"},
		{"two documents", "name: a\n---\nname: b\n", 2, "", "a second YAML document"},
		{"duplicate key", "name: a\nlog-level: info\nname: b\n", 3, "name", "duplicate key (first at line 1)"},
		{"duplicate store key", "store:\n  role: member\n  role: client\n", 3, "store.role", "duplicate key (first at line 2)"},
		{"duplicate metadata key", "metadata:\n  a: 1\n  a: 2\n", 3, "metadata.a", "duplicate key (first at line 2)"},
		{"mapping as key", "? {a: 1}\n: x\n", 1, "", "a key must be a string, got a mapping"},
		{"merge of a string", "store:\n  <<: hello\n", 2, "store", "a merge key (<<) takes a mapping or a list of mappings, got a string"},

		// Types.
		{"list for a string", "name: [a, b]\n", 1, "name", "want a string, got a list"},
		{"mapping for a string", "log-level:\n  a: b\n", 1, "log-level", "want a string, got a mapping"},
		{"string for store", "store: member\n", 1, "store", "want a mapping, got a string"},
		{"list for metadata", "metadata: [a]\n", 1, "metadata", "want a mapping, got a list"},
		{"metadata value list", "metadata:\n  a: [1]\n", 2, "metadata.a", "want a string, got a list"},
		{"mapping for a port", "store:\n  client-port: {a: 1}\n", 2, "store.client-port", "want an integer, got a mapping"},
		{"mapping for join", "store:\n  join: {a: 1}\n", 2, "store.join", "want a list or a comma-separated string, got a mapping"},
		{"list in join", "store:\n  join:\n    - https://a:1\n    - [x]\n", 4, "store.join", "want a list of strings, got a list holding a list"},
		{"list for duration", "store:\n  election-timeout: [1s]\n", 2, "store.election-timeout", "want a duration, got a list"},

		// name, store.name.
		{"bad name", "name: -m1\n", 1, "name", `"-m1" is not a valid name`},
		{"empty name", "name: ''\n", 1, "name", `"" is not a valid name`},
		{"long name", "name: " + strings.Repeat("a", 64) + "\n", 1, "name", "is not a valid name"},
		{"bad store name", "store:\n  name: m 1\n", 2, "store.name", `"m 1" is not a valid name`},

		// public-ip.
		{"bad ip", "public-ip: 10.0.0\n", 1, "public-ip", `"10.0.0" is not an IP address`},
		{"host for ip", "public-ip: m1.lab\n", 1, "public-ip", `"m1.lab" is not an IP address`},

		// metadata.
		{"bad metadata key", "metadata:\n  ok: 1\n  'a b': 2\n", 3, "metadata", `key "a b" is not valid`},
		{"long metadata key", "metadata:\n  " + strings.Repeat("k", 64) + ": 1\n", 2, "metadata", "is not valid"},
		{"metadata newline", "metadata:\n  a: \"x\\ny\"\n", 2, "metadata.a", `"x\ny" contains a line break`},
		{"metadata control", "metadata:\n  a: \"x\\ty\"\n", 2, "metadata.a", "contains a control character"},
		{"metadata too long", "metadata:\n  a: " + strings.Repeat("v", 256) + "\n", 2, "metadata.a", "value is 256 characters long, more than 255"},

		// log-level, tls-dir.
		{"bad log level", "log-level: verbose\n", 1, "log-level", `"verbose" is not one of debug, info, warn, error`},
		{"upper log level", "log-level: INFO\n", 1, "log-level", `"INFO" is not one of`},
		{"empty tls dir", "tls-dir: ''\n", 1, "tls-dir", "must not be empty"},

		// store.role.
		{"bad role", "store:\n  role: leader\n", 2, "store.role", `"leader" is not one of member, client, auto`},
		{"bad units backend", "units:\n  backend: runit\n", 2, "units.backend", `"runit" is not one of auto, builtin, systemd`},
		{"client alone", "store:\n  role: client\n", 2, "store.role", "client needs store.endpoints or store.discovery"},
		{"auto alone", "store:\n  role: auto\n  endpoints: https://a:2379\n", 2, "store.role", "auto needs store.discovery"},
		{"member with endpoints", "store:\n  role: member\n  endpoints: https://a:2379\n", 3, "store.endpoints", "cannot be set when store.role is member (line 2)"},

		// Ports.
		{"port too high", "store:\n  client-port: 70000\n", 2, "store.client-port", "70000 is out of range 1..65535"},
		{"port zero", "store:\n  peer-port: 0\n", 2, "store.peer-port", "0 is out of range 1..65535"},
		{"port negative", "store:\n  peer-port: -1\n", 2, "store.peer-port", "-1 is out of range 1..65535"},
		{"port huge", "store:\n  peer-port: 99999999999999999999\n", 2, "store.peer-port", "99999999999999999999 is out of range 1..65535"},
		{"port not a number", "store:\n  client-port: http\n", 2, "store.client-port", `"http" is not an integer`},
		{"port float", "store:\n  client-port: 2379.5\n", 2, "store.client-port", `"2379.5" is not an integer`},
		{"same ports", "store:\n  client-port: 2379\n  peer-port: 2379\n", 3, "store.peer-port", "2379 is also store.client-port (line 2)"},
		{"same ports reversed", "store:\n  peer-port: 2379\n  client-port: 2379\n", 3, "store.client-port", "2379 is also store.peer-port (line 2)"},

		// initial-cluster.
		{"cluster not name=url", "store:\n  initial-cluster: https://a:2380\n", 2, "store.initial-cluster", `entry "https://a:2380" is not name=URL`},
		{"cluster bad name", "store:\n  initial-cluster: 'm 1=https://a:2380'\n", 2, "store.initial-cluster", `member name "m 1" is not valid`},
		{"cluster no port", "store:\n  initial-cluster: m1=https://a\n", 2, "store.initial-cluster", `member m1: "https://a" has no port`},
		{"cluster path", "store:\n  initial-cluster: m1=https://a:2380/x\n", 2, "store.initial-cluster", "must not have a path"},
		{"cluster scheme", "store:\n  initial-cluster: m1=unix://a:2380\n", 2, "store.initial-cluster", "is not an http or https URL"},
		{"cluster no host", "store:\n  initial-cluster: m1=https://:2380\n", 2, "store.initial-cluster", "has no host"},
		{"cluster empty entry", "store:\n  initial-cluster: m1=https://a:2380,\n", 2, "store.initial-cluster", "has an empty entry"},
		{"cluster same entry twice", "store:\n  initial-cluster: m1=https://a:2380,m1=https://a:2380\n", 2, "store.initial-cluster", `entry "m1=https://a:2380" appears twice`},
		{"cluster url for two names", "store:\n  initial-cluster: m1=https://a:2380,m2=https://a:2380\n", 2, "store.initial-cluster", `URL "https://a:2380" is given to both m1 and m2`},
		{"cluster empty", "store:\n  initial-cluster: ''\n", 2, "store.initial-cluster", "must not be empty"},

		// discovery.
		{"discovery no token", "store:\n  discovery: http://10.0.0.254:7001/\n", 2, "store.discovery", "has no path"},
		{"discovery scheme", "store:\n  discovery: etcd://d/abc\n", 2, "store.discovery", "is not an http or https URL"},
		{"discovery port", "store:\n  discovery: http://d:0/abc\n", 2, "store.discovery", "has a port out of range 1..65535"},

		// join and endpoints, each entry at its own line.
		{"join no port", "store:\n  join:\n    - https://a:2379\n    - https://b\n", 4, "store.join", `"https://b" has no port`},
		{"join string entry", "store:\n  join: 'https://a:2379,ftp://b:21'\n", 2, "store.join", `"ftp://b:21" is not an http or https URL`},
		{"join empty entry", "store:\n  join: 'https://a:2379,,https://b:2379'\n", 2, "store.join", "has an empty entry"},
		{"endpoints bad port", "store:\n  endpoints: [https://a:2379, https://b:99999]\n", 2, "store.endpoints", "has a port out of range"},
		{"endpoints query", "store:\n  endpoints:\n  - https://a:2379?x=1\n", 3, "store.endpoints", "must not have a query"},

		// At most one way to find the cluster, reported at the later key.
		{"cluster and join", "name: m1\nstore:\n  role: member\n  initial-cluster: m1=https://a:2380\n  join: [https://b:2379]\n", 5, "store.join", "cannot be combined with store.initial-cluster (line 4)"},
		{"join then discovery", "store:\n  join: https://b:2379\n  discovery: http://d/t\n", 3, "store.discovery", "cannot be combined with store.join (line 2)"},

		// Counts and sizes.
		{"snapshot zero", "store:\n  snapshot-count: 0\n", 2, "store.snapshot-count", "0 is less than 1"},
		{"snapshot negative", "store:\n  snapshot-count: -5\n", 2, "store.snapshot-count", "-5 is less than 1"},
		{"snapshot too large", "store:\n  snapshot-count: 18446744073709551616\n", 2, "store.snapshot-count", "18446744073709551616 is too large"},
		{"quota too small", "store:\n  quota-backend-bytes: 1MiB\n", 2, "store.quota-backend-bytes", "1MiB is out of range 16MiB..64GiB"},
		{"quota too large", "store:\n  quota-backend-bytes: 65GiB\n", 2, "store.quota-backend-bytes", "65GiB is out of range 16MiB..64GiB"},
		{"quota zero", "store:\n  quota-backend-bytes: 0\n", 2, "store.quota-backend-bytes", "0 is out of range 16MiB..64GiB"},
		{"quota unit", "store:\n  quota-backend-bytes: 2TB\n", 2, "store.quota-backend-bytes", `unknown unit "TB"`},
		{"quota not a size", "store:\n  quota-backend-bytes: lots\n", 2, "store.quota-backend-bytes", `"lots" is not a size`},
		{"quota overflow", "store:\n  quota-backend-bytes: 9999999999999GiB\n", 2, "store.quota-backend-bytes", "is too large a size"},

		// Durations.
		{"duration no unit", "store:\n  heartbeat-interval: 100\n", 2, "store.heartbeat-interval", `"100" is not a duration`},
		{"duration zero", "store:\n  heartbeat-interval: 0s\n", 2, "store.heartbeat-interval", "0s is not positive"},
		{"duration negative", "store:\n  election-timeout: -1s\n", 2, "store.election-timeout", "-1s is not positive"},
		{"heartbeat too short", "store:\n  heartbeat-interval: 5ms\n  election-timeout: 100ms\n", 2, "store.heartbeat-interval", "5ms is less than 10ms"},
		{"election too short", "store:\n  heartbeat-interval: 100ms\n  election-timeout: 400ms\n", 3, "store.election-timeout", "400ms is less than 5 times store.heartbeat-interval (100ms)"},
		{"election under default heartbeat", "store:\n  election-timeout: 300ms\n", 2, "store.election-timeout", "300ms is less than 5 times store.heartbeat-interval (100ms, etcd's default)"},
		{"heartbeat over default election", "store:\n  heartbeat-interval: 300ms\n", 2, "store.heartbeat-interval", "300ms needs store.election-timeout of at least 5 times as much"},
		{"retention too short", "store:\n  auto-compaction-retention: 30s\n", 2, "store.auto-compaction-retention", "30s is less than 1m"},
		{"retention zero", "store:\n  auto-compaction-retention: 0h\n", 2, "store.auto-compaction-retention", "0s is not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := parseProblems(t, tt.in)
			for _, p := range problems {
				if p.Line == tt.line && p.Key == tt.key && strings.Contains(p.Msg, tt.msgPart) {
					if p.File != "node.yaml" {
						t.Errorf("problem File = %q, want %q", p.File, "node.yaml")
					}
					return
				}
			}
			t.Errorf("Parse(%q) problems =\n%s\nwant one at line %d, key %q, with message containing %q",
				tt.in, (&Error{Problems: problems}).Error(), tt.line, tt.key, tt.msgPart)
		})
	}
}

// TestParseErrorsExactly pins the full text of a few problems, so that the
// messages users see do not drift.
func TestParseErrorsExactly(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"store:\n  role: leader\n", `node.yaml:2: store.role: "leader" is not one of member, client, auto`},
		{"store:\n  client-port: 70000\n", "node.yaml:2: store.client-port: 70000 is out of range 1..65535"},
		{"store:\n  role: member\n  initial-cluster: m1=https://a:2380\n  join: [https://b:2379]\n",
			"node.yaml:4: store.join: cannot be combined with store.initial-cluster (line 3)"},
		{"name:\n  a: 1\n", "node.yaml:1: name: want a string, got a mapping"},
	}
	for _, tt := range tests {
		_, _, err := Parse("node.yaml", []byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q) error = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestParseReportsEveryError(t *testing.T) {
	in := `name: "bad name"
public-ip: nowhere
log-level: loud
store:
  role: client
  client-port: 0
  peer-port: 65536
  snapshot-count: 0
  heartbeat-interval: soon
  bogus: 1
`
	type at struct {
		line int
		key  string
	}
	want := []at{
		{1, "name"},
		{2, "public-ip"},
		{3, "log-level"},
		{5, "store.role"},
		{6, "store.client-port"},
		{7, "store.peer-port"},
		{8, "store.snapshot-count"},
		{9, "store.heartbeat-interval"},
	}
	cfg, warnings, err := Parse("node.yaml", []byte(in))
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("Parse error = %v, want *Error", err)
	}
	var got []at
	for _, p := range perr.Problems {
		got = append(got, at{p.Line, p.Key})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems at %v, want %v; all:\n%v", got, want, err)
	}
	if !reflect.DeepEqual(cfg, Config{}) {
		t.Errorf("Config of a refused file = %+v, want zero", cfg)
	}
	if len(warnings) != 1 || warnings[0].Line != 10 {
		t.Errorf("warnings = %v, want one at line 10", warnings)
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != len(want) {
		t.Errorf("Error() has %d lines, want %d:\n%v", lines, len(want), err)
	}
}

func TestUnknownKeysWarn(t *testing.T) {
	in := `nmae: m1
public_ip: 10.0.0.1
colour: blue
store:
  rle: member
  peer-prot: 2380
  x: 1
`
	want := []Problem{
		{File: "node.yaml", Line: 1, Key: "", Msg: `unknown key "nmae" (did you mean "name"?)`},
		{File: "node.yaml", Line: 2, Key: "", Msg: `unknown key "public_ip" (did you mean "public-ip"?)`},
		{File: "node.yaml", Line: 3, Key: "", Msg: `unknown key "colour"`},
		{File: "node.yaml", Line: 5, Key: "store", Msg: `unknown key "rle" (did you mean "role"?)`},
		{File: "node.yaml", Line: 6, Key: "store", Msg: `unknown key "peer-prot" (did you mean "peer-port"?)`},
		{File: "node.yaml", Line: 7, Key: "store", Msg: `unknown key "x"`},
	}
	cfg, got := mustParse(t, in)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings =\n%v\nwant\n%v", got, want)
	}
	if !reflect.DeepEqual(cfg, Config{}) {
		t.Errorf("Config = %+v, want zero (unknown keys are ignored)", cfg)
	}
	if s, want := got[0].String(), `node.yaml:1: unknown key "nmae" (did you mean "name"?)`; s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
}

func TestSuggestNeedsOneClosest(t *testing.T) {
	tests := []struct {
		key    string
		known  []string
		want   string
		wantOK bool
	}{
		{"nmae", topKeys(), "name", true},
		{"Name", topKeys(), "name", true},
		{"tlsdir", topKeys(), "tls-dir", true},
		{"colour", topKeys(), "", false},
		{"ab", []string{"aa", "bb"}, "", false}, // two at distance 1
		{"abc", []string{"abd", "xyz"}, "abd", true},
	}
	for _, tt := range tests {
		got, ok := suggest(tt.key, tt.known)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("suggest(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "node.yaml", Line: 7, Key: "store.role", Msg: "bad"}, "node.yaml:7: store.role: bad"},
		{Problem{File: "node.yaml", Key: "store.role", Msg: "bad"}, "node.yaml: store.role: bad"},
		{Problem{File: "node.yaml", Line: 3, Msg: "bad"}, "node.yaml:3: bad"},
		{Problem{Key: "name", Msg: "bad"}, "name: bad"},
		{Problem{Line: 2, Msg: "bad"}, "line 2: bad"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := Validate(Config{}); err != nil {
		t.Errorf("Validate(zero) = %v, want nil", err)
	}
	if err := Validate(fullConfig()); err != nil {
		t.Errorf("Validate(full) = %v, want nil", err)
	}
	cfg := Config{
		Name: "m1",
		Store: Store{
			Role:           RoleClient,
			ClientPort:     70000,
			InitialCluster: "m1=https://a:2380",
			Join:           []string{"https://b:2379"},
			Endpoints:      []string{"https://c"},
		},
	}
	err := Validate(cfg)
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("Validate error = %v, want *Error", err)
	}
	want := []Problem{
		{Key: "store.client-port", Msg: "70000 is out of range 1..65535"},
		{Key: "store.endpoints", Msg: `"https://c" has no port`},
		{Key: "store.join", Msg: "cannot be combined with store.initial-cluster"},
	}
	if !reflect.DeepEqual(perr.Problems, want) {
		t.Errorf("Validate problems =\n%v\nwant\n%v", perr.Problems, want)
	}
}

// TestValidateMatchesParse checks that a rule gives the same message from
// a file and from code, the file's only adding the line.
func TestValidateMatchesParse(t *testing.T) {
	tests := []struct {
		in  string
		cfg Config
	}{
		{"store:\n  role: leader\n", Config{Store: Store{Role: "leader"}}},
		{"store:\n  quota-backend-bytes: 1MiB\n", Config{Store: Store{QuotaBackendBytes: 1 << 20}}},
		{"store:\n  election-timeout: 300ms\n", Config{Store: Store{ElectionTimeout: Duration(300 * time.Millisecond)}}},
		{"metadata:\n  'a b': x\n", Config{Metadata: map[string]string{"a b": "x"}}},
		{"store:\n  role: member\n  endpoints: https://a:1\n", Config{Store: Store{Role: RoleMember, Endpoints: []string{"https://a:1"}}}},
	}
	for _, tt := range tests {
		fromFile := parseProblems(t, tt.in)
		var perr *Error
		if err := Validate(tt.cfg); !errors.As(err, &perr) {
			t.Errorf("Validate(%+v) = %v, want *Error", tt.cfg, err)
			continue
		}
		if len(fromFile) != len(perr.Problems) {
			t.Errorf("%q: Parse gave %v, Validate gave %v; want the same problems", tt.in, fromFile, perr.Problems)
			continue
		}
		for i, p := range perr.Problems {
			f := fromFile[i]
			if p.Line != 0 || p.Key != f.Key || !strings.HasPrefix(f.Msg, strings.TrimSuffix(p.Msg, ": a member finds its peers itself")) {
				t.Errorf("%q: Validate problem %+v, want Line 0 and the Key and Msg of Parse's %+v", tt.in, p, f)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	configs := []Config{
		{},
		fullConfig(),
		{Name: "c1", Metadata: map[string]string{"true": "yes", "n": "1", "empty": "", "space": " x ", "hash": "a #b", "quote": `"q'`}},
		{Store: Store{Role: RoleClient, Endpoints: []string{"https://a:2379", "http://[::1]:2379"}}},
		{Store: Store{Role: RoleAuto, Discovery: "https://discovery.example/0123abcd?size=3", QuotaBackendBytes: 100e6 + 1}},
		{Store: Store{Join: []string{"https://a:2379"}, SnapshotCount: 1<<64 - 1, HeartbeatInterval: Duration(10 * time.Millisecond), ElectionTimeout: Duration(time.Hour + 1)}},
	}
	for _, cfg := range configs {
		data, err := Marshal(cfg)
		if err != nil {
			t.Errorf("Marshal(%+v) error = %v", cfg, err)
			continue
		}
		got, warnings, err := Parse("out.yaml", data)
		if err != nil || len(warnings) != 0 {
			t.Errorf("Parse(Marshal(%+v)) = %v, %v; want no error or warnings; YAML:\n%s", cfg, warnings, err, data)
			continue
		}
		if !reflect.DeepEqual(got, cfg) {
			t.Errorf("Parse(Marshal(cfg)) =\n%+v\nwant\n%+v\nYAML:\n%s", got, cfg, data)
		}
	}
}

func TestMarshalWritesPlainValues(t *testing.T) {
	data, err := Marshal(Config{Store: Store{QuotaBackendBytes: 2 << 30, ElectionTimeout: Duration(1500 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	want := "store:\n  quota-backend-bytes: 2147483648\n  election-timeout: 1.5s\n"
	if string(data) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", data, want)
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	_, err := Marshal(Config{LogLevel: "loud"})
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("Marshal(invalid) error = %v, want one wrapping *Error", err)
	}
	if len(perr.Problems) != 1 || perr.Problems[0].Key != "log-level" {
		t.Errorf("problems = %v, want one about log-level", perr.Problems)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(path, []byte(fullFile), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _, err := Load(path)
	if err != nil {
		t.Fatalf("Load error = %v", err)
	}
	if !reflect.DeepEqual(got, fullConfig()) {
		t.Errorf("Load = %+v, want %+v", got, fullConfig())
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("store:\n  role: leader\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":2: store.role:") {
		t.Errorf("Load(bad) error = %v, want one starting %q", err, bad+":2: store.role:")
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.yaml")
	_, _, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want one wrapping fs.ErrNotExist", err)
	}
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(missing) error = %v, want it to name %s", err, path)
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		text string
		want Size
		str  string
	}{
		{"0", 0, "0"},
		{"1000", 1000, "1000"},
		{"1024", 1024, "1KiB"},
		{"2KB", 2000, "2000"},
		{"3MB", 3e6, "3000000"},
		{"1GB", 1e9, "1000000000"},
		{"16MiB", 16 << 20, "16MiB"},
		{"2 GiB", 2 << 30, "2GiB"},
		{"7B", 7, "7"},
	}
	for _, tt := range tests {
		var got Size
		if err := got.Set(tt.text); err != nil || got != tt.want {
			t.Errorf("Set(%q) = %d, %v; want %d", tt.text, got, err, tt.want)
		}
		if s := tt.want.String(); s != tt.str {
			t.Errorf("Size(%d).String() = %q, want %q", tt.want, s, tt.str)
		}
	}
	for _, text := range []string{"", "GiB", "-1", "1.5GiB", "2gib", "1TiB", "0x10"} {
		var got Size
		if err := got.Set(text); err == nil {
			t.Errorf("Set(%q) = %d, nil; want an error", text, got)
		}
	}
}

func TestDuration(t *testing.T) {
	var d Duration
	if err := d.Set("1m30s"); err != nil || d != Duration(90*time.Second) {
		t.Errorf("Set(1m30s) = %v, %v; want 1m30s", d, err)
	}
	if err := d.Set("90"); err == nil {
		t.Errorf("Set(90) = nil error, want one (no unit)")
	}
	if s := Duration(1500 * time.Millisecond).String(); s != "1.5s" {
		t.Errorf("String() = %q, want 1.5s", s)
	}
}

func TestMergeCannotLoop(t *testing.T) {
	// An anchor merged into itself, and a fan-out of aliases: both must be
	// refused quickly rather than followed.
	ins := []string{
		"store: &s\n  <<: *s\n",
		"a: &a {x: 1, y: 2}\nb: &b {<<: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]}\nc: &c {<<: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]}\nd: &d {<<: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]}\ne: &e {<<: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]}\nstore: {<<: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]}\n",
	}
	for _, in := range ins {
		_, _, err := Parse("node.yaml", []byte(in))
		if err == nil {
			t.Errorf("Parse(%q) error = nil, want a refusal", in)
		}
	}
}

func TestFleetSection(t *testing.T) {
	cfg, warnings, err := Parse("node.yaml", []byte("fleet:\n  engine: no\n  ttl: 5s\n  grace: 2s\n  listen: 0.0.0.0:49153\n  prefix: /x/fleet/\n  bogus: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Fleet.Engine == nil || *cfg.Fleet.Engine || cfg.Fleet.Agent != nil || cfg.Fleet.TTL.String() != "5s" ||
		cfg.Fleet.Grace.String() != "2s" || cfg.Fleet.Listen != "0.0.0.0:49153" || cfg.Fleet.Prefix != "/x/fleet/" {
		t.Fatalf("fleet %+v", cfg.Fleet)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0].String(), "bogus") {
		t.Fatalf("warnings %v", warnings)
	}
	_, _, err = Parse("node.yaml", []byte("fleet:\n  engine: maybe\n  ttl: 1500ms\n  listen: nowhere\n"))
	for _, want := range []string{`node.yaml:2: fleet.engine: "maybe" is not true or false`, "node.yaml:3: fleet.ttl", `node.yaml:4: fleet.listen: "nowhere" is not host:port`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
}
