package cli

import (
	"context"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/internal/fleet/schema"
)

// fleetListFlags are the flags of fleetctl's list verbs.
type fleetListFlags struct {
	full, noLegend bool
	fields         string
}

func (l *fleetListFlags) bind(cmd *cobra.Command, defaultFields, fieldsHelp string) {
	cmd.Flags().BoolVarP(&l.full, "full", "l", false, "Do not ellipsize fields on output")
	// fleetctl's list-machines and list-units spell the short form as a
	// long flag, --l; both spellings work here.
	cmd.Flags().BoolVar(&l.full, "l", false, "Shorthand for --full")
	cmd.Flags().MarkHidden("l")
	cmd.Flags().BoolVar(&l.noLegend, "no-legend", false, "Do not print a legend (column headers)")
	cmd.Flags().StringVar(&l.fields, "fields", defaultFields, fieldsHelp)
}

// fleetVerb runs a verb that needs the API but no unit arguments.
func fleetVerb(g *globals, f *fleetFlags, run func(ctx context.Context, c *fleetConn, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := f.connect(g)
		if err != nil {
			return err
		}
		return run(cmd.Context(), c, args)
	}
}

func newFleetListMachinesCmd(g *globals, f *fleetFlags) *cobra.Command {
	var lf fleetListFlags
	cmd := &cobra.Command{
		Use:   "list-machines [-l|--full] [--no-legend] [--fields]",
		Short: "Enumerate the current hosts in the cluster",
		Long: `Lists all active machines within the cluster. Previously active machines will not appear in this list.

For easily parsable output, you can remove the column headers:
fleetctl list-machines --no-legend

Output the list without truncation:
fleetctl list-machines --full`,
		Args: exactArgs(0),
	}
	cmd.RunE = fleetVerb(g, f, func(ctx context.Context, c *fleetConn, _ []string) error {
		cols, err := parseFields(lf.fields, listMachinesFields)
		if err != nil {
			return c.failf("%v", err)
		}
		machines, err := c.listMachines(ctx)
		if err != nil {
			c.errf("Error retrieving list of active machines from fleet API (%v)", err)
			c.errf("Possible issues:\n  etcd is unhealthy and/or lost quorum\n  connection cannot be established to any etcd servers")
			return exitCode{1}
		}
		return printFleetTable(c.stdout, cols, machineRows(cols, machines, lf.full), lf.noLegend)
	})
	lf.bind(cmd, defaultListMachinesFields, fieldsHelp("Machine", listMachinesFields))
	return cmd
}

func newFleetListUnitsCmd(g *globals, f *fleetFlags) *cobra.Command {
	var lf fleetListFlags
	cmd := &cobra.Command{
		Use:   "list-units [--no-legend] [-l|--full] [--fields]",
		Short: "List the current state of units in the cluster",
		Long: `Lists the state of all units in the cluster loaded onto a machine.

For easily parsable output, you can remove the column headers:
fleetctl list-units --no-legend

Output the list without ellipses:
fleetctl list-units --full

Or, choose the columns to display:
fleetctl list-units --fields=unit,machine`,
		Args: exactArgs(0),
	}
	cmd.RunE = fleetVerb(g, f, func(ctx context.Context, c *fleetConn, _ []string) error {
		cols, err := parseFields(lf.fields, listUnitsFields)
		if err != nil {
			return c.failf("%v", err)
		}
		states, err := c.unitStates(ctx, "", "")
		if err != nil {
			return c.failf("Error retrieving list of units from repository: %v", err)
		}
		return printFleetTable(c.stdout, cols, unitStateRows(cols, states, c.machineLookup(ctx), lf.full), lf.noLegend)
	})
	lf.bind(cmd, defaultListUnitsFields, fieldsHelp("Unit", listUnitsFields))
	return cmd
}

func newFleetListUnitFilesCmd(g *globals, f *fleetFlags) *cobra.Command {
	var lf fleetListFlags
	cmd := &cobra.Command{
		Use:   "list-unit-files [--fields]",
		Short: "List the units that exist in the cluster.",
		Long: `Lists all unit files that exist in the cluster (whether or not they are loaded onto a machine).

A unit the engine cannot place shows STATE unplaceable, and the engine's
reason in a REASON column (added only when some unit has one; --fields can
ask for reason).`,
		Args: exactArgs(0),
	}
	cmd.RunE = fleetVerb(g, f, func(ctx context.Context, c *fleetConn, _ []string) error {
		if _, err := parseFields(lf.fields, listUnitFilesFields); err != nil {
			return c.failf("%v", err)
		}
		if strings.Contains(","+lf.fields+",", ",tmachine,") {
			c.errf(`WARNING: The "tmachine" field is deprecated. Use "target" instead`)
		}
		units, err := c.units(ctx)
		if err != nil {
			return c.failf("Error retrieving list of units from repository: %v", err)
		}
		cols, err := unitFileColumns(lf.fields, cmd.Flags().Changed("fields"), units)
		if err != nil {
			return err
		}
		return printFleetTable(c.stdout, cols, unitFileRows(cols, units, c.machineLookup(ctx), lf.full), lf.noLegend)
	})
	lf.bind(cmd, defaultListUnitFilesFields, fieldsHelp("Unit file", listUnitFilesFields))
	return cmd
}

func newFleetMetadataCmd(g *globals, f *fleetFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "metadata",
		Short: "Set and remove machine metadata (atoll's; fleetctl had none)",
		Long: `Operator metadata overrides what a machine registered with, and stays when
the machine restarts. Units select machines by it with [X-Fleet]
MachineMetadata=. MACHINE is a machine ID or a prefix of one that only one
live machine has (the 8 characters list-machines shows).`,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "set MACHINE KEY VALUE",
			Short: "Set a metadata key of a machine",
			Args:  exactArgs(3),
			RunE: fleetVerb(g, f, func(ctx context.Context, c *fleetConn, args []string) error {
				m, err := c.resolveMachine(ctx, args[0])
				if err != nil {
					return err
				}
				cctx, cancel := c.call(ctx)
				defer cancel()
				if err := c.api.SetMachineMetadata(cctx, m.ID, args[1], args[2]); err != nil {
					return err
				}
				c.outf("Set %s=%s on %s", args[1], args[2], machineFullLegend(m, false))
				return nil
			}),
		},
		&cobra.Command{
			Use:     "rm MACHINE KEY",
			Aliases: []string{"remove", "unset"},
			Short:   "Remove a metadata key an operator set on a machine",
			Args:    exactArgs(2),
			RunE: fleetVerb(g, f, func(ctx context.Context, c *fleetConn, args []string) error {
				m, err := c.resolveMachine(ctx, args[0])
				if err != nil {
					return err
				}
				cctx, cancel := c.call(ctx)
				defer cancel()
				if err := c.api.DeleteMachineMetadata(cctx, m.ID, args[1]); err != nil {
					return err
				}
				c.outf("Removed %s from %s", args[1], machineFullLegend(m, false))
				return nil
			}),
		},
	)
	return cmd
}

// resolveMachine finds the live machine whose ID is arg, or the only one
// whose ID starts with it. A machine that is not live is taken by its
// full ID as given: its metadata stays for when it comes back.
func (c *fleetConn) resolveMachine(ctx context.Context, arg string) (*schema.Machine, error) {
	machines, err := c.listMachines(ctx)
	if err != nil {
		return nil, err
	}
	var matches []*schema.Machine
	for _, m := range machines {
		if m.ID == arg {
			return m, nil
		}
		if strings.HasPrefix(m.ID, arg) {
			matches = append(matches, m)
		}
	}
	switch len(matches) {
	case 0:
		return &schema.Machine{ID: arg}, nil
	case 1:
		return matches[0], nil
	}
	ids := make([]string, len(matches))
	for i, m := range matches {
		ids[i] = m.ID
	}
	sort.Strings(ids)
	return nil, usagef("machine %q is ambiguous: it starts %s", arg, strings.Join(ids, ", "))
}
