package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/internal/node"
	"atoll.dev/atoll/internal/node/config"
	"atoll.dev/atoll/internal/store"
)

func newStoreCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Back up and restore the cluster store",
	}
	var sf storeFlags
	backup := &cobra.Command{
		Use:   "backup FILE",
		Short: "Save a consistent snapshot of the store to FILE (written atomically)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cli, _, err := sf.dial(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			n, err := store.Backup(ctx, cli, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "saved %d bytes to %s\n", n, args[0])
			return nil
		},
	}
	sf.register(backup)

	var root, configFile, name, peerURL string
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "Make this machine's store a new one-member cluster holding FILE's data",
		Long: `Restore a snapshot into this machine's store directory, as a new
one-member cluster. Stop the daemon first; the previous data directory is
moved aside, never deleted. Start the daemon again, then grow the cluster:
start the other machines with --join pointing at this one.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			paths := node.Paths{Root: root, RunDir: g.runDir}
			opts, err := restoreOptions(paths, configFile, name, peerURL)
			if err != nil {
				return err
			}
			opts.Snapshot = args[0]
			aside, err := store.Restore(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "restored %s into %s as member %s at %s\n", args[0], opts.DataDir, opts.Name, opts.PeerURL)
			if aside != "" {
				fmt.Fprintf(g.stdout, "the previous data directory is now %s\n", aside)
			}
			return nil
		},
	}
	restore.Flags().StringVar(&root, "root", "/", "root from which the store directory derives")
	restore.Flags().StringVar(&configFile, "config", "", "node config (default <root>/etc/atoll/node.yaml)")
	restore.Flags().StringVar(&name, "name", "", "member name (default: the config's)")
	restore.Flags().StringVar(&peerURL, "peer-url", "", "peer URL to advertise (default: from the config's public-ip, peer-port and TLS)")
	cmd.AddCommand(backup, restore)
	return cmd
}

// restoreOptions works out the member a restore creates from the node
// config, so that the restored member is the one the daemon will start.
func restoreOptions(paths node.Paths, configFile, name, peerURL string) (store.RestoreOptions, error) {
	if configFile == "" {
		configFile = paths.ConfigFile()
	}
	cfg, _, err := config.Load(configFile)
	if err != nil {
		return store.RestoreOptions{}, err
	}
	member, err := node.MemberOptionsFor(paths, cfg)
	if err != nil {
		return store.RestoreOptions{}, err
	}
	if name == "" {
		name = member.Name
	}
	if peerURL == "" {
		u := member.PeerURL()
		peerURL = u.String()
	}
	return store.RestoreOptions{
		DataDir:      member.DataDir,
		Name:         name,
		PeerURL:      peerURL,
		ClusterToken: member.InitialClusterToken,
	}, nil
}
