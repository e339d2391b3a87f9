// Package config holds the node config of atoll: the types of
// /etc/atoll/node.yaml, the file every machine's `atoll node` daemon starts
// from, and the functions that read, check and write it.
//
// The file is YAML. Every key is optional and an empty file is valid:
//
//	name: m1                      # machine name
//	public-ip: 10.213.1.11        # IPv4 or IPv6 address
//	metadata:                     # free key/value pairs for scheduling
//	  region: lab
//	log-level: info               # debug, info, warn or error
//	tls-dir: /etc/atoll/tls       # holds ca.crt, node.crt, node.key
//	store:
//	  role: member                # member, client or auto
//	  name: m1                    # etcd member name, when not the machine name
//	  client-port: 2379
//	  peer-port: 2380
//	  initial-cluster: "m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380"
//	  initial-cluster-token: atoll
//	  discovery: http://10.0.0.254:7001/3f9a0c   # token URL
//	  join: [https://10.0.0.1:2379]              # or "url,url"
//	  endpoints: [https://10.0.0.1:2379]         # or "url,url"
//	  snapshot-count: 10000
//	  quota-backend-bytes: 2GiB   # bytes, or a number with B, KB, MB, GB, KiB, MiB, GiB
//	  auto-compaction-retention: 1h
//	  heartbeat-interval: 100ms
//	  election-timeout: 1s
//	units:
//	  backend: auto               # auto, builtin or systemd
//	fleet:
//	  engine: true                # a candidate for the fleet engine
//	  agent: true                 # run the units fleet schedules here
//	  ttl: 30s                    # the agent's lease: a dead machine's units move after it
//	  grace: 0s                   # a cut-off machine stops its units this long after its lease
//	  listen: 0.0.0.0:49153       # fleet's API and peer journal reads on TCP (TLS with tls-dir)
//	  prefix: /atoll/fleet/       # where fleet's registry lives in the store
//
// A null value, an empty list and an empty mapping count as absent. Numbers
// and booleans are taken as their text where a string is wanted. Comments,
// anchors, aliases and merge keys (<<) work as YAML defines them.
//
// Reading is lenient about keys and strict about values. A key this package
// does not know is a warning, with a suggestion when it looks like a typo,
// so that a newer file still starts an older daemon. A bad value, a value of
// the wrong type, a YAML syntax error, a duplicate key or a top level that is
// not a mapping refuses the whole file with an *Error that lists every such
// problem with its line, not only the first.
//
// Defaults are not applied here: a key that is absent stays at its zero
// value, and the daemon decides what that means. This package only reads,
// checks and writes. Checking is one pure function of the Config and of
// where its keys were written: Parse runs it with the lines of the file,
// Validate with none, so that a file and a Config built in code obey the
// same rules and get the same messages.
//
// It imports only gopkg.in/yaml.v3 and the standard library; it must not
// import anything from atoll, so that every part can depend on it.
package config

import (
	"fmt"
	"strings"
	"time"
)

// Config is the content of a node config file. The zero value is a valid,
// empty config.
type Config struct {
	// Name is the machine's name: [A-Za-z0-9][A-Za-z0-9_.-]{0,62}.
	Name string `yaml:"name,omitempty"`
	// PublicIP is the address other machines reach this one on.
	PublicIP string `yaml:"public-ip,omitempty"`
	// Metadata are free key/value pairs that units are scheduled by.
	Metadata map[string]string `yaml:"metadata,omitempty"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log-level,omitempty"`
	// TLSDir is the directory holding ca.crt, node.crt and node.key.
	TLSDir string `yaml:"tls-dir,omitempty"`
	// Store says how this machine takes part in the cluster store.
	Store Store `yaml:"store,omitempty"`
	// Units configures the machine's service manager.
	Units Units `yaml:"units,omitempty"`
	// Fleet configures the machine's part in cluster-wide scheduling.
	Fleet Fleet `yaml:"fleet,omitempty"`
}

// Fleet configures the fleet engine and agent of a machine.
type Fleet struct {
	// Engine and Agent turn the engine candidate and the agent on or off
	// (nil means on).
	Engine *bool `yaml:"engine,omitempty"`
	Agent  *bool `yaml:"agent,omitempty"`
	// TTL is the agent's lease (default 30s).
	TTL Duration `yaml:"ttl,omitempty"`
	// Grace is how long a machine that lost its lease keeps running its
	// units (default 0).
	Grace Duration `yaml:"grace,omitempty"`
	// Listen is a TCP address for fleet's API; empty serves it on the
	// local socket only.
	Listen string `yaml:"listen,omitempty"`
	// Prefix is where the registry lives in the store.
	Prefix string `yaml:"prefix,omitempty"`
}

// Units configures the service manager that runs the machine's units.
type Units struct {
	// Backend is BackendAuto (the default when empty), BackendBuiltin or
	// BackendSystemd.
	Backend string `yaml:"backend,omitempty"`
}

// The service manager backends.
const (
	// BackendAuto is systemd where systemd is PID 1, builtin elsewhere.
	BackendAuto = "auto"
	// BackendBuiltin is atoll's own supervisor.
	BackendBuiltin = "builtin"
	// BackendSystemd is systemd over D-Bus.
	BackendSystemd = "systemd"
)

// Store configures the machine's part in the cluster's etcd: a member runs
// an embedded etcd server, a client only talks to the members.
type Store struct {
	// Role is RoleMember, RoleClient or RoleAuto.
	Role string `yaml:"role,omitempty"`
	// Name overrides the etcd member name, which is otherwise the machine's.
	Name                string `yaml:"name,omitempty"`
	ClientPort          int    `yaml:"client-port,omitempty"`
	PeerPort            int    `yaml:"peer-port,omitempty"`
	InitialCluster      string `yaml:"initial-cluster,omitempty"`
	InitialClusterToken string `yaml:"initial-cluster-token,omitempty"`
	// Discovery is a discovery token URL.
	Discovery string `yaml:"discovery,omitempty"`
	// Join lists client URLs of a running cluster to join as a new member.
	Join []string `yaml:"join,omitempty"`
	// Endpoints lists the members' client URLs, for a client.
	Endpoints               []string `yaml:"endpoints,omitempty"`
	SnapshotCount           uint64   `yaml:"snapshot-count,omitempty"`
	QuotaBackendBytes       Size     `yaml:"quota-backend-bytes,omitempty"`
	AutoCompactionRetention Duration `yaml:"auto-compaction-retention,omitempty"`
	HeartbeatInterval       Duration `yaml:"heartbeat-interval,omitempty"`
	ElectionTimeout         Duration `yaml:"election-timeout,omitempty"`
}

// The store roles.
const (
	// RoleMember runs an etcd member on this machine.
	RoleMember = "member"
	// RoleClient only uses the members.
	RoleClient = "client"
	// RoleAuto lets discovery decide between member and client.
	RoleAuto = "auto"
)

// Problem is one finding about a config file.
type Problem struct {
	// File is the name the file was given to Parse under; empty for Validate.
	File string
	// Line is 1-based; 0 when unknown or when the config was built in code.
	Line int
	// Key is the dotted path of the key, such as "store.role"; empty when
	// the problem is about the file as a whole.
	Key string
	Msg string
}

// String formats p as "file:line: key: message", leaving out the parts that
// are empty or zero.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.File != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
	case p.File != "":
		b.WriteString(p.File + ": ")
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is what Parse and Validate return when a config is refused: every
// error-level Problem, not just the first.
type Error struct {
	Problems []Problem
}

// Error joins the problems' String()s with newlines.
func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return "invalid node config"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Duration is a time.Duration written in the file as a Go duration string
// such as "100ms" or "1h".
type Duration time.Duration

// String returns the Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// Set parses a Go duration string, so that *Duration is a flag.Value.
func (d *Duration) Set(text string) error {
	v, err := parseDuration(text)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Size is a number of bytes. In a file it is an integer or a number with a
// unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
type Size int64

const (
	kib Size = 1 << 10
	mib Size = 1 << 20
	gib Size = 1 << 30
)

// String returns the size with the largest binary unit that divides it
// exactly, such as "2GiB", or plain bytes.
func (s Size) String() string {
	switch {
	case s == 0:
		return "0"
	case s%gib == 0:
		return fmt.Sprintf("%dGiB", s/gib)
	case s%mib == 0:
		return fmt.Sprintf("%dMiB", s/mib)
	case s%kib == 0:
		return fmt.Sprintf("%dKiB", s/kib)
	}
	return fmt.Sprintf("%d", int64(s))
}

// Set parses a size, so that *Size is a flag.Value.
func (s *Size) Set(text string) error {
	v, err := parseSize(text)
	if err != nil {
		return err
	}
	*s = v
	return nil
}
