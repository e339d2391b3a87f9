package runtime

import (
	"fmt"
	"os"
	"path/filepath"

	"atoll.dev/atoll/internal/runtime/image"
	"atoll.dev/atoll/internal/runtime/network"
	"atoll.dev/atoll/internal/runtime/pod"
	"atoll.dev/atoll/internal/runtime/trust"
)

// Options says where the runtime keeps its state; every path derives from
// the node's --root, --run-dir and config directory so that many machines
// share one host in the playground.
type Options struct {
	// StateDir holds pods/ and images/ (/var/lib/atoll).
	StateDir string
	// RunDir holds network allocations, which die with the host (/run/atoll).
	RunDir string
	// ConfigDir holds net.d/ (CNI configs) and trustedkeys/ (/etc/atoll).
	ConfigDir string
	// CNIPluginDirs are searched for CNI plugins; empty means the usual
	// places (/usr/lib/cni, /opt/cni/bin).
	CNIPluginDirs []string
	// DefaultNetwork overrides the built-in default network's bridge and
	// subnet; zero fields keep the defaults.
	DefaultNetwork network.DefaultNetwork
}

// Runtime is atoll's container runtime on one machine. It holds no
// process-wide state: any number of processes may use the same directories
// at once.
type Runtime struct {
	opts   Options
	Pods   pod.Store
	Images *image.Store
	Trust  trust.Store
	Net    network.Config
}

// Open opens the runtime's directories, creating them as needed.
func Open(o Options) (*Runtime, error) {
	if o.StateDir == "" || o.RunDir == "" || o.ConfigDir == "" {
		return nil, fmt.Errorf("runtime: state, run and config directories are all needed")
	}
	images, err := image.Open(filepath.Join(o.StateDir, "images"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.StateDir, "pods"), 0o711); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	def := network.DefaultNetwork{Bridge: "atoll0", Subnet: "172.16.28.0/24", IPMasq: true}
	if o.DefaultNetwork.Bridge != "" {
		def.Bridge = o.DefaultNetwork.Bridge
	}
	if o.DefaultNetwork.Subnet != "" {
		def.Subnet = o.DefaultNetwork.Subnet
		def.IPMasq = o.DefaultNetwork.IPMasq
	}
	return &Runtime{
		opts:   o,
		Pods:   pod.Store{Dir: filepath.Join(o.StateDir, "pods")},
		Images: images,
		Trust:  trust.Store{Dir: filepath.Join(o.ConfigDir, "trustedkeys")},
		Net: network.Config{
			ConfDir:    filepath.Join(o.ConfigDir, "net.d"),
			PluginDirs: o.CNIPluginDirs,
			StateDir:   filepath.Join(o.RunDir, "net"),
			Default:    def,
		},
	}, nil
}
