package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/unit"
)

// What the engine reads and writes: everything but the agents' states,
// and the schedule, in fenced transactions.

// MaxOps is how many operations one transaction carries. etcd's default
// --max-txn-ops is 128, and it counts a nested transaction's operations
// (a placement is one, of two) against what the outer one leaves.
const MaxOps = 64

// Fence is the engine leader's election key and the revision it was
// created at. A fenced write succeeds only while that key still exists
// with that revision: a leader that lost its election (its session
// expired, a new leader was elected) cannot write.
type Fence struct {
	Key string
	Rev int64
}

func (f Fence) cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Rev)
}

// Commit applies ops under the fence, MaxOps at a time (each transaction
// fenced on its own). It returns ErrNotLeader as soon as one transaction
// is refused; the ones before it stay applied, which is safe because the
// engine's writes are idempotent and a new leader reconciles from what is
// there.
func (r *Registry) Commit(ctx context.Context, f Fence, ops []clientv3.Op) error {
	return r.commit(ctx, &f, ops)
}

func (r *Registry) commit(ctx context.Context, f *Fence, ops []clientv3.Op) error {
	for len(ops) > 0 {
		n := min(len(ops), MaxOps)
		var resp *clientv3.TxnResponse
		err := retry(ctx, func() (err error) {
			txn := r.c.Txn(ctx)
			if f != nil {
				txn = txn.If(f.cmp())
			}
			resp, err = txn.Then(ops[:n]...).Commit()
			return err
		})
		if err != nil {
			return fmt.Errorf("registry: %w", err)
		}
		if !resp.Succeeded {
			return ErrNotLeader
		}
		ops = ops[n:]
	}
	return nil
}

// retry runs an idempotent write again when etcd says it lost its leader
// meanwhile (the write may or may not have applied; doing it again is the
// same), a few times, while ctx lasts.
func retry(ctx context.Context, write func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = write()
		if attempt == 4 || !transient(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
}

// transient says whether err is etcd changing leaders under a request.
func transient(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrNoLeader) ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail)
}

// OpPlace writes a schedule entry and its index entry (placed/), as one
// operation.
func (r *Registry) OpPlace(p Placement) clientv3.Op {
	return clientv3.OpTxn(nil, []clientv3.Op{
		clientv3.OpPut(r.scheduleKey(p.Machine, p.Unit), mustJSON(p)),
		clientv3.OpPut(r.placedKey(p.Unit, p.Machine), ""),
	}, nil)
}

// OpUnplace removes a schedule entry and its index entry, as one
// operation.
func (r *Registry) OpUnplace(machineID, unitName string) clientv3.Op {
	return clientv3.OpTxn(nil, []clientv3.Op{
		clientv3.OpDelete(r.scheduleKey(machineID, unitName)),
		clientv3.OpDelete(r.placedKey(unitName, machineID)),
	}, nil)
}

// OpSetUnplaced records why a unit could not be placed.
func (r *Registry) OpSetUnplaced(u Unplaced) clientv3.Op {
	return clientv3.OpPut(r.unplacedKey(u.Unit), mustJSON(u))
}

// OpClearUnplaced removes a unit's unplaced record.
func (r *Registry) OpClearUnplaced(unitName string) clientv3.Op {
	return clientv3.OpDelete(r.unplacedKey(unitName))
}

// DeleteFile removes a unit file no unit named as of revision seen, under
// the fence, and only if no unit has been written since (a unit submitted
// meanwhile may name the file) and the file itself has not changed since
// revision rev. It reports whether it deleted.
func (r *Registry) DeleteFile(ctx context.Context, f Fence, h unit.Hash, rev, seen int64) (bool, error) {
	key := r.contentKey(h)
	resp, err := r.c.Txn(ctx).
		If(f.cmp(),
			clientv3.Compare(clientv3.ModRevision(key), "=", rev),
			clientv3.Compare(clientv3.ModRevision(r.dir(unitsDir)), "<", seen+1).WithPrefix()).
		Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return false, fmt.Errorf("registry: delete unit file %s: %w", h.Short(), err)
	}
	if resp.Succeeded {
		return true, nil
	}
	// Which compare failed? The fence is the one that matters.
	check, err := r.c.Get(ctx, f.Key)
	if err != nil {
		return false, fmt.Errorf("registry: %w", err)
	}
	if len(check.Kvs) == 0 || check.Kvs[0].CreateRevision != f.Rev {
		return false, ErrNotLeader
	}
	return false, nil
}

// EngineSnapshot reads everything the engine needs (the agents' states
// aside) at one revision.
func (r *Registry) EngineSnapshot(ctx context.Context) (*Snapshot, error) {
	return r.snapshot(ctx, engineDirs)
}

// WatchEngine sends every change the engine reacts to (units, files,
// machines, metadata, the schedule and the unplaced records; never the
// agents' states) from revision rev until ctx ends or a watch fails (a
// last Batch with Err).
func (r *Registry) WatchEngine(ctx context.Context, rev int64) <-chan Batch {
	out := make(chan Batch, watchBuffer)
	// The layout sorts agent-states/ before every other key space: one
	// watch from just after it to the end of the prefix sees the rest, in
	// revision order (a submit's file and unit arrive together).
	from := r.dir(statesDir[:len(statesDir)-1] + "0")
	go func() {
		defer close(out)
		r.watch(ctx, rev, out, from, clientv3.WithRange(clientv3.GetPrefixRangeEnd(r.prefix)))
	}()
	return out
}
