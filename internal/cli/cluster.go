package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/internal/playground"
)

func newClusterCmd(g *globals) *cobra.Command {
	var name string
	var opts playground.Options
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "A playground cluster: N machines in network namespaces on this host (needs root)",
	}
	cmd.PersistentFlags().StringVar(&name, "name", "default", "the playground cluster's name")
	cmd.PersistentFlags().StringVar(&opts.Dir, "dir", "", "where playground clusters live (default $ATOLL_PLAYGROUND_DIR or "+playground.DefaultDir+")")
	load := func() (*playground.Cluster, error) {
		c, err := playground.Load(opts, name)
		if errors.Is(err, playground.ErrNotFound) {
			return nil, fmt.Errorf("%w; start it with: atoll cluster up --name %s", err, name)
		}
		return c, err
	}

	var up playground.UpOptions
	upCmd := &cobra.Command{
		Use:   "up",
		Short: "Make a cluster and wait until every machine is healthy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			up.Name = name
			start := time.Now()
			c, err := playground.Up(cmd.Context(), opts, up)
			if errors.Is(err, playground.ErrExists) {
				return fmt.Errorf("%w; remove it first with: atoll cluster down --name %s", err, name)
			}
			if err != nil {
				if c != nil {
					return fmt.Errorf("%w\n(clean up with: atoll cluster down --name %s)", err, name)
				}
				return err
			}
			fmt.Fprintf(g.stdout, "cluster %q is up: %d machines healthy in %s (subnet %s)\n",
				c.Name, len(c.Machines), time.Since(start).Round(time.Millisecond), c.Subnet)
			printStatus(g, c, cmd)
			return nil
		},
	}
	upCmd.Flags().IntVar(&up.Machines, "machines", 3, "number of machines")
	upCmd.Flags().IntVar(&up.Members, "members", 0, "store members among them (default 3, or all when fewer)")
	upCmd.Flags().BoolVar(&up.NoTLS, "no-tls", false, "run the store without TLS")
	upCmd.Flags().BoolVar(&up.Discovery, "discovery", false, "bootstrap through a discovery service instead of a static member list")
	upCmd.Flags().DurationVar(&up.Wait, "wait", time.Minute, "how long to wait for every machine to be healthy")

	down := &cobra.Command{
		Use:   "down",
		Short: "Remove the cluster: processes, namespaces, links and files (safe to repeat)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := playground.Down(opts, name); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "cluster %q removed\n", name)
			return nil
		},
	}

	status := &cobra.Command{
		Use:   "status",
		Short: "Show each machine: MACHINE, ID, IP, ROLE, STATE",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			printStatus(g, c, cmd)
			return nil
		},
	}

	env := &cobra.Command{
		Use:   "env",
		Short: "Print shell exports that point etcdctl at the cluster: eval \"$(atoll cluster env)\"",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			for _, kv := range c.Env() {
				fmt.Fprintf(g.stdout, "export %s=%s\n", kv[0], shellQuote(kv[1]))
			}
			return nil
		},
	}

	execCmd := &cobra.Command{
		Use:   "exec MACHINE -- COMMAND [ARG...]",
		Short: "Run a command inside a machine (its network namespace; atoll commands reach its daemon)",
		Long: `Run a command inside a machine: in its network namespace, with
ATOLL_RUN_DIR and ATOLL_ROOT set so that atoll commands there reach the
machine's daemon, and atoll pod and atoll image keep the machine's own images
and pods (cluster down stops them).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef("exec takes a machine and a command")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			err = c.Exec(cmd.Context(), args[0], args[1:], os.Stdin, os.Stdout, os.Stderr)
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return exitCode{exit.ExitCode()}
			}
			return err
		},
	}

	var signal string
	stop := &cobra.Command{
		Use:   "stop MACHINE",
		Short: "Stop a machine's daemon (--signal KILL for a crash)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, err := parseSignal(signal)
			if err != nil {
				return err
			}
			c, err := load()
			if err != nil {
				return err
			}
			if err := c.Stop(opts, args[0], sig); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s stopped\n", args[0])
			return nil
		},
	}
	stop.Flags().StringVar(&signal, "signal", "TERM", "TERM for a clean stop, KILL for a crash")

	crash := &cobra.Command{
		Use:   "crash MACHINE",
		Short: "Kill a machine as a power cut would: its daemon, pods and units at once",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			if err := c.Crash(opts, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s crashed (start it again with: atoll cluster start %s)\n", args[0], args[0])
			return nil
		},
	}

	start := &cobra.Command{
		Use:   "start MACHINE",
		Short: "Start a stopped machine's daemon",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			if err := c.Start(opts, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s started\n", args[0])
			return nil
		},
	}

	partition := &cobra.Command{
		Use:   "partition MACHINE",
		Short: "Cut a machine off the network (atoll cluster heal ends it)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			if err := c.Partition(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s partitioned\n", args[0])
			return nil
		},
	}

	heal := &cobra.Command{
		Use:   "heal",
		Short: "End every partition",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			if err := c.Heal(); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "every partition healed")
			return nil
		},
	}
	cmd.AddCommand(upCmd, down, status, env, execCmd, stop, crash, start, partition, heal)
	return cmd
}

func printStatus(g *globals, c *playground.Cluster, cmd *cobra.Command) {
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tID\tIP\tROLE\tSTATE")
	for _, st := range c.Status(cmd.Context()) {
		state := st.State
		if st.Detail != "" {
			state += " (" + st.Detail + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", st.Name, st.ID, st.IP, st.Role, state)
	}
	tw.Flush()
}

func parseSignal(name string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(name), "SIG") {
	case "TERM", "15":
		return syscall.SIGTERM, nil
	case "KILL", "9":
		return syscall.SIGKILL, nil
	case "INT", "2":
		return syscall.SIGINT, nil
	}
	return 0, usagef("--signal %q: want TERM, KILL or INT", name)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// exitCode passes a command's exit status through atoll's own.
type exitCode struct{ code int }

func (e exitCode) Error() string { return fmt.Sprintf("command exited with status %d", e.code) }
