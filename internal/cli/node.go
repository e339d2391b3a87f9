package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/client"
	"atoll.dev/atoll/internal/node"
	"atoll.dev/atoll/internal/node/config"
)

// nodeFlags are the command-line settings that override node.yaml.
type nodeFlags struct {
	root, config                     string
	name, publicIP, logLevel, tlsDir string
	metadata                         []string
	role, initialCluster, discovery  string
	join, endpoints                  []string
	clientPort, peerPort             int
}

func newNodeCmd(g *globals) *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run the per-machine daemon (store member or client, local API)",
		Long: `Run the per-machine daemon.

The config is read from <root>/etc/atoll/node.yaml (or --config); flags
override it. SIGTERM stops the daemon cleanly; SIGHUP reloads the config
(metadata and log level apply at once, other changes at the next start).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			override, err := f.override(cmd)
			if err != nil {
				return err
			}
			return runNode(cmd.Context(), node.Options{
				Paths:      node.Paths{Root: f.root, RunDir: g.runDir},
				ConfigFile: f.config,
				Override:   override,
				LogOutput:  g.stderr,
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.root, "root", "/", "root from which every state and config path derives")
	fl.StringVar(&f.config, "config", "", "node config file (default <root>/etc/atoll/node.yaml)")
	fl.StringVar(&f.name, "name", "", "machine name (default: the host name)")
	fl.StringVar(&f.publicIP, "public-ip", "", "address other machines reach this one at (default: detected)")
	fl.StringArrayVar(&f.metadata, "metadata", nil, "metadata key=value; repeat or separate with commas")
	fl.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error")
	fl.StringVar(&f.tlsDir, "tls-dir", "", "directory with ca.crt, node.crt and node.key")
	fl.StringVar(&f.role, "role", "", "store role: member, client or auto (discovery decides)")
	fl.StringVar(&f.initialCluster, "initial-cluster", "", "static bootstrap: name=peerURL,...")
	fl.StringVar(&f.discovery, "discovery", "", "bootstrap through this discovery token URL")
	fl.StringSliceVar(&f.join, "join", nil, "join the running cluster at these client URLs")
	fl.StringSliceVar(&f.endpoints, "endpoints", nil, "members' client URLs, for a client")
	fl.IntVar(&f.clientPort, "client-port", 0, "store client port (default 2379)")
	fl.IntVar(&f.peerPort, "peer-port", 0, "store peer port (default 2380)")

	cmd.AddCommand(&cobra.Command{
		Use:   "leave",
		Short: "Remove this machine's store member from the cluster; it carries on as a client",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			left, err := client.Local{RunDir: g.runDir}.Leave(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "member %s left the cluster; now a client of %s\n", left.MemberID, strings.Join(left.Endpoints, ","))
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show this machine: ID, address, metadata, roles and store health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := client.Local{RunDir: g.runDir}.Machine(cmd.Context())
			if err != nil {
				return err
			}
			enc := json.NewEncoder(g.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(m)
		},
	})
	return cmd
}

// override turns the flags that were set into a config override.
func (f nodeFlags) override(cmd *cobra.Command) (func(*config.Config), error) {
	metadata := map[string]string{}
	for _, item := range f.metadata {
		for _, pair := range strings.Split(item, ",") {
			key, value, ok := strings.Cut(pair, "=")
			if !ok || key == "" {
				return nil, usagef("--metadata %q: want key=value", pair)
			}
			metadata[key] = value
		}
	}
	changed := cmd.Flags().Changed
	return func(c *config.Config) {
		set := func(flag string, dst *string, v string) {
			if changed(flag) {
				*dst = v
			}
		}
		set("name", &c.Name, f.name)
		set("public-ip", &c.PublicIP, f.publicIP)
		set("log-level", &c.LogLevel, f.logLevel)
		set("tls-dir", &c.TLSDir, f.tlsDir)
		set("role", &c.Store.Role, f.role)
		set("initial-cluster", &c.Store.InitialCluster, f.initialCluster)
		set("discovery", &c.Store.Discovery, f.discovery)
		if len(metadata) > 0 {
			if c.Metadata == nil {
				c.Metadata = map[string]string{}
			}
			for k, v := range metadata {
				c.Metadata[k] = v
			}
		}
		if changed("join") {
			c.Store.Join = f.join
		}
		if changed("endpoints") {
			c.Store.Endpoints = f.endpoints
		}
		if changed("client-port") {
			c.Store.ClientPort = f.clientPort
		}
		if changed("peer-port") {
			c.Store.PeerPort = f.peerPort
		}
	}, nil
}

// runNode starts the daemon and serves signals until SIGTERM or SIGINT.
func runNode(ctx context.Context, opts node.Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sys, err := node.Start(ctx, opts)
	if err != nil {
		return err
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(signals)
	for sig := range signals {
		if sig == syscall.SIGHUP {
			if _, err := sys.Reload(); err != nil {
				fmt.Fprintf(opts.LogOutput, "reload refused, keeping the running config: %v\n", err)
			}
			continue
		}
		break
	}
	sys.Close()
	return nil
}
