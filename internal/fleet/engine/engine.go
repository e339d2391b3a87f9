// Package engine is fleet's scheduler process: on every machine that is a
// candidate, Run campaigns in an etcd election, and the one leader places
// units on machines.
//
// The leader reads the registry once, then follows it through a watch
// (never the agents' states), keeps the cluster in memory, and after every
// batch of changes reconciles: it asks package scheduler where each unit
// without a machine goes and writes the answers in fenced transactions
// (registry.Commit), so a leader that was deposed while it worked writes
// nothing. It moves a unit only when the unit's machine left (its lease
// expired), when the unit is destroyed or set inactive, or when a unit
// that Replaces it lands on its machine: a restart of the engine, or a new
// leader, reads the schedule as it is and moves nothing.
//
// A unit that cannot be placed gets an unplaced record saying why, per
// constraint, which the API shows; it is retried whenever the cluster
// changes.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"atoll.dev/atoll/internal/fleet/registry"
)

// Options configure an engine candidate.
type Options struct {
	Registry *registry.Registry
	// MachineID names this candidate in the election.
	MachineID string
	// SessionTTL is how long a dead leader keeps the lead: its election
	// session's lease (default 10 s, fleet's engine lease).
	SessionTTL time.Duration
	// Resync is how often the leader reconciles without a change, from
	// memory (default 30 s).
	Resync time.Duration
	Log    *slog.Logger
	// OnLead, when set, is told each time this candidate becomes leader
	// (with its fence) and when it stops leading (a zero Fence).
	OnLead func(registry.Fence)
}

func (o *Options) setDefaults() {
	if o.SessionTTL <= 0 {
		o.SessionTTL = 10 * time.Second
	}
	if o.Resync <= 0 {
		o.Resync = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Run campaigns and, while leader, schedules, until ctx ends. A lost
// session or a refused fenced write ends the term; Run then campaigns
// again. It returns ctx's error, or an error it cannot recover from.
func Run(ctx context.Context, o Options) error {
	o.setDefaults()
	for {
		err := term(ctx, o)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		o.Log.Warn("engine term ended; campaigning again", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// term is one campaign and, once won, one term as leader.
func term(ctx context.Context, o Options) error {
	session, err := concurrency.NewSession(o.Registry.Client(),
		concurrency.WithTTL(int(o.SessionTTL.Round(time.Second)/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("engine session: %w", err)
	}
	defer session.Close() // revokes the lease: a successor need not wait for it
	election := concurrency.NewElection(session, o.Registry.ElectionPrefix())
	if err := election.Campaign(ctx, o.MachineID); err != nil {
		return fmt.Errorf("engine campaign: %w", err)
	}
	fence := registry.Fence{Key: election.Key(), Rev: election.Rev()}
	o.Log.Info("engine leader", "machine", o.MachineID, "term", fence.Rev)
	if o.OnLead != nil {
		o.OnLead(fence)
		defer o.OnLead(registry.Fence{})
	}
	leadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-session.Done():
			cancel()
		case <-leadCtx.Done():
		}
	}()
	err = lead(leadCtx, o, fence)
	if ctx.Err() == nil {
		resignCtx, cancelResign := context.WithTimeout(context.Background(), time.Second)
		election.Resign(resignCtx)
		cancelResign()
	}
	return err
}

// lead schedules until ctx ends or the term is lost. A watch that falls
// behind compaction reads the registry again and carries on.
func lead(ctx context.Context, o Options, fence registry.Fence) error {
	for {
		err := leadFromSnapshot(ctx, o, fence)
		if errors.Is(err, registry.ErrCompacted) && ctx.Err() == nil {
			o.Log.Info("engine watch compacted; reading the registry again")
			continue
		}
		return err
	}
}

// collect deletes the unit files no unit names any more (a file replaced
// by --replace, or whose units were destroyed). A unit written since the
// engine's copy was current keeps every file, until the copy catches up.
func collect(ctx context.Context, o Options, fence registry.Fence, c *cluster) error {
	for h, rev := range c.garbage() {
		_, err := o.Registry.DeleteFile(ctx, fence, h, rev, c.rev)
		if errors.Is(err, registry.ErrNotLeader) {
			return err
		}
		if err != nil {
			o.Log.Warn("engine could not delete an unused unit file", "hash", h.String(), "err", err)
			continue
		}
		// Deleted, or written again since (the watch brings its new
		// revision): either way, not to be asked again until the watch
		// says more.
		delete(c.fileRevs, h)
	}
	return nil
}

func leadFromSnapshot(ctx context.Context, o Options, fence registry.Fence) error {
	snap, err := o.Registry.EngineSnapshot(ctx)
	if err != nil {
		return err
	}
	c := newCluster(o.Registry, o.Log)
	c.load(snap)
	events := o.Registry.WatchEngine(ctx, snap.Revision+1)
	resync := time.NewTicker(o.Resync)
	defer resync.Stop()
	take := func(b registry.Batch, ok bool) (changed bool, err error) {
		if !ok {
			return false, ctx.Err()
		}
		return c.applyBatch(b)
	}
	for dirty := true; ; {
		if dirty {
			ops := c.reconcile()
			if len(ops) > 0 {
				if err := o.Registry.Commit(ctx, fence, ops); err != nil {
					return err
				}
			}
			if err := collect(ctx, o, fence, c); err != nil {
				return err
			}
			dirty = false
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-resync.C:
			dirty = true
		case b, ok := <-events:
			changed, err := take(b, ok)
			if err != nil || !ok {
				return err
			}
			dirty = changed
			// Take every batch already waiting before reconciling once.
			for drained := false; !drained; {
				select {
				case b, ok := <-events:
					changed, err := take(b, ok)
					if err != nil || !ok {
						return err
					}
					dirty = dirty || changed
				default:
					drained = true
				}
			}
		}
	}
}
