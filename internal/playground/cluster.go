package playground

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"atoll.dev/atoll/internal/fsutil"
	"atoll.dev/atoll/internal/pki"
)

// DefaultDir is where playground clusters live unless Options.Dir or
// $ATOLL_PLAYGROUND_DIR says otherwise.
const DefaultDir = "/var/lib/atoll-playground"

// DirEnv names the environment variable that moves the playground.
const DirEnv = "ATOLL_PLAYGROUND_DIR"

// Options are what every playground operation needs.
type Options struct {
	// Dir holds the clusters (default $ATOLL_PLAYGROUND_DIR or DefaultDir).
	Dir string
	// Binary is the atoll binary machines run (default: this executable).
	Binary string
}

func (o Options) dir() string {
	switch {
	case o.Dir != "":
		return o.Dir
	case os.Getenv(DirEnv) != "":
		return os.Getenv(DirEnv)
	}
	return DefaultDir
}

func (o Options) binary() (string, error) {
	if o.Binary != "" {
		return o.Binary, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("playground: find the atoll binary: %w", err)
	}
	return exe, nil
}

var (
	// ErrNeedRoot is returned by every operation that changes the host.
	ErrNeedRoot = errors.New("playground: needs root (it creates network namespaces, links and processes); run it with sudo")
	// ErrNotFound means no cluster of that name exists.
	ErrNotFound = errors.New("playground: no such cluster")
	// ErrExists means a cluster of that name exists already.
	ErrExists = errors.New("playground: cluster exists already")
)

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)

func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("playground: cluster name %q: want 1 to 31 lowercase letters, digits and dashes, starting with a letter or digit", name)
	}
	return nil
}

// Cluster is what a playground cluster is made of, as kept in cluster.json.
type Cluster struct {
	Name      string     `json:"name"`
	Dir       string     `json:"dir"`
	Subnet    string     `json:"subnet"`
	Gateway   string     `json:"gateway"`
	Bridge    string     `json:"bridge"`
	TLS       bool       `json:"tls"`
	Discovery *Discovery `json:"discovery,omitempty"`
	Machines  []Machine  `json:"machines"`
}

// Discovery is the discovery service a cluster bootstrapped through.
type Discovery struct {
	PID      int    `json:"pid"`
	URL      string `json:"url"`
	TokenURL string `json:"tokenURL"`
}

// Machine is one machine of a playground cluster.
type Machine struct {
	Name     string `json:"name"`
	IP       string `json:"ip"`
	NetNS    string `json:"netns"`
	HostLink string `json:"hostLink"`
	Root     string `json:"root"`
	RunDir   string `json:"runDir"`
	Log      string `json:"log"`
	// Member says the machine was configured as a store member; with
	// discovery it is known only once the cluster is up.
	Member      bool `json:"member"`
	PID         int  `json:"pid"`
	Partitioned bool `json:"partitioned"`
}

func (c *Cluster) file() string { return filepath.Join(c.Dir, "cluster.json") }

func (c *Cluster) save() error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(c.file(), append(data, '\n'), 0o644)
}

// Load reads the cluster called name.
func Load(opts Options, name string) (*Cluster, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(opts.dir(), name, "cluster.json")
	c, err := readCluster(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q (no %s)", ErrNotFound, name, path)
	}
	return c, err
}

func readCluster(path string) (*Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("playground: %w", err)
	}
	var c Cluster
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("playground: %s: %w", path, err)
	}
	return &c, nil
}

// Machine finds a machine by name (m1, m2, ...).
func (c *Cluster) Machine(name string) (*Machine, error) {
	for i := range c.Machines {
		if c.Machines[i].Name == name {
			return &c.Machines[i], nil
		}
	}
	return nil, fmt.Errorf("playground: cluster %q has no machine %q", c.Name, name)
}

func (c *Cluster) scheme() string {
	if c.TLS {
		return "https"
	}
	return "http"
}

// Endpoints are the store members' client URLs.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Machines {
		if m.Member {
			eps = append(eps, c.scheme()+"://"+net.JoinHostPort(m.IP, "2379"))
		}
	}
	return eps
}

// ClientTLS is the admin client identity, or nil without TLS.
func (c *Cluster) ClientTLS() *pki.Files {
	if !c.TLS {
		return nil
	}
	files := pki.ClientFiles(filepath.Join(c.Dir, "client"))
	return &files
}

// Names derived from the cluster name. Link names must fit in 15 bytes.
func nameHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:3])
}

func bridgeName(cluster string) string { return "atb" + nameHash(cluster) }

func hostLinkName(cluster string, index int) string {
	return "atv" + nameHash(cluster) + "m" + strconv.Itoa(index)
}

func netnsName(cluster string, index int) string {
	return "atoll-" + cluster + "-m" + strconv.Itoa(index)
}

func netnsPattern(cluster string) *regexp.Regexp {
	return regexp.MustCompile(`^atoll-` + regexp.QuoteMeta(cluster) + `-m[0-9]+$`)
}

func machineName(index int) string { return "m" + strconv.Itoa(index) }
