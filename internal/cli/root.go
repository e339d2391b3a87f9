// Package cli holds atoll's command-line verbs, one file per verb group.
// Each verb parses its flags into an options struct, makes one call into a
// client or a part's package, and prints; the work lives in those
// packages, never here. Main maps errors to exit codes: 0 success, 1 a
// failed operation, 2 a usage error.
//
// cli imports the parts it drives; nothing imports cli but cmd/atoll.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/internal/version"
)

// globals are the flags every verb sees.
type globals struct {
	runDir  string
	cluster string
	stdout  io.Writer
	stderr  io.Writer
}

// usageError marks an error in how a command was called (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// Main runs the command line args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return MainContext(context.Background(), args, stdout, stderr)
}

// MainContext is Main with a context that ends long-running verbs (watch).
func MainContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	if filepath.Base(args[0]) == "fleetctl" {
		root = newFleetctlRoot(g) // started as fleetctl: the fleet verbs are the root
	}
	root.SetArgs(args[1:])
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit exitCode
	if errors.As(err, &exit) {
		return exit.code
	}
	fmt.Fprintf(stderr, "%s: %v\n", filepath.Base(args[0]), err)
	var usage usageError
	// cobra reports an unknown verb as a plain error.
	if errors.As(err, &usage) || strings.HasPrefix(err.Error(), "unknown command") {
		return 2
	}
	return 1
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "atoll",
		Short:         "atoll: a container-first cluster OS in one binary",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&g.runDir, "run-dir", os.Getenv("ATOLL_RUN_DIR"),
		"the local daemon's run directory (default $ATOLL_RUN_DIR or /run/atoll)")
	root.PersistentFlags().StringVar(&g.cluster, "cluster", "",
		"talk to the playground cluster with this name instead of the local daemon")
	root.AddCommand(
		newNodeCmd(g),
		newKVCmd(g),
		newCertCmd(g),
		newDiscoveryCmd(g),
		newStoreCmd(g),
		newClusterCmd(g),
		newPodCmd(g),
		newImageCmd(g),
		newRktCmd(g),
		newUnitCmd(g),
		newFleetCmd(g),
		&cobra.Command{
			Use:   "version",
			Short: "Print atoll's version",
			Args:  cobra.NoArgs,
			Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(g.stdout, version.Version) },
		},
	)
	return root
}

// exactArgs is cobra.ExactArgs with an error that exits 2.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs with an error that exits 2.
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s takes at least %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}
