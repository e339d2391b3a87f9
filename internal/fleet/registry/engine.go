package registry

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// What the engine reads and writes: everything but the agents' states,
// and the schedule, in fenced transactions.

// MaxOps is how many operations one transaction carries: etcd's default
// --max-txn-ops.
const MaxOps = 128

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
		txn := r.c.Txn(ctx)
		if f != nil {
			txn = txn.If(f.cmp())
		}
		resp, err := txn.Then(ops[:n]...).Commit()
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

// OpPlace writes a schedule entry.
func (r *Registry) OpPlace(p Placement) clientv3.Op {
	return clientv3.OpPut(r.scheduleKey(p.Machine, p.Unit), mustJSON(p))
}

// OpUnplace removes a schedule entry.
func (r *Registry) OpUnplace(machineID, unitName string) clientv3.Op {
	return clientv3.OpDelete(r.scheduleKey(machineID, unitName))
}

// OpSetUnplaced records why a unit could not be placed.
func (r *Registry) OpSetUnplaced(u Unplaced) clientv3.Op {
	return clientv3.OpPut(r.unplacedKey(u.Unit), mustJSON(u))
}

// OpClearUnplaced removes a unit's unplaced record.
func (r *Registry) OpClearUnplaced(unitName string) clientv3.Op {
	return clientv3.OpDelete(r.unplacedKey(unitName))
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
	out := make(chan Batch)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	run := func(key string, opts ...clientv3.OpOption) {
		r.watch(ctx, rev, out, key, opts...)
		cancel() // one watch failing ends both
		done <- struct{}{}
	}
	// The layout sorts states/ between schedule/ and unplaced/: watch the
	// range before it and the range after it.
	go run(r.prefix, clientv3.WithRange(r.dir(statesDir)))
	go run(r.dir(statesDir[:len(statesDir)-1]+"0"), clientv3.WithRange(clientv3.GetPrefixRangeEnd(r.prefix)))
	go func() {
		<-done
		<-done
		close(out)
	}()
	return out
}
