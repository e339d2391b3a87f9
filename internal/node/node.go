package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"reflect"
	"sync"
	"syscall"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/internal/node/config"
	"atoll.dev/atoll/internal/pki"
	"atoll.dev/atoll/internal/version"
)

// Options says where the daemon lives and how its config is layered.
type Options struct {
	Paths Paths
	// ConfigFile is the node config; empty means Paths.ConfigFile(), which
	// may be missing (all defaults). A named file must exist.
	ConfigFile string
	// Override applies command-line settings on top of the file, at start
	// and on every reload.
	Override func(*config.Config)
	// LogOutput receives the daemon's logs, etcd's included (stderr when
	// nil).
	LogOutput io.Writer
}

// System is one running daemon: its identity, its config and its parts.
type System struct {
	opts      Options
	paths     Paths
	log       *slog.Logger
	logLevel  *slog.LevelVar
	machineID string
	identity  identity

	mu  sync.Mutex
	cfg config.Config

	sup   *supervisor
	store *storePart
	api   *apiPart
	units *units
	fleet *fleetPart

	startupOnce sync.Once
	stateLock   *os.File
}

// Start loads the config, establishes the machine's identity and starts
// every part. It returns once the parts are launched; the store may still
// be forming. On error nothing is left running.
func Start(ctx context.Context, opts Options) (*System, error) {
	logLevel := new(slog.LevelVar)
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	sys := &System{
		opts:     opts,
		paths:    opts.Paths,
		logLevel: logLevel,
		log:      slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: logLevel})),
	}
	cfg, err := sys.loadConfig()
	if err != nil {
		return nil, err
	}
	sys.applyLiveSettings(cfg)
	sys.cfg = cfg

	if err := os.MkdirAll(sys.paths.StateDir(), 0o755); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := os.MkdirAll(sys.paths.runDir(), 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	if sys.stateLock, err = lockStateDir(sys.paths.LockFile()); err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			sys.stateLock.Close()
		}
	}()
	if sys.machineID, err = loadOrCreateMachineID(sys.paths.MachineIDFile()); err != nil {
		return nil, err
	}
	if sys.identity, err = resolveIdentity(sys.paths, cfg); err != nil {
		return nil, err
	}
	if sys.cfg.Name == "" {
		sys.cfg.Name = sys.identity.name
	}

	if sys.units, err = openUnits(ctx, sys.paths, sys.cfg.Units, sys.machineID, sys.cfg.Name); err != nil {
		return nil, err
	}
	defer func() {
		if !started {
			sys.units.close()
		}
	}()
	sys.sup = newSupervisor(sys.log)
	sys.store = newStorePart(sys)
	sys.api, err = listenAPI(sys)
	if err != nil {
		return nil, err
	}
	started = true
	sys.sup.start(ctx, sys.store)
	sys.sup.start(ctx, sys.api)
	sys.fleet = &fleetPart{sys: sys}
	sys.sup.start(ctx, sys.fleet)
	if sys.cfg.Fleet.Listen != "" {
		sys.sup.start(ctx, &fleetListenPart{sys: sys, handler: sys.fleetAPI()})
	}
	sys.log.Info("atoll node started", "version", version.Version, "machine", sys.machineID,
		"name", sys.cfg.Name, "ip", sys.identity.publicIP.String(), "tls", sys.identity.tls != nil, "units", sys.units.backend)
	return sys, nil
}

func (s *System) loadConfig() (config.Config, error) {
	path := s.opts.ConfigFile
	explicit := path != ""
	if !explicit {
		path = s.paths.ConfigFile()
	}
	cfg, warnings, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		cfg, warnings, err = config.Config{}, nil, nil
	}
	if err != nil {
		return config.Config{}, err
	}
	for _, w := range warnings {
		s.log.Warn(w.String())
	}
	if s.opts.Override != nil {
		s.opts.Override(&cfg)
		if err := config.Validate(cfg); err != nil {
			return config.Config{}, fmt.Errorf("config after command-line overrides: %w", err)
		}
	}
	return cfg, nil
}

func (s *System) applyLiveSettings(cfg config.Config) {
	level := slog.LevelInfo
	switch cfg.LogLevel {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	s.logLevel.Set(level)
}

// identity is how other machines know this one.
type identity struct {
	name     string // the config's, else the host name
	publicIP net.IP
	tls      *pki.Files // nil: plain HTTP
	tlsDir   string
}

func resolveIdentity(paths Paths, cfg config.Config) (identity, error) {
	var id identity
	var err error
	id.name = cfg.Name
	if id.name == "" {
		if id.name, err = os.Hostname(); err != nil {
			return id, fmt.Errorf("machine name: no name in the config and %w", err)
		}
	}
	if id.publicIP, err = resolvePublicIP(cfg.PublicIP); err != nil {
		return id, err
	}
	if id.tls, id.tlsDir, err = resolveTLS(cfg.TLSDir, paths.DefaultTLSDir()); err != nil {
		return id, err
	}
	return id, nil
}

func resolvePublicIP(configured string) (net.IP, error) {
	if configured == "" {
		return detectPublicIP()
	}
	ip := net.ParseIP(configured)
	if ip == nil {
		return nil, fmt.Errorf("public-ip %q is not an IP address", configured)
	}
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	return ip, nil
}

// resolveTLS finds the machine's TLS identity: the configured directory,
// which must hold a valid one, or the default directory if it exists.
// No directory means plain HTTP.
func resolveTLS(configured, defaultDir string) (*pki.Files, string, error) {
	dir := configured
	if dir == "" {
		if _, err := os.Stat(defaultDir); err != nil {
			return nil, "", nil
		}
		dir = defaultDir
	}
	files := pki.MachineFiles(dir)
	if err := files.Check(); err != nil {
		return nil, "", fmt.Errorf("tls-dir %s: %w", dir, err)
	}
	return &files, dir, nil
}

func (s *System) config() config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// startupDone is called when the store first serves; it gives back the
// memory that only start-up needed.
func (s *System) startupDone() {
	s.startupOnce.Do(func() {
		if err := releaseStartupMemory(); err != nil {
			s.log.Warn("could not release start-up memory", "err", err)
		}
	})
}

// MachineID is the machine's persistent ID.
func (s *System) MachineID() string { return s.machineID }

// Reload reads the config again and applies what can change while the
// daemon runs: metadata (fleet's agent registers with the new metadata at
// once) and the log level. It returns the keys whose change
// needs a restart. A config that no longer parses is refused as a whole,
// and the running config stays.
func (s *System) Reload() (needRestart []string, err error) {
	cfg, err := s.loadConfig()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	old := s.cfg
	if cfg.Name == "" {
		cfg.Name = old.Name
	}
	if cfg.Name != old.Name {
		needRestart = append(needRestart, "name")
	}
	if cfg.PublicIP != old.PublicIP {
		needRestart = append(needRestart, "public-ip")
	}
	if cfg.TLSDir != old.TLSDir {
		needRestart = append(needRestart, "tls-dir")
	}
	if !reflect.DeepEqual(cfg.Store, old.Store) {
		needRestart = append(needRestart, "store")
	}
	next := old
	next.Metadata = cfg.Metadata
	next.LogLevel = cfg.LogLevel
	s.cfg = next
	s.mu.Unlock()
	s.applyLiveSettings(next)
	s.fleet.machineChanged()
	s.log.Info("config reloaded", "metadata", next.Metadata, "log-level", next.LogLevel, "need-restart", needRestart)
	return needRestart, nil
}

// Health reports every part and the store.
func (s *System) Health(ctx context.Context) api.Health {
	h := api.Health{Parts: s.sup.parts(), Store: s.store.status(ctx)}
	h.Healthy = h.Store.Healthy
	for _, p := range h.Parts {
		if p.State != api.PartRunning {
			h.Healthy = false
		}
	}
	return h
}

// Machine describes this machine.
func (s *System) Machine(ctx context.Context) api.Machine {
	cfg := s.config()
	st := s.store.status(ctx)
	metadata := cfg.Metadata
	if metadata == nil {
		metadata = map[string]string{}
	}
	return api.Machine{
		ID:       s.machineID,
		Name:     cfg.Name,
		PublicIP: s.identity.publicIP.String(),
		Metadata: metadata,
		Version:  version.Version,
		Roles:    append([]string{"store-" + st.Role}, s.fleet.roles()...),
		Store:    st,
	}
}

// Close stops every part, the API last-started first, and waits for them.
func (s *System) Close() {
	s.sup.stop()
	s.units.close() // the units keep running
	s.stateLock.Close()
	s.log.Info("atoll node stopped")
}

// lockStateDir takes the state directory's lock without waiting: the lock
// is released by the kernel when the daemon exits, however it exits.
func lockStateDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another atoll node runs on this root (it holds %s)", path)
		}
		return nil, fmt.Errorf("state lock %s: %w", path, err)
	}
	return f, nil
}
