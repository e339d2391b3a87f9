package node

import (
	"path/filepath"

	"atoll.dev/atoll/api"
)

// Paths derives every file the daemon touches from --root and --run-dir, so
// that many machines can share one host (the playground).
type Paths struct {
	Root   string
	RunDir string
}

// ConfigFile is where provisioning writes the node config.
func (p Paths) ConfigFile() string { return filepath.Join(p.root(), "etc", "atoll", "node.yaml") }

// DefaultTLSDir is where the machine's certificates live unless the config
// names another directory.
func (p Paths) DefaultTLSDir() string { return filepath.Join(p.root(), "etc", "atoll", "tls") }

// StateDir holds everything the machine keeps across restarts.
func (p Paths) StateDir() string { return filepath.Join(p.root(), "var", "lib", "atoll") }

// StoreDir is the embedded etcd member's data directory.
func (p Paths) StoreDir() string { return filepath.Join(p.StateDir(), "store") }

// StoreRoleFile records a store role decided at run time (by discovery, or
// by leaving the cluster), which outlives the config's bootstrap settings.
func (p Paths) StoreRoleFile() string { return filepath.Join(p.StateDir(), "store-role.json") }

// LockFile is held by the running daemon, so that a second daemon on the
// same root is refused instead of sharing its store.
func (p Paths) LockFile() string { return filepath.Join(p.StateDir(), "lock") }

// MachineIDFile holds the machine's ID.
func (p Paths) MachineIDFile() string { return filepath.Join(p.StateDir(), "machine-id") }

// ConfigDir is the directory of the machine's configuration: node.yaml,
// tls/, and the runtime's net.d/ and trustedkeys/.
func (p Paths) ConfigDir() string { return filepath.Join(p.root(), "etc", "atoll") }

// RunDirPath is the run directory: the socket, network allocations, and
// whatever else dies with the host.
func (p Paths) RunDirPath() string { return p.runDir() }

// Socket is the local API's unix socket.
func (p Paths) Socket() string { return filepath.Join(p.runDir(), api.SocketName) }

func (p Paths) root() string {
	if p.Root == "" {
		return "/"
	}
	return p.Root
}

func (p Paths) runDir() string {
	if p.RunDir == "" {
		return api.DefaultRunDir
	}
	return p.RunDir
}
