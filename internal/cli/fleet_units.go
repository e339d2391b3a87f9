package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/unit"
)

// The verbs that put units in the registry and start them: submit, load,
// start, and the waiting they share with the others. They follow
// fleetctl v1.0.0 (coreos/fleet: fleetctl/fleetctl.go lazyCreateUnits,
// setTargetStateOfUnits, waitForUnitStates, and one file per verb),
// output included.

const (
	// fleetPollInterval and fleetAttemptWindow are fleetctl's waitForState:
	// a unit is polled every 250ms, and one --block-attempts attempt lasts
	// defaultSleepTime, 2s.
	fleetPollInterval  = 250 * time.Millisecond
	fleetAttemptWindow = 2 * time.Second
)

// fleetUnitFlags are the flags of the verbs that change units.
type fleetUnitFlags struct {
	noBlock       bool
	blockAttempts int
	replace       bool
	sign          bool
}

// attempts is fleetctl's getBlockAttempts: -1 not to wait, 0 to wait
// for ever, n for n attempts.
func (f fleetUnitFlags) attempts() int {
	switch {
	case f.noBlock:
		return -1
	case f.blockAttempts > 0:
		return f.blockAttempts
	}
	return 0
}

func (f *fleetUnitFlags) bindSign(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.sign, "sign", false, "DEPRECATED - this option cannot be used")
}

func (f *fleetUnitFlags) bindBlock(cmd *cobra.Command, what string) {
	cmd.Flags().IntVar(&f.blockAttempts, "block-attempts", 0,
		fmt.Sprintf("Wait until the units are %s, performing up to N attempts before giving up. A value of 0 indicates no limit. Does not apply to global units.", what))
	cmd.Flags().BoolVar(&f.noBlock, "no-block", false,
		fmt.Sprintf("Do not wait until the units are %s before exiting. Always the case for global units.", what))
}

func (f *fleetUnitFlags) bindReplace(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.replace, "replace", false, "Replace the units in the cluster with new versions of their local files.")
}

// fleetUnitVerb runs a verb over unit arguments, brace expressions
// expanded, with fleetctl's handling of no arguments and --sign.
func fleetUnitVerb(g *globals, f *fleetFlags, uf *fleetUnitFlags,
	run func(ctx context.Context, c *fleetConn, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if uf != nil && uf.sign {
			fleetPrintf(g.stderr, fleetSignWarning)
			return exitCode{2}
		}
		args, err := expandUnitArgs(args)
		if err != nil {
			return err
		}
		if len(args) == 0 {
			fleetPrintf(g.stderr, "No units given")
			return nil
		}
		c, err := f.connect(g)
		if err != nil {
			return err
		}
		return run(cmd.Context(), c, args)
	}
}

func newFleetSubmitCmd(g *globals, f *fleetFlags) *cobra.Command {
	var uf fleetUnitFlags
	cmd := &cobra.Command{
		Use:   "submit UNIT...",
		Short: "Upload one or more units to the cluster without starting them",
		Long: `Upload one or more units to the cluster without starting them. Useful
for validating units before they are started.

This operation is idempotent; if a named unit already exists in the cluster, it will not be resubmitted.`,
	}
	cmd.RunE = fleetUnitVerb(g, f, &uf, func(ctx context.Context, c *fleetConn, args []string) error {
		if err := c.createUnits(ctx, "submit", args, uf); err != nil {
			return c.failf("Error creating units: %v", err)
		}
		return nil
	})
	uf.bindSign(cmd)
	uf.bindReplace(cmd)
	return cmd
}

func newFleetLoadCmd(g *globals, f *fleetFlags) *cobra.Command {
	var uf fleetUnitFlags
	cmd := &cobra.Command{
		Use:   "load [--no-block|--block-attempts=N] UNIT...",
		Short: "Schedule one or more units in the cluster, first submitting them if necessary.",
		Long: `Load one or many units in the cluster into systemd, but do not start.

Load operations on units which are not global are synchronous: the command
waits until the units are loaded (see --no-block and --block-attempts), and
stops at once when the engine cannot place one, saying why.`,
	}
	cmd.RunE = fleetUnitVerb(g, f, &uf, func(ctx context.Context, c *fleetConn, args []string) error {
		return c.loadOrStart(ctx, "load", schema.StateLoaded, args, uf)
	})
	uf.bindSign(cmd)
	uf.bindBlock(cmd, "loaded")
	uf.bindReplace(cmd)
	return cmd
}

func newFleetStartCmd(g *globals, f *fleetFlags) *cobra.Command {
	var uf fleetUnitFlags
	cmd := &cobra.Command{
		Use:   "start [--no-block|--block-attempts=N] UNIT...",
		Short: "Instruct systemd to start one or more units in the cluster, first submitting and loading if necessary.",
		Long: `Start one or many units on the cluster.

Start operations on units which are not global are synchronous: the command
waits until the units are launched and active (see --no-block and
--block-attempts), and stops at once when the engine cannot place one,
saying why.

Start three instances of a local template web@.service:
fleetctl start 'web@{1..3}'`,
	}
	cmd.RunE = fleetUnitVerb(g, f, &uf, func(ctx context.Context, c *fleetConn, args []string) error {
		return c.loadOrStart(ctx, "start", schema.StateLaunched, args, uf)
	})
	uf.bindSign(cmd)
	uf.bindBlock(cmd, "launched")
	uf.bindReplace(cmd)
	return cmd
}

// loadOrStart is fleetctl's runLoadUnit and runStartUnit.
func (c *fleetConn) loadOrStart(ctx context.Context, verb, state string, args []string, uf fleetUnitFlags) error {
	if err := c.createUnits(ctx, verb, args, uf); err != nil {
		return c.failf("Error creating units: %v", err)
	}
	names := make([]string, len(args))
	for i, a := range args {
		names[i] = unitNameOf(a)
	}
	triggered, err := c.setTargetStates(ctx, names, state)
	if err != nil {
		if verb == "load" {
			return c.failf("Error loading units: %v", err)
		}
		return c.failf("Error starting units: %v", err)
	}
	var waiting []string
	for _, u := range triggered {
		if isGlobalUnit(u.Options) {
			c.outf("Triggered global unit %s %s", u.Name, verb)
		} else {
			waiting = append(waiting, u.Name)
		}
	}
	if err := c.tryWaitForUnitStates(ctx, waiting, verb, state, uf.attempts()); err != nil {
		return c.waitFailed(err, "Error waiting for unit states, exit status: %v", err)
	}
	if state != schema.StateLaunched {
		return nil
	}
	if uf.attempts() < 0 {
		// fleetctl's tryWaitForSystemdActiveState says it again: scripts
		// written against fleetctl see the same two lines.
		for _, name := range waiting {
			c.outf("Triggered unit %s start", name)
		}
		return nil
	}
	if err := c.waitActive(ctx, waiting, uf.attempts()); err != nil {
		c.errf("Error waiting for units: %v", err)
		return c.failf("Error waiting for systemd unit states, err: %v", err)
	}
	return nil
}

// createUnits makes sure each argument's unit is in the registry, in
// fleetctl's order (lazyCreateUnits): a unit already there is kept,
// unless --replace and its local file differs; otherwise it is created
// from the local file, or from its template in the registry or on disk.
// The first failure stops it; units created before it stay.
func (c *fleetConn) createUnits(ctx context.Context, verb string, args []string, uf fleetUnitFlags) error {
	var created []string
	for _, arg := range args {
		arg = withDefaultType(arg)
		name := unitNameOf(arg)
		create, existed, err := c.checkUnitCreation(ctx, verb, arg, name, uf.replace)
		if err != nil {
			return err
		}
		if !create {
			continue
		}
		file, err := c.unitFileFor(ctx, arg, name, uf.replace)
		if err != nil {
			return err
		}
		if err := c.createUnit(ctx, name, file); err != nil {
			return err
		}
		// A replaced unit keeps whatever state the API gives it; a new
		// one is inactive at once, as fleetctl waits to see.
		if !existed {
			created = append(created, name)
		}
	}
	// fleetctl waits here whatever --no-block says: a new unit is
	// inactive at once.
	if err := c.waitUnitStates(ctx, created, schema.StateInactive, uf.blockAttempts); err != nil {
		c.errf("Error waiting on unit creation: %v", err)
		//lint:ignore ST1005 fleetctl's words, which scripts match
		return errors.New("One or more errors creating units")
	}
	return nil
}

// checkUnitCreation says whether to create (or replace) the unit of arg,
// and whether it exists (fleetctl's checkUnitCreation).
func (c *fleetConn) checkUnitCreation(ctx context.Context, verb, arg, name string, replace bool) (create, existed bool, err error) {
	u, err := c.unit(ctx, name)
	if err != nil {
		return false, false, fmt.Errorf("error retrieving Unit(%s) from Registry: %w", name, err)
	}
	if u == nil {
		return true, false, nil
	}
	different, err := c.localUnitDifferent(arg, u, replace)
	if !replace {
		return false, true, nil
	}
	if err != nil {
		return false, true, err
	}
	if !different {
		c.outf("Found same Unit(%s) in Registry, nothing to do", u.Name)
		return false, true, nil
	}
	return c.replaceAllowed(verb, u), true, nil
}

// fleetReplaceStates are the desired states in which each verb may
// replace a unit (fleetctl's checkReplaceUnitState).
var fleetReplaceStates = map[string][]string{
	"submit": {schema.StateInactive},
	"load":   {schema.StateInactive, schema.StateLoaded},
	"start":  {schema.StateInactive, schema.StateLoaded, schema.StateLaunched},
}

func (c *fleetConn) replaceAllowed(verb string, u *schema.Unit) bool {
	if slices.Contains(fleetReplaceStates[verb], u.DesiredState) {
		return true
	}
	c.errf("Warning: can not replace Unit(%s) in state '%s', use the appropriate command", u.Name, u.DesiredState)
	return false
}

// localUnitDifferent compares the registry's unit with the local file
// arg, or with the local template of the instance arg names, warning
// when they differ and --replace is not given (fleetctl's
// isLocalUnitDifferent).
func (c *fleetConn) localUnitDifferent(arg string, su *schema.Unit, replace bool) (bool, error) {
	same, err := matchLocalFile(arg, su)
	if err == nil {
		if !same && !replace {
			c.errf("WARNING: Unit %s in registry differs from local unit file %s. Add --replace to override.", su.Name, arg)
		}
		return !same, nil
	}
	info, perr := unit.ParseName(path.Base(arg))
	if perr != nil {
		return false, fmt.Errorf("error extracting information from unit name %s", arg)
	}
	if !info.IsInstance() {
		return false, fmt.Errorf("error Unit %s does not seem to be a template unit", arg)
	}
	templFile := path.Join(path.Dir(arg), info.TemplateName())
	same, err = matchLocalFile(templFile, su)
	if err == nil {
		if !same && !replace {
			c.errf("WARNING: Unit %s in registry differs from local template unit file %s. Add --replace to override.", su.Name, arg)
		}
		return !same, nil
	}
	return false, err
}

// matchLocalFile tells whether the file holds the unit's options, by
// fleet's hash.
func matchLocalFile(file string, su *schema.Unit) (bool, error) {
	if _, err := os.Stat(file); err != nil {
		return false, err
	}
	f, _, err := unit.ReadFile(file)
	if err != nil {
		return false, err
	}
	return f.Hash() == optionsHash(su.Options), nil
}

// unitFileFor finds the file of a unit to create: the local file arg,
// or, when there is none and arg names an instance, its template
// (fleetctl's getUnitFile).
func (c *fleetConn) unitFileFor(ctx context.Context, arg, name string, replace bool) (*unit.File, error) {
	if _, err := os.Stat(arg); !os.IsNotExist(err) {
		f, err := c.readUnitFile(arg)
		if err != nil {
			return nil, fmt.Errorf("failed getting Unit(%s) from file: %w", arg, err)
		}
		return f, nil
	}
	info, err := unit.ParseName(name)
	if err != nil {
		return nil, fmt.Errorf("error extracting information from unit name %s: %w", name, err)
	}
	if !info.IsInstance() {
		return nil, fmt.Errorf("unable to find Unit(%s) in Registry or on filesystem", name)
	}
	f, err := c.templateFile(ctx, info, arg, replace)
	if err != nil {
		return nil, fmt.Errorf("failed getting Unit(%s) from template: %w", arg, err)
	}
	return f, nil
}

// templateFile reads the template of an instance from the registry, or
// else from the local directory of fileName (fleetctl's
// getUnitFileFromTemplate).
func (c *fleetConn) templateFile(ctx context.Context, info unit.Name, fileName string, replace bool) (*unit.File, error) {
	template := info.TemplateName()
	tmpl, err := c.unit(ctx, template)
	if err != nil {
		return nil, fmt.Errorf("error retrieving template Unit(%s) from Registry: %w", template, err)
	}
	if tmpl != nil {
		// Only for its warning, as fleetctl.
		_, _ = c.localUnitDifferent(fileName, tmpl, replace)
		return &unit.File{Name: template, Options: toUnitOptions(tmpl.Options)}, nil
	}
	filePath := path.Join(path.Dir(fileName), template)
	if _, err := os.Stat(filePath); os.IsNotExist(err) {
		return nil, fmt.Errorf("unable to find template Unit(%s) in Registry or on filesystem", template)
	}
	f, err := c.readUnitFile(filePath)
	if err != nil {
		return nil, fmt.Errorf("unable to load template Unit(%s) from file: %w", template, err)
	}
	return f, nil
}

// readUnitFile parses a local unit file, printing what systemd would
// ignore in it.
func (c *fleetConn) readUnitFile(file string) (*unit.File, error) {
	f, warnings, err := unit.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		c.errf("WARNING: %s", w)
	}
	return f, nil
}

// createUnit checks a unit as fleet's API will, then submits it under
// name with file's options (fleetctl's createUnit).
func (c *fleetConn) createUnit(ctx context.Context, name string, file *unit.File) error {
	if _, err := unit.ParseName(name); err != nil {
		return err
	}
	f := &unit.File{Name: name, Options: file.Options}
	_, warnings, err := f.Fleet()
	if err != nil {
		return fmt.Errorf("unit %s: %w", name, err)
	}
	for _, w := range warnings {
		c.errf("WARNING: Unit %s: %s", name, w.Msg)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	if err := c.api.CreateUnit(ctx, &schema.Unit{Name: name, Options: toSchemaOptions(f.Options)}); err != nil {
		return fmt.Errorf("failed creating unit %s: %w", name, err)
	}
	return nil
}

// setTargetStates sets the desired state of units, skipping those
// already there, and returns the units it changed (fleetctl's
// setTargetStateOfUnits). The first failure stops it.
func (c *fleetConn) setTargetStates(ctx context.Context, names []string, state string) ([]*schema.Unit, error) {
	var triggered []*schema.Unit
	for _, name := range names {
		u, err := c.unit(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("error retrieving unit %s from registry: %w", name, err)
		}
		if u == nil {
			return nil, fmt.Errorf("unable to find unit %s", name)
		}
		if u.DesiredState == state {
			continue
		}
		if err := c.setTargetState(ctx, u.Name, state); err != nil {
			return nil, err
		}
		triggered = append(triggered, u)
	}
	return triggered, nil
}

// unplaceableError is atoll's answer where fleetctl hangs: the engine
// could not place the unit, and says why.
type unplaceableError struct{ unit, reason string }

func (e *unplaceableError) Error() string {
	return fmt.Sprintf("Unit %s cannot be placed: %s", e.unit, e.reason)
}

// waitFailed ends a verb whose wait failed: an unplaceable unit with its
// reason alone, anything else with the verb's fleetctl message.
func (c *fleetConn) waitFailed(err error, format string, args ...any) error {
	var unplaceable *unplaceableError
	if errors.As(err, &unplaceable) {
		return exitCode{1}
	}
	return c.failf(format, args...)
}

// tryWaitForUnitStates waits for units to reach state, or with attempts
// -1 (--no-block) only says it asked (fleetctl's tryWaitForUnitStates).
func (c *fleetConn) tryWaitForUnitStates(ctx context.Context, names []string, verb, state string, attempts int) error {
	if attempts < 0 {
		for _, name := range names {
			c.outf("Triggered unit %s %s", name, verb)
		}
		return nil
	}
	err := c.waitUnitStates(ctx, names, state, attempts)
	var unplaceable *unplaceableError
	switch {
	case errors.As(err, &unplaceable):
		c.errf("%v", err)
	case err != nil:
		c.errf("Error waiting for units: %v", err)
	}
	return err
}

// waitUnitStates polls units until each one's current state is state,
// printing "Unit NAME STATE [on MACHINE]" as each gets there. With
// maxAttempts > 0 it gives up after that many attempts of 2s; with 0 it
// waits until ctx ends. Unlike fleetctl it stops at once when the engine
// says a unit cannot be placed (an *unplaceableError) or when a unit is
// destroyed meanwhile.
// unplaceableAfter is how long the engine's reason not to place a unit
// must hold before a wait gives up on the unit.
const unplaceableAfter = time.Second

// reasonSeen is a reason not to place a unit and when it was first read.
type reasonSeen struct {
	reason string
	since  time.Time
}

func (c *fleetConn) waitUnitStates(ctx context.Context, names []string, state string, maxAttempts int) error {
	pending := slices.Clone(names)
	var deadline time.Time
	if maxAttempts > 0 {
		deadline = time.Now().Add(time.Duration(maxAttempts) * fleetAttemptWindow)
	}
	machines := c.machineLookup(ctx)
	reasons := map[string]reasonSeen{}
	ticker := time.NewTicker(fleetPollInterval)
	defer ticker.Stop()
	for {
		var still []string
		for _, name := range pending {
			u, err := c.unit(ctx, name)
			switch {
			case err != nil:
				// Retried, as fleetctl retries: the API may be restarting.
				still = append(still, name)
				continue
			case u == nil:
				return fmt.Errorf("unit %s was destroyed while waiting for it to report state %s", name, state)
			case u.Reason != "" && state != schema.StateInactive:
				// A reason read right after a change (new metadata, a
				// machine back) may be the engine's previous word: it must
				// hold for a second, long past the engine's reaction.
				seen, ok := reasons[name]
				if !ok || seen.reason != u.Reason {
					reasons[name] = reasonSeen{u.Reason, time.Now()}
					still = append(still, name)
					continue
				}
				if time.Since(seen.since) < unplaceableAfter {
					still = append(still, name)
					continue
				}
				return &unplaceableError{unit: name, reason: u.Reason}
			}
			current := u.CurrentState
			if isGlobalUnit(u.Options) {
				current = u.DesiredState
			}
			if current != state {
				still = append(still, name)
				continue
			}
			msg := fmt.Sprintf("Unit %s %s", name, u.CurrentState)
			if u.MachineID != "" {
				if m := machines(u.MachineID); m != nil {
					msg += " on " + machineFullLegend(m, false)
				}
			}
			c.outf("%s", msg)
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for unit %s to report state %s", pending[0], state)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for unit %s to report state %s: %w", pending[0], state, ctx.Err())
		case <-ticker.C:
		}
	}
}

// waitActive checks that launched units are active in systemd's terms
// on their machines (fleetctl's tryWaitForSystemdActiveState): within
// one attempt window per --block-attempts attempt (one for 0), and at
// once when a unit has failed.
func (c *fleetConn) waitActive(ctx context.Context, names []string, attempts int) error {
	window := fleetAttemptWindow * time.Duration(max(attempts, 1))
	for _, name := range names {
		deadline := time.Now().Add(window)
		for {
			states, err := c.unitStates(ctx, "", name)
			if err == nil && len(states) > 0 {
				us := states[0]
				if us.SystemdActiveState == "active" && us.SystemdLoadState == "loaded" {
					break
				}
				if us.SystemdActiveState == "failed" {
					return fmt.Errorf("unit %s failed on %s: %s (%s)", name,
						machineColumn(us.MachineID, c.machineLookup(ctx), false), us.SystemdActiveState, us.SystemdSubState)
				}
			}
			if time.Now().After(deadline) {
				if err == nil {
					err = fmt.Errorf("no machine reports it active")
				}
				//lint:ignore ST1005 fleetctl's words, which scripts match
				return fmt.Errorf("Failed to find an active unit %s within %v, err: %w", name, window, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(fleetPollInterval):
			}
		}
	}
	return nil
}
