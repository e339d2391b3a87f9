package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/client"
)

// newUnitCmd is systemctl's and journalctl's verbs for the local daemon's
// unit manager.
func newUnitCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "unit",
		Short: "Run systemd unit files on this machine (through its daemon)",
		Long: `Unit files are systemd's. "atoll unit load" gives them to this machine's
daemon, which runs them with its own supervisor; the other verbs act on
them by name, an instance of a loaded template (web@1.service) included.`,
	}
	local := func() client.Local { return client.Local{RunDir: g.runDir} }
	cmd.AddCommand(
		&cobra.Command{
			Use:   "load FILE...",
			Short: "Load unit files (templates included) under their file names",
			Args:  minArgs(1),
			RunE: func(cmd *cobra.Command, files []string) error {
				return forEachRef(g.stdout, files, func(file string) error {
					content, err := os.ReadFile(file)
					if err != nil {
						return err
					}
					_, err = local().LoadUnit(cmd.Context(), filepath.Base(file), content)
					return err
				}, "loaded %s")
			},
		},
		&cobra.Command{
			Use:   "unload NAME...",
			Short: "Forget units that are not running",
			Args:  minArgs(1),
			RunE: func(cmd *cobra.Command, names []string) error {
				return forEachRef(g.stdout, names, func(name string) error {
					return local().UnloadUnit(cmd.Context(), name)
				}, "unloaded %s")
			},
		},
		newUnitListCmd(g, local),
		newUnitListTimersCmd(g, local),
		newUnitStatusCmd(g, local),
		&cobra.Command{
			Use:   "cat NAME",
			Short: "Print a unit's file as loaded",
			Args:  exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				content, err := local().UnitFile(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				_, err = g.stdout.Write(content)
				return err
			},
		},
		newUnitJournalCmd(g, local),
		&cobra.Command{
			Use:   "daemon-reload",
			Short: "Reread every unit file, as systemctl daemon-reload",
			Long: `Rereads the unit files and drop-ins where "atoll unit load" put them, for
files changed by hand: new files become units, changed files apply to
stopped units at once and to running ones at their next start.`,
			Args: exactArgs(0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return local().DaemonReload(cmd.Context())
			},
		},
	)
	for _, action := range []struct{ verb, short, done string }{
		{"start", "Start units and wait until they are active", "started %s"},
		{"stop", "Stop units and wait until they are inactive", "stopped %s"},
		{"restart", "Stop and start units", "restarted %s"},
		{"reload", "Run the units' ExecReload=", "reloaded %s"},
		{"enable", "Start the units whenever the daemon starts ([Install])", "enabled %s"},
		{"disable", "Stop starting the units with the daemon", "disabled %s"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   action.verb + " NAME...",
			Short: action.short,
			Args:  minArgs(1),
			RunE: func(cmd *cobra.Command, names []string) error {
				return forEachRef(g.stdout, names, func(name string) error {
					_, err := local().UnitAction(cmd.Context(), name, action.verb)
					return err
				}, action.done)
			},
		})
	}
	return cmd
}

func newUnitListCmd(g *globals, local func() client.Local) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List units: UNIT LOAD ACTIVE SUB DESCRIPTION, as systemctl list-units",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(lf.output); err != nil {
				return err
			}
			units, err := local().Units(cmd.Context())
			if err != nil {
				return err
			}
			if lf.output == "json" {
				return writeJSONOut(g.stdout, units)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 1, ' ', 0)
			if !lf.noLegend {
				fmt.Fprintln(tw, "UNIT\tLOAD\tACTIVE\tSUB\tDESCRIPTION")
			}
			for _, u := range units {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Load, u.Active, u.Sub, u.Description)
			}
			return tw.Flush()
		},
	}
	lf.bind(cmd, "unused: names are never shortened")
	cmd.Flags().MarkHidden("full")
	return cmd
}

func newUnitListTimersCmd(g *globals, local func() client.Local) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "list-timers",
		Short: "List timers: NEXT LEFT LAST PASSED UNIT ACTIVATES, as systemctl list-timers",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(lf.output); err != nil {
				return err
			}
			units, err := local().Units(cmd.Context())
			if err != nil {
				return err
			}
			timers := timersByNextElapse(units)
			if lf.output == "json" {
				return writeJSONOut(g.stdout, timers)
			}
			printTimers(g.stdout, timers, time.Now(), lf.noLegend)
			return nil
		},
	}
	lf.bind(cmd, "unused: names are never shortened")
	cmd.Flags().MarkHidden("full")
	return cmd
}

// timersByNextElapse picks the timers out of units, the next to elapse
// first and those that will not elapse again last, as systemctl
// list-timers orders them.
func timersByNextElapse(units []api.UnitState) []api.UnitState {
	var timers []api.UnitState
	for _, u := range units {
		if strings.HasSuffix(u.Name, ".timer") {
			timers = append(timers, u)
		}
	}
	sort.SliceStable(timers, func(i, j int) bool {
		a, b := timers[i].NextElapse, timers[j].NextElapse
		if a.IsZero() != b.IsZero() {
			return b.IsZero()
		}
		return a.Before(b)
	})
	return timers
}

// printTimers prints systemctl list-timers' table.
func printTimers(w io.Writer, timers []api.UnitState, now time.Time, noLegend bool) {
	const layout = "Mon 2006-01-02 15:04:05 MST"
	when := func(t time.Time, left bool) (string, string) {
		switch {
		case t.IsZero():
			return "-", "-"
		case left:
			return t.Format(layout), humanAgo(t.Sub(now)) + " left"
		default:
			return t.Format(layout), humanAgo(now.Sub(t)) + " ago"
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	if !noLegend {
		fmt.Fprintln(tw, "NEXT\tLEFT\tLAST\tPASSED\tUNIT\tACTIVATES")
	}
	for _, t := range timers {
		next, left := when(t.NextElapse, true)
		last, passed := when(t.LastTrigger, false)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", next, left, last, passed, t.Name, t.Triggers)
	}
	tw.Flush()
	if !noLegend {
		fmt.Fprintf(w, "\n%d timers listed.\n", len(timers))
	}
}

func newUnitStatusCmd(g *globals, local func() client.Local) *cobra.Command {
	var lines int
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show a unit's state, main PID, cgroup and last journal lines, as systemctl status",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := local().Unit(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			printUnitStatus(g.stdout, u)
			if lines <= 0 {
				return nil
			}
			fmt.Fprintln(g.stdout)
			return printJournal(cmd.Context(), g.stdout, local(), args[0], client.JournalOptions{Lines: lines}, "short")
		},
	}
	cmd.Flags().IntVarP(&lines, "lines", "n", 10, "journal lines to show")
	return cmd
}

// printUnitStatus prints systemctl status's head.
func printUnitStatus(w io.Writer, u api.UnitState) {
	title := u.Name
	if u.Description != "" {
		title += " - " + u.Description
	}
	fmt.Fprintf(w, "* %s\n", title)
	loaded := string(u.Load)
	if u.Enabled != "" {
		loaded += "; " + u.Enabled
	}
	fmt.Fprintf(w, "     Loaded: %s\n", loaded)
	active := fmt.Sprintf("%s (%s)", u.Active, u.Sub)
	if !u.Since.IsZero() {
		active += fmt.Sprintf(" since %s; %s ago", u.Since.Format("Mon 2006-01-02 15:04:05 MST"), humanAgo(time.Since(u.Since)))
	}
	fmt.Fprintf(w, "     Active: %s\n", active)
	if u.Result != "" && u.Result != "success" {
		fmt.Fprintf(w, "     Result: %s\n", u.Result)
	}
	if u.Status != "" {
		fmt.Fprintf(w, "     Status: %q\n", u.Status)
	}
	if u.MainPID != 0 {
		fmt.Fprintf(w, "   Main PID: %d\n", u.MainPID)
	} else if u.ExitCode != "" {
		fmt.Fprintf(w, "   Main PID: (code=%s, status=%d)\n", u.ExitCode, u.ExitStatus)
	}
	if u.Cgroup != "" {
		fmt.Fprintf(w, "     CGroup: %s\n", u.Cgroup)
		for _, pid := range cgroupPIDs(u.Cgroup) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			fmt.Fprintf(w, "             `-%d %s\n", pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
}

// cgroupPIDs lists the processes of a cgroup, from the first hierarchy
// that has it (the CLI runs on the daemon's machine).
func cgroupPIDs(cgroup string) []int {
	for _, h := range []string{"pids", "systemd", "memory", "unified", ""} {
		data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", h, cgroup, "cgroup.procs"))
		if err != nil {
			continue
		}
		var pids []int
		for _, f := range strings.Fields(string(data)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	return nil
}

func newUnitJournalCmd(g *globals, local func() client.Local) *cobra.Command {
	var (
		o      client.JournalOptions
		since  string
		output string
	)
	cmd := &cobra.Command{
		Use:   "journal NAME",
		Short: "Print a unit's journal, as journalctl -u NAME",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "short" && output != "json" {
				return usagef("--output %q: want short or json", output)
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return usagef("--since %q: %v", since, err)
				}
				o.Since = t
			}
			return printJournal(cmd.Context(), g.stdout, local(), args[0], o, output)
		},
	}
	cmd.Flags().IntVarP(&o.Lines, "lines", "n", 0, "only the last N lines")
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().StringVar(&since, "since", "", `lines from this time on: RFC 3339, "2006-01-02 15:04:05", or a duration ago such as 10m`)
	cmd.Flags().StringVarP(&output, "output", "o", "short", "short or json (journald's field names)")
	return cmd
}

// parseSince reads --since: an RFC 3339 time, journalctl's "YYYY-MM-DD
// HH:MM:SS" in local time, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(strings.TrimSuffix(s, " ago")); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("want RFC 3339, YYYY-MM-DD HH:MM:SS or a duration such as 10m")
}

// printJournal prints a unit's journal: "short" as journalctl does
// (time, unit[pid]: line), "json" as journald's JSON.
func printJournal(ctx context.Context, w io.Writer, c client.Local, name string, o client.JournalOptions, output string) error {
	body, err := c.Journal(ctx, name, o)
	if err != nil {
		return err
	}
	defer body.Close()
	return printJournalStream(ctx, w, body, name, output)
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
