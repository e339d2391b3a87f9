package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/internal/fleet/fleetapi"
	"atoll.dev/atoll/internal/fleet/schema"
)

// The verbs that act on units already in the registry: stop, unload,
// destroy, restart (coreos/fleet: fleetctl/stop.go, unload.go,
// destroy.go, restart.go).

// findUnits returns the registry's units the arguments name, in order,
// skipping those it does not have (fleetctl's findUnits).
func (c *fleetConn) findUnits(ctx context.Context, args []string) ([]*schema.Unit, error) {
	units, err := c.units(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*schema.Unit, len(units))
	for _, u := range units {
		byName[u.Name] = u
	}
	var found []*schema.Unit
	seen := map[string]bool{}
	for _, a := range args {
		name := unitNameOf(a)
		if u, ok := byName[name]; ok && !seen[name] {
			seen[name] = true
			found = append(found, u)
		}
	}
	return found, nil
}

// fleetFoundUnitsVerb runs a verb over the registry's units that the
// arguments name; none is not an error, as in fleetctl.
func fleetFoundUnitsVerb(g *globals, f *fleetFlags, run func(ctx context.Context, c *fleetConn, units []*schema.Unit) error) func(*cobra.Command, []string) error {
	return fleetUnitVerb(g, f, nil, func(ctx context.Context, c *fleetConn, args []string) error {
		units, err := c.findUnits(ctx, args)
		if err != nil {
			return c.failf("%v", err)
		}
		if len(units) == 0 {
			c.errf("Units not found in registry")
			return nil
		}
		return run(ctx, c, units)
	})
}

func newFleetStopCmd(g *globals, f *fleetFlags) *cobra.Command {
	var uf fleetUnitFlags
	cmd := &cobra.Command{
		Use:   "stop [--no-block|--block-attempts=N] UNIT...",
		Short: "Instruct systemd to stop one or more units in the cluster.",
		Long: `Stop one or more units from running in the cluster, but allow them to be
started again in the future.

Stop operations on units which are not global are synchronous (see
--no-block and --block-attempts).`,
	}
	cmd.RunE = fleetFoundUnitsVerb(g, f, func(ctx context.Context, c *fleetConn, units []*schema.Unit) error {
		var stopping []string
		for _, u := range units {
			global := isGlobalUnit(u.Options)
			if !global {
				switch u.CurrentState {
				case schema.StateInactive:
					return c.failf("Unable to stop unit %s in state %s", u.Name, schema.StateInactive)
				case schema.StateLoaded:
					continue
				}
			}
			if err := c.setTargetState(ctx, u.Name, schema.StateLoaded); err != nil {
				return c.failf("Error stopping unit %s: %v", u.Name, err)
			}
			if global {
				c.outf("Triggered global unit %s stop", u.Name)
			} else {
				stopping = append(stopping, u.Name)
			}
		}
		if err := c.tryWaitForUnitStates(ctx, stopping, "stop", schema.StateLoaded, uf.attempts()); err != nil {
			return c.failf("Failed to stop units %v. err: %v", stopping, err)
		}
		c.errf("Successfully stopped units %v.", stopping)
		return nil
	})
	uf.bindBlock(cmd, "stopped")
	return cmd
}

func newFleetUnloadCmd(g *globals, f *fleetFlags) *cobra.Command {
	var uf fleetUnitFlags
	cmd := &cobra.Command{
		Use:   "unload [--no-block|--block-attempts=N] UNIT...",
		Short: "Unschedule one or more units in the cluster.",
	}
	cmd.RunE = fleetFoundUnitsVerb(g, f, func(ctx context.Context, c *fleetConn, units []*schema.Unit) error {
		var wait []string
		for _, u := range units {
			global := isGlobalUnit(u.Options)
			if !global && u.CurrentState == schema.StateInactive {
				continue
			}
			if err := c.setTargetState(ctx, u.Name, schema.StateInactive); err != nil {
				return c.failf("Error unloading unit %s: %v", u.Name, err)
			}
			if global {
				c.outf("Triggered global unit %s unload", u.Name)
			} else {
				wait = append(wait, u.Name)
			}
		}
		if err := c.tryWaitForUnitStates(ctx, wait, "unload", schema.StateInactive, uf.attempts()); err != nil {
			return c.failf("Failed to unload units %v. err: %v", wait, err)
		}
		c.errf("Successfully unloaded units %v.", wait)
		return nil
	})
	uf.bindBlock(cmd, "inactive")
	return cmd
}

func newFleetDestroyCmd(g *globals, f *fleetFlags) *cobra.Command {
	var uf fleetUnitFlags
	cmd := &cobra.Command{
		Use:   "destroy UNIT...",
		Short: "Destroy one or more units in the cluster",
		Long: `Completely remove one or more running or submitted units from the cluster.

Destroyed units are impossible to start unless re-submitted.`,
	}
	cmd.RunE = fleetFoundUnitsVerb(g, f, func(ctx context.Context, c *fleetConn, units []*schema.Unit) error {
		failed := false
		for _, u := range units {
			cctx, cancel := c.call(ctx)
			err := c.api.DestroyUnit(cctx, u.Name)
			cancel()
			if errors.Is(err, fleetapi.ErrNotFound) {
				continue
			}
			if err != nil {
				c.errf("Error destroying units: %v", err)
				failed = true
				continue
			}
			if err := c.waitDestroyed(ctx, u.Name, uf.attempts()); err != nil {
				c.errf("Error destroying units: %v", err)
				failed = true
			}
			c.outf("Destroyed %s", u.Name)
		}
		if failed {
			return exitCode{1}
		}
		return nil
	})
	uf.bindBlock(cmd, "destroyed")
	return cmd
}

// waitDestroyed polls until the unit is gone. fleetctl meant to (its
// test of --no-block is the wrong way round); the API deletes at once,
// so this is one request.
func (c *fleetConn) waitDestroyed(ctx context.Context, name string, attempts int) error {
	if attempts < 0 {
		return nil
	}
	var deadline time.Time
	if attempts > 0 {
		deadline = time.Now().Add(time.Duration(attempts) * fleetAttemptWindow)
	}
	for {
		u, err := c.unit(ctx, name)
		if err != nil {
			return err
		}
		if u == nil {
			return nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for unit %s to be destroyed", name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(fleetPollInterval):
		}
	}
}

func newFleetRestartCmd(g *globals, f *fleetFlags) *cobra.Command {
	var uf fleetUnitFlags
	cmd := &cobra.Command{
		Use:   "restart [--block-attempts=N] UNIT...",
		Short: "Instruct systemd to rolling restart one or more units in the cluster.",
		Long: `Restarts one or more units in the cluster, one after the other. If they are
stopped it starts them.

Each unit which is not global is stopped, waited for until loaded, started
and waited for until launched before the next one is touched. A global unit
is stopped everywhere, waited for until no machine reports it active, then
started again everywhere.`,
	}
	cmd.RunE = fleetUnitVerb(g, f, nil, func(ctx context.Context, c *fleetConn, args []string) error {
		units, err := c.findUnits(ctx, args)
		if err != nil {
			return c.failf("%v", err)
		}
		if err := c.createUnits(ctx, "restart", args, uf); err != nil {
			return c.failf("Error creating units: %v", err)
		}
		attempts := uf.attempts()
		for _, u := range units {
			if isGlobalUnit(u.Options) {
				if err := c.restartGlobal(ctx, u.Name, attempts); err != nil {
					return c.failf("Error restarting global units [%s] err:%v", u.Name, err)
				}
				continue
			}
			switch u.CurrentState {
			case schema.StateInactive, "":
				c.errf("Unable to restart unit %s in state %s", u.Name, schema.StateInactive)
				continue
			case schema.StateLaunched:
				if err := c.setUnitStateAndWait(ctx, u.Name, schema.StateLoaded, attempts); err != nil {
					return err
				}
			}
			if err := c.setUnitStateAndWait(ctx, u.Name, schema.StateLaunched, attempts); err != nil {
				return err
			}
		}
		return nil
	})
	cmd.Flags().IntVar(&uf.blockAttempts, "block-attempts", 0,
		"Wait until the units are stopped/started, performing up to N attempts before giving up. A value of 0 indicates no limit. Does not apply to global units.")
	return cmd
}

// setUnitStateAndWait is one step of a rolling restart.
func (c *fleetConn) setUnitStateAndWait(ctx context.Context, name, state string, attempts int) error {
	if err := c.setTargetState(ctx, name, state); err != nil {
		return c.failf("Error setting target state for unit %s: %v", name, err)
	}
	if err := c.tryWaitForUnitStates(ctx, []string{name}, "restart", state, attempts); err != nil {
		return c.waitFailed(err, "Error waiting for unit states, exit status: %v", err)
	}
	return nil
}

// restartGlobal restarts a global unit where it runs: fleetctl ran
// systemctl restart over SSH on each machine; atoll stops it through
// the API, waits until no machine reports it active, and starts it.
func (c *fleetConn) restartGlobal(ctx context.Context, name string, attempts int) error {
	if err := c.setTargetState(ctx, name, schema.StateLoaded); err != nil {
		return err
	}
	var deadline time.Time
	if attempts > 0 {
		deadline = time.Now().Add(time.Duration(attempts) * fleetAttemptWindow)
	}
	for {
		states, err := c.unitStates(ctx, "", name)
		if err == nil && !anyActive(states) {
			break
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for global unit %s to stop", name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(fleetPollInterval):
		}
	}
	if err := c.setTargetState(ctx, name, schema.StateLaunched); err != nil {
		return err
	}
	c.outf("Triggered global unit %s restart", name)
	return nil
}

func anyActive(states []*schema.UnitState) bool {
	for _, s := range states {
		if s.SystemdActiveState == "active" || s.SystemdActiveState == "activating" || s.SystemdActiveState == "deactivating" {
			return true
		}
	}
	return false
}
