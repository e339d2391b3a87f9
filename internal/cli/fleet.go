package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"atoll.dev/atoll/client"
	"atoll.dev/atoll/internal/fleet/fleetapi"
	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/playground"
	"atoll.dev/atoll/internal/version"
)

const fleetLong = `Run units across the cluster: fleetctl's verbs, flags and output, through
fleet's v1 HTTP API. The binary does the same when it is started as fleetctl
(a symlink fleetctl -> atoll), so scripts written for fleetctl keep working.

The API is the local daemon's (unix://<run-dir>/atoll.sock), the first
machine's of the playground cluster named by --cluster, or --endpoint's
(unix:///path.sock, http://host:port, https://host:port). Flags can also be
set as FLEETCTL_<FLAG> environment variables, as fleetctl reads them.

Unit arguments are local files (a missing .service suffix is added), units
already submitted, or instances of a template (web@1.service from a local
web@.service or one in the registry). Brace expressions are expanded by the
command itself, so 'web@{1..3}' and 'web@{a,b}' work quoted too.

Beyond fleetctl: a unit the engine cannot place stops load and start at once
with the engine's reason; list-unit-files shows such a unit as unplaceable,
with a REASON column; status and journal read the owning machine's state
and journal through the API, without SSH; metadata sets and removes machine
metadata.

fleetctl's SSH flags (--tunnel, --ssh-username, --strict-host-key-checking,
--known-hosts-file, --ssh-timeout, --ssh-port, --sudo) are accepted and
ignored with a warning. --driver=etcd is refused: atoll's registry is not
fleet's etcd layout.`

// fleetDefaultRequestTimeout is fleetctl's --request-timeout, in seconds.
const fleetDefaultRequestTimeout = 3.0

// fleetFlags are the global flags of the fleet verbs, fleetctl's.
type fleetFlags struct {
	endpoint                  string
	driver                    string
	caFile, certFile, keyFile string
	requestTimeout            float64

	// Accepted so that fleetctl command lines run; ignored.
	etcdKeyPrefix                       string
	tunnel, sshUsername, knownHostsFile string
	strictHostKeyChecking               bool
	sshTimeout                          float64
	debug, experimentalAPI              bool
}

// fleetIgnoredFlags says why each fleetctl flag atoll accepts has no
// effect.
var fleetIgnoredFlags = []struct{ name, why string }{
	{"tunnel", fleetNoSSH},
	{"ssh-username", fleetNoSSH},
	{"strict-host-key-checking", fleetNoSSH},
	{"known-hosts-file", fleetNoSSH},
	{"ssh-timeout", fleetNoSSH},
	{"ssh-port", fleetNoSSH},
	{"sudo", "the journal is read through the API, which needs no sudo"},
	{"etcd-key-prefix", "atoll has no etcd driver: the API reads atoll's registry"},
	{"debug", "atoll prints no debug output; its errors carry their context"},
	{"experimental-api", "deprecated in fleetctl; the API is always used"},
}

const fleetNoSSH = "atoll needs no SSH: status and journal are read from the owning machine's daemon through the API"

func (f *fleetFlags) bind(fl *pflag.FlagSet) {
	fl.StringVar(&f.endpoint, "endpoint", "",
		"location of the fleet API: unix:///path.sock, http://host:port or https://host:port (default: the local daemon's socket, or --cluster's first machine's)")
	fl.StringVar(&f.driver, "driver", "API", `adapter used to execute commands: only "API" (fleetctl's "etcd" driver is refused)`)
	fl.StringVar(&f.caFile, "ca-file", "", "CA certificate that signs the API's certificate (https endpoints)")
	fl.StringVar(&f.certFile, "cert-file", "", "TLS client certificate (https endpoints)")
	fl.StringVar(&f.keyFile, "key-file", "", "TLS client key (https endpoints)")
	fl.Float64Var(&f.requestTimeout, "request-timeout", fleetDefaultRequestTimeout,
		"amount of time in seconds to allow a single request before considering it failed")

	fl.StringVar(&f.etcdKeyPrefix, "etcd-key-prefix", "/_coreos.com/fleet/", "ignored: atoll has no etcd driver")
	fl.StringVar(&f.tunnel, "tunnel", "", "ignored: "+fleetNoSSH)
	fl.StringVar(&f.sshUsername, "ssh-username", "core", "ignored: "+fleetNoSSH)
	fl.BoolVar(&f.strictHostKeyChecking, "strict-host-key-checking", true, "ignored: "+fleetNoSSH)
	fl.StringVar(&f.knownHostsFile, "known-hosts-file", "~/.fleetctl/known_hosts", "ignored: "+fleetNoSSH)
	fl.Float64Var(&f.sshTimeout, "ssh-timeout", 10.0, "ignored: "+fleetNoSSH)
	fl.BoolVar(&f.debug, "debug", false, "ignored: atoll prints no debug output")
	fl.BoolVar(&f.experimentalAPI, "experimental-api", true, "DEPRECATED: do not use this flag.")
	fl.StringVar(&f.keyFile, "etcd-keyfile", "", "DEPRECATED: do not use this flag.")
	fl.StringVar(&f.certFile, "etcd-certfile", "", "DEPRECATED: do not use this flag.")
	fl.StringVar(&f.caFile, "etcd-cafile", "", "DEPRECATED: do not use this flag.")
	for _, hidden := range []string{"experimental-api", "etcd-keyfile", "etcd-certfile", "etcd-cafile"} {
		_ = fl.MarkHidden(hidden)
	}
}

// fromEnv sets the flags not given on the command line from FLEETCTL_*
// variables (FLEETCTL_ENDPOINT for --endpoint), as fleetctl's
// getFlagsFromEnv does.
func fromEnv(fl *pflag.FlagSet, getenv func(string) string) error {
	var errs []error
	fl.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		key := "FLEETCTL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(key); v != "" {
			if err := fl.Set(f.Name, v); err != nil {
				errs = append(errs, usagef("%s=%q: %v", key, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// prepare runs before every fleet verb: environment, refused and
// ignored flags.
func (f *fleetFlags) prepare(cmd *cobra.Command, persistent *pflag.FlagSet, stderr io.Writer) error {
	if err := fromEnv(persistent, os.Getenv); err != nil {
		return err
	}
	switch f.driver {
	case "API", "api":
	case "etcd":
		return usagef("--driver=etcd: atoll's fleet has no etcd driver (its registry is not fleet's etcd layout); use the API, the default")
	default:
		return usagef("unrecognized driver %q", f.driver)
	}
	for _, ig := range fleetIgnoredFlags {
		if fl := cmd.Flags().Lookup(ig.name); fl != nil && fl.Changed {
			fmt.Fprintf(stderr, "%s: warning: --%s is ignored: %s\n", cmd.Root().Name(), ig.name, ig.why)
		}
	}
	if f.requestTimeout <= 0 {
		return usagef("--request-timeout must be positive, got %v", f.requestTimeout)
	}
	return nil
}

// endpointFor resolves where the API is: --endpoint (its first URL when
// it lists several, as fleetctl), the first machine of the playground
// cluster --cluster names, or the local daemon's socket.
func (f *fleetFlags) endpointFor(g *globals) (string, error) {
	if f.endpoint != "" {
		eps := strings.Split(f.endpoint, ",")
		if len(eps) > 1 {
			fmt.Fprintf(g.stderr, "WARNING: multiple endpoints provided but only the first (%s) is used\n", eps[0])
		}
		return eps[0], nil
	}
	if g.cluster != "" {
		c, err := playground.Load(playground.Options{}, g.cluster)
		if err != nil {
			return "", fmt.Errorf("--cluster %s: %w", g.cluster, err)
		}
		if len(c.Machines) == 0 {
			return "", fmt.Errorf("--cluster %s: the cluster has no machines", g.cluster)
		}
		return "unix://" + client.Local{RunDir: c.Machines[0].RunDir}.Socket(), nil
	}
	return "unix://" + client.Local{RunDir: g.runDir}.Socket(), nil
}

// tlsConfig reads --ca-file, --cert-file and --key-file; nil when none
// is given.
func (f *fleetFlags) tlsConfig() (*tls.Config, error) {
	if f.caFile == "" && f.certFile == "" && f.keyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", f.caFile)
		}
	}
	if (f.certFile == "") != (f.keyFile == "") {
		return nil, usagef("--cert-file and --key-file go together")
	}
	if f.certFile != "" {
		cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert-file %s, --key-file %s: %w", f.certFile, f.keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// connect makes the API client the flags describe.
func (f *fleetFlags) connect(g *globals) (*fleetConn, error) {
	endpoint, err := f.endpointFor(g)
	if err != nil {
		return nil, err
	}
	// unix://var/run/fleet.sock (one slash short) names host "var":
	// refused as fleetctl refuses it, not dialled as /run/fleet.sock.
	if u, err := url.Parse(endpoint); err == nil && u.Scheme == "unix" && u.Host != "" {
		return nil, usagef("unable to connect to host %q with scheme %q", u.Host, u.Scheme)
	}
	tlsConfig, err := f.tlsConfig()
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil && !strings.HasPrefix(endpoint, "https://") {
		fmt.Fprintf(g.stderr, "WARNING: --ca-file, --cert-file and --key-file apply to https endpoints only, not %s\n", endpoint)
	}
	api, err := fleetapi.NewClient(endpoint, tlsConfig)
	if err != nil {
		return nil, usagef("unable to initialize client: %w", err)
	}
	return &fleetConn{
		api:     api,
		timeout: time.Duration(f.requestTimeout * float64(time.Second)),
		stdout:  g.stdout,
		stderr:  g.stderr,
	}, nil
}

// fleetConn is one fleet verb's connection to the API: the client, the
// per-request timeout, where to print, and the machines, read once per
// command as fleetctl caches them.
type fleetConn struct {
	api            *fleetapi.Client
	timeout        time.Duration
	stdout, stderr io.Writer

	machines map[string]*schema.Machine // nil until first read
}

// call bounds one request by --request-timeout.
func (c *fleetConn) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// unit reads a unit; nil (and no error) when it does not exist.
func (c *fleetConn) unit(ctx context.Context, name string) (*schema.Unit, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	u, err := c.api.Unit(ctx, name)
	if errors.Is(err, fleetapi.ErrNotFound) {
		return nil, nil
	}
	return u, err
}

func (c *fleetConn) units(ctx context.Context) ([]*schema.Unit, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.api.Units(ctx)
}

func (c *fleetConn) unitStates(ctx context.Context, machineID, unitName string) ([]*schema.UnitState, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.api.UnitStates(ctx, machineID, unitName)
}

func (c *fleetConn) listMachines(ctx context.Context) ([]*schema.Machine, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.api.Machines(ctx)
}

func (c *fleetConn) setTargetState(ctx context.Context, name, state string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.api.SetUnitTargetState(ctx, name, state)
}

// machineLookup reads the machines once and finds them by ID; a failed
// read leaves every machine unknown, as fleetctl's cachedMachineState.
func (c *fleetConn) machineLookup(ctx context.Context) machineLookup {
	return func(id string) *schema.Machine {
		if c.machines == nil {
			c.machines = map[string]*schema.Machine{}
			ms, err := c.listMachines(ctx)
			if err == nil {
				for _, m := range ms {
					c.machines[m.ID] = m
				}
			}
		}
		return c.machines[id]
	}
}

// outf and errf print a line as fleetctl's stdout and stderr helpers do:
// a newline is added unless the format ends in one.
func (c *fleetConn) outf(format string, args ...any) { fleetPrintf(c.stdout, format, args...) }
func (c *fleetConn) errf(format string, args ...any) { fleetPrintf(c.stderr, format, args...) }

func fleetPrintf(w io.Writer, format string, args ...any) {
	if !strings.HasSuffix(format, "\n") {
		format += "\n"
	}
	fmt.Fprintf(w, format, args...)
}

// failf prints a fleetctl-worded failure and exits 1.
func (c *fleetConn) failf(format string, args ...any) error {
	c.errf(format, args...)
	return exitCode{1}
}

// fleetSignWarning is fleetctl's answer to --sign and verify.
const fleetSignWarning = "WARNING: The signed/verified units feature is DEPRECATED and cannot be used."

// newFleetCmd is `atoll fleet`: fleetctl's verbs.
func newFleetCmd(g *globals) *cobra.Command {
	f := &fleetFlags{}
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Run units across the cluster, as fleetctl (what the binary does when started as fleetctl)",
		Long:  fleetLong,
	}
	f.bind(cmd.PersistentFlags())
	cmd.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		return f.prepare(c, cmd.PersistentFlags(), g.stderr)
	}
	cmd.AddCommand(
		newFleetListMachinesCmd(g, f),
		newFleetListUnitsCmd(g, f),
		newFleetListUnitFilesCmd(g, f),
		newFleetSubmitCmd(g, f),
		newFleetLoadCmd(g, f),
		newFleetStartCmd(g, f),
		newFleetStopCmd(g, f),
		newFleetUnloadCmd(g, f),
		newFleetDestroyCmd(g, f),
		newFleetRestartCmd(g, f),
		newFleetStatusCmd(g, f),
		newFleetJournalCmd(g, f),
		newFleetCatCmd(g, f),
		newFleetMetadataCmd(g, f),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version and exit",
			Args:  cobra.ArbitraryArgs,
			Run: func(*cobra.Command, []string) {
				fleetPrintf(g.stdout, "fleetctl version %s", version.Version)
			},
		},
		&cobra.Command{
			Use:    "verify UNIT",
			Short:  "DEPRECATED - No longer works",
			Hidden: true,
			RunE: func(*cobra.Command, []string) error {
				fleetPrintf(g.stderr, fleetSignWarning)
				return exitCode{2}
			},
		},
		fleetMissingCmd(g, "ssh", "atoll needs no SSH: read a unit with fleet status and fleet journal, or run commands on a playground machine with atoll cluster exec"),
		fleetMissingCmd(g, "fd-forward", "atoll needs no SSH tunnel to its API: give --endpoint"),
	)
	return cmd
}

// fleetMissingCmd refuses a fleetctl verb atoll has no equivalent for.
func fleetMissingCmd(g *globals, verb, why string) *cobra.Command {
	return &cobra.Command{
		Use:                verb,
		Short:              "not in atoll: " + why,
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return usagef("%s: atoll has no equivalent: %s", verb, why)
		},
	}
}

// newFleetctlRoot is the command tree when the binary runs as fleetctl:
// the fleet verbs at the top, with atoll's global flags and fleetctl's
// --version.
func newFleetctlRoot(g *globals) *cobra.Command {
	root := newFleetCmd(g)
	root.Use = "fleetctl"
	root.Short = "fleetctl is a command-line interface to fleet, the cluster-wide CoreOS init system (atoll answering as fleetctl)"
	root.Version = version.Version
	root.SetVersionTemplate("fleetctl version {{.Version}}\n")
	root.SilenceUsage = true
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SilenceErrors = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&g.runDir, "run-dir", os.Getenv("ATOLL_RUN_DIR"),
		"the local daemon's run directory (default $ATOLL_RUN_DIR or /run/atoll)")
	root.PersistentFlags().StringVar(&g.cluster, "cluster", "",
		"talk to the playground cluster with this name instead of the local daemon")
	return root
}
