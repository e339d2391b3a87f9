package pod

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"atoll.dev/atoll/internal/fsutil"
)

// ManifestVersion is the version of the pod manifest format written here.
const ManifestVersion = 1

// Manifest is everything the pod's PID 1 needs to start the pod, written at
// prepare time and never changed afterwards (`atoll pod cat-manifest`).
type Manifest struct {
	Version  int       `json:"version"`
	UUID     string    `json:"uuid"`
	Name     string    `json:"name,omitempty"`
	Hostname string    `json:"hostname"`
	Created  time.Time `json:"created"`
	Apps     []App     `json:"apps"`
	Volumes  []Volume  `json:"volumes,omitempty"`
	Net      Net       `json:"net"`
	// DNS is the nameservers for the pod's /etc/resolv.conf: "host" copies
	// the host's file, "none" writes none, otherwise addresses.
	DNS      []string `json:"dns,omitempty"`
	Insecure Insecure `json:"insecure,omitempty"`
	// Resources are the pod's cgroup limits: the sum of its apps' limits,
	// since the pod shares one cgroup.
	Resources Resources `json:"resources,omitempty"`
}

// App is one application of a pod: a process tree with its own root
// filesystem (an overlay over its image's layers) and mount namespace.
type App struct {
	Name       string   `json:"name"`
	Image      ImageRef `json:"image"`
	Exec       []string `json:"exec"`
	Env        []string `json:"env"`
	User       string   `json:"user,omitempty"`
	Group      string   `json:"group,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	// Layers are the image's unpacked layers, bottom first: the overlay's
	// lower directories.
	Layers         []string  `json:"layers"`
	ReadOnlyRootfs bool      `json:"readOnlyRootfs,omitempty"`
	Caps           []string  `json:"capabilities"`
	Seccomp        string    `json:"seccomp,omitempty"`
	Mounts         []Mount   `json:"mounts,omitempty"`
	Resources      Resources `json:"resources,omitempty"`
	Stdin          string    `json:"stdin"`
	Stdout         string    `json:"stdout"`
	Stderr         string    `json:"stderr"`
	Terminal       bool      `json:"terminal,omitempty"`
}

// ImageRef names the image an app runs.
type ImageRef struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Volume is a directory given to the pod: a host directory (kind "host") or
// a fresh empty one that lives and dies with the pod (kind "empty").
type Volume struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Source   string `json:"source,omitempty"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	Mode     string `json:"mode,omitempty"`
	UID      int    `json:"uid,omitempty"`
	GID      int    `json:"gid,omitempty"`
}

// Mount places a volume at a path in an app's filesystem.
type Mount struct {
	Volume string `json:"volume"`
	Target string `json:"target"`
}

// Net says how the pod is networked.
type Net struct {
	// Mode is "host", "none" or "contained" (the pod's own namespace joined
	// to Networks).
	Mode     string   `json:"mode"`
	Networks []string `json:"networks,omitempty"`
	Ports    []Port   `json:"ports,omitempty"`
}

// Port publishes a pod port on the host.
type Port struct {
	ContainerPort uint16 `json:"containerPort"`
	HostPort      uint16 `json:"hostPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"` // "" is every address
}

// Insecure lists the protections the operator turned off.
type Insecure struct {
	Image        bool `json:"image,omitempty"`
	Capabilities bool `json:"capabilities,omitempty"`
	Paths        bool `json:"paths,omitempty"`
	Seccomp      bool `json:"seccomp,omitempty"`
}

// Resources are cgroup limits; zero means unlimited.
type Resources struct {
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// CPUMilli is the CPU limit in thousandths of a CPU (Kubernetes units).
	CPUMilli  int64 `json:"cpuMilli,omitempty"`
	PidsLimit int64 `json:"pidsLimit,omitempty"`
}

// Add returns the sum of two limits, where zero (unlimited) wins.
func (r Resources) Add(o Resources) Resources {
	sum := func(a, b int64) int64 {
		if a == 0 || b == 0 {
			return 0
		}
		return a + b
	}
	return Resources{
		MemoryBytes: sum(r.MemoryBytes, o.MemoryBytes),
		CPUMilli:    sum(r.CPUMilli, o.CPUMilli),
		PidsLimit:   sum(r.PidsLimit, o.PidsLimit),
	}
}

// App returns the app named name.
func (m *Manifest) App(name string) (*App, bool) {
	for i := range m.Apps {
		if m.Apps[i].Name == name {
			return &m.Apps[i], true
		}
	}
	return nil, false
}

// Volume returns the volume named name.
func (m *Manifest) Volume(name string) (*Volume, bool) {
	for i := range m.Volumes {
		if m.Volumes[i].Name == name {
			return &m.Volumes[i], true
		}
	}
	return nil, false
}

const manifestFile = "pod.json"

// ReadManifest reads the manifest of the pod in dir.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, fmt.Errorf("read pod manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("read pod manifest %s: %w", filepath.Join(dir, manifestFile), err)
	}
	if m.Version != ManifestVersion {
		return nil, fmt.Errorf("read pod manifest %s: version %d, want %d", filepath.Join(dir, manifestFile), m.Version, ManifestVersion)
	}
	return &m, nil
}

func writeManifest(dir string, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode pod manifest: %w", err)
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, manifestFile), append(data, '\n'), 0o600)
}
