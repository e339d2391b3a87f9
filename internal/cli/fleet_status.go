package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/internal/fleet/fleetapi"
	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/journal"
	"atoll.dev/atoll/internal/unit"
)

// The verbs that read one unit: cat, status, journal. fleetctl ran
// systemctl and journalctl over SSH on the unit's machine; atoll reads
// the agents' reports (/fleet/v1/state) and the journal through the API,
// which fetches it from the owning machine's daemon.

// fleetOneUnitArg is fleetctl's check that a verb got one unit.
func fleetOneUnitArg(msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("%s", msg)
		}
		return nil
	}
}

func newFleetCatCmd(g *globals, f *fleetFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cat UNIT",
		Short: "Output the contents of a submitted unit",
		Long: `Outputs the unit file that is currently loaded in the cluster. Useful to verify
the correct version of a unit is running.`,
		Args: fleetOneUnitArg("One unit file must be provided"),
		RunE: fleetVerb(g, f, func(ctx context.Context, c *fleetConn, args []string) error {
			name := unitNameOf(args[0])
			u, err := c.unit(ctx, name)
			if err != nil {
				return c.failf("Error retrieving Unit %s: %v", name, err)
			}
			if u == nil {
				return c.failf("Unit %s not found", name)
			}
			// As fleet writes it, with no newline added: the contents
			// must not be modified.
			_, err = c.stdout.Write((&unit.File{Options: toUnitOptions(u.Options)}).Bytes())
			return err
		}),
	}
}

func newFleetStatusCmd(g *globals, f *fleetFlags) *cobra.Command {
	var (
		lines   int
		sshPort int
	)
	cmd := &cobra.Command{
		Use:   "status [--lines=N] UNIT...",
		Short: "Output the status of one or more units in the cluster",
		Long: `Output the status of one or more units currently running in the cluster, as
systemctl status shows it as far as the agents report it: the machine, the
Loaded and Active states, and the unit's last journal lines, read from the
machine through the API. A global unit is shown once per machine it runs on.`,
	}
	cmd.RunE = fleetUnitVerb(g, f, nil, func(ctx context.Context, c *fleetConn, args []string) error {
		shown := 0
		for _, arg := range args {
			name := unitNameOf(arg)
			u, err := c.unit(ctx, name)
			if err != nil {
				return c.failf("Error retrieving unit: %v", err)
			}
			if u == nil {
				return c.failf("Unit %s does not exist.", name)
			}
			global := isGlobalUnit(u.Options)
			if !global && (u.CurrentState == schema.StateInactive || u.CurrentState == "") {
				return c.failf("Unit %s does not appear to be loaded.", u.Name)
			}
			states, err := c.unitStates(ctx, "", u.Name)
			if err != nil {
				return c.failf("Error retrieving unit state of %s: %v", u.Name, err)
			}
			for _, st := range statusTargets(u, states, global) {
				// This extra newline is here to match systemctl status
				// output.
				if shown > 0 {
					fmt.Fprintln(c.stdout)
				}
				shown++
				printFleetUnitStatus(c.stdout, u, st, c.machineLookup(ctx))
				if lines > 0 {
					c.printStatusJournal(ctx, u.Name, st.MachineID, lines)
				}
			}
		}
		return nil
	})
	cmd.Flags().IntVarP(&lines, "lines", "n", 10, "journal lines to show")
	cmd.Flags().IntVar(&sshPort, "ssh-port", 22, "ignored: "+fleetNoSSH)
	return cmd
}

// statusTargets are the reports to show a unit's status from: the one of
// its machine (or an empty one when the machine has not reported yet),
// or for a global unit every machine's.
func statusTargets(u *schema.Unit, states []*schema.UnitState, global bool) []*schema.UnitState {
	if global {
		return states
	}
	for _, st := range states {
		if st.MachineID == u.MachineID {
			return []*schema.UnitState{st}
		}
	}
	return []*schema.UnitState{{Name: u.Name, MachineID: u.MachineID}}
}

// printFleetUnitStatus prints systemctl status's head from what the
// agent reports.
func printFleetUnitStatus(w io.Writer, u *schema.Unit, st *schema.UnitState, machines machineLookup) {
	title := u.Name
	for _, o := range u.Options {
		if o.Section == "Unit" && o.Name == "Description" {
			desc := o.Value
			// The name's specifiers (%i, %p, ...), as systemctl shows it;
			// those of the machine are left as written.
			if n, err := unit.ParseName(u.Name); err == nil {
				if expanded, err := unit.Expand(desc, unit.Context{Name: n}); err == nil {
					desc = expanded
				}
			}
			title += " - " + desc
			break
		}
	}
	fmt.Fprintf(w, "* %s\n", title)
	if st.SystemdLoadState == "" && st.SystemdActiveState == "" {
		fmt.Fprintf(w, "     Loaded: unknown (the machine has not reported the unit yet)\n")
		fmt.Fprintf(w, "     Active: unknown\n")
	} else {
		fmt.Fprintf(w, "     Loaded: %s\n", dash(st.SystemdLoadState))
		active := dash(st.SystemdActiveState)
		if st.SystemdSubState != "" {
			active += " (" + st.SystemdSubState + ")"
		}
		fmt.Fprintf(w, "     Active: %s\n", active)
	}
	fmt.Fprintf(w, "    Machine: %s\n", machineColumn(st.MachineID, machines, true))
	fleetState := "desired " + dash(u.DesiredState)
	if !isGlobalUnit(u.Options) {
		fleetState += ", current " + dash(u.CurrentState)
	}
	fmt.Fprintf(w, "      Fleet: %s\n", fleetState)
	if want := optionsHash(u.Options).String(); st.Hash != "" && st.Hash != want {
		fmt.Fprintf(w, "       Hash: the machine runs %.7s, the registry holds %.7s\n", st.Hash, want)
	}
}

// printStatusJournal prints a unit's last journal lines after a blank
// line, as systemctl status; a journal that cannot be read is a warning,
// since the status itself was shown.
func (c *fleetConn) printStatusJournal(ctx context.Context, name, machineID string, lines int) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	body, err := c.api.Journal(ctx, name, fleetapi.JournalOptions{Lines: lines, Machine: machineID})
	if err == nil {
		fmt.Fprintln(c.stdout)
		err = printJournalStream(ctx, c.stdout, body, name, "short")
		body.Close()
	}
	if err != nil {
		c.errf("WARNING: journal of %s on %s: %v", name, machineIDLegend(machineID, false), err)
	}
}

func newFleetJournalCmd(g *globals, f *fleetFlags) *cobra.Command {
	var (
		o       fleetapi.JournalOptions
		output  string
		machine string
		sudo    bool
		sshPort int
	)
	cmd := &cobra.Command{
		Use:   "journal [--lines=N] [-f|--follow] [--output=short|cat|json] [--machine=ID] UNIT",
		Short: "Print the journal of a unit in the cluster to stdout",
		Long: `Outputs the journal of a unit, read from the machine that the unit occupies
through the API, as journalctl prints it.

Read the last 10 lines:
fleetctl journal foo.service

Read the last 100 lines and follow:
fleetctl journal --lines 100 -f foo.service

A global unit runs on several machines: name one with --machine.`,
		Args: fleetOneUnitArg("One unit file must be provided."),
	}
	cmd.RunE = fleetVerb(g, f, func(ctx context.Context, c *fleetConn, args []string) error {
		switch output {
		case "short", "cat", "json":
		default:
			return usagef("--output %q: want short, cat or json", output)
		}
		name := unitNameOf(args[0])
		u, err := c.unit(ctx, name)
		if err != nil {
			return c.failf("Error retrieving unit %s: %v", name, err)
		}
		if u == nil {
			return c.failf("Unit %s does not exist.", name)
		}
		switch {
		case machine != "":
			m, err := c.resolveMachine(ctx, machine)
			if err != nil {
				return err
			}
			o.Machine = m.ID
		case isGlobalUnit(u.Options):
			return c.failf("Unable to retrieve journal of global unit %s: name one of its machines with --machine.", name)
		case u.CurrentState == schema.StateInactive || u.CurrentState == "":
			return c.failf("Unit %s does not appear to be running.", name)
		default:
			o.Machine = u.MachineID
		}
		body, err := c.api.Journal(ctx, name, o)
		if err != nil {
			return c.failf("Error retrieving journal of unit %s: %v", name, err)
		}
		defer body.Close()
		return printJournalStream(ctx, c.stdout, body, name, output)
	})
	cmd.Flags().IntVarP(&o.Lines, "lines", "n", 10, "Number of recent log lines to return")
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "Continuously print new entries as they are appended to the journal.")
	cmd.Flags().StringVarP(&output, "output", "o", "short", "Output mode: short (journalctl's), cat (the lines alone) or json (journald's fields)")
	cmd.Flags().StringVar(&machine, "machine", "", "the machine whose journal to read (for global units)")
	cmd.Flags().BoolVar(&sudo, "sudo", false, "ignored: the journal is read through the API")
	cmd.Flags().IntVar(&sshPort, "ssh-port", 22, "ignored: "+fleetNoSSH)
	return cmd
}

// printJournalStream prints a journal stream, one journald-style JSON
// entry a line, the way `atoll unit journal` prints the local one:
// "short" as journalctl (time, unit[pid]: line), "cat" the lines alone,
// "json" as received.
func printJournalStream(ctx context.Context, w io.Writer, body io.Reader, name, output string) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if output == "json" {
			fmt.Fprintf(w, "%s\n", sc.Bytes())
			continue
		}
		var e journal.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("journal of %s: %w", name, err)
		}
		if output == "cat" {
			fmt.Fprintf(w, "%s\n", strings.TrimSuffix(e.Line, "\n"))
			continue
		}
		who := e.Unit
		if who == "" {
			who = name
		}
		if e.PID != 0 {
			who += fmt.Sprintf("[%d]", e.PID)
		}
		fmt.Fprintf(w, "%s %s: %s\n", e.Time.Local().Format("Jan 02 15:04:05"), who, e.Line)
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("journal of %s: %w", name, err)
	}
	return nil
}
