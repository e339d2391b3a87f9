package registry

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// What a machine's agent reads and writes: its presence, its own part of
// the schedule, and the states of its units.

// Register puts the machine's presence key on its lease.
func (r *Registry) Register(ctx context.Context, lease clientv3.LeaseID, m Machine) error {
	if m.ID == "" {
		return fmt.Errorf("registry: register: a machine needs an ID")
	}
	if _, err := r.c.Put(ctx, r.machineKey(m.ID), mustJSON(m), clientv3.WithLease(lease)); err != nil {
		return fmt.Errorf("register machine %s: %w", m.ID, err)
	}
	return nil
}

// MachineSchedule reads a machine's schedule, and the revision it was read
// at, to watch from the next one.
func (r *Registry) MachineSchedule(ctx context.Context, machineID string) ([]Placement, int64, error) {
	resp, err := r.c.Get(ctx, r.machineScheduleDir(machineID), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("schedule of %s: %w", machineID, err)
	}
	var out []Placement
	for _, kv := range resp.Kvs {
		k, err := r.ParseKey(kv.Key)
		if err != nil {
			return nil, 0, err
		}
		p, err := DecodePlacement(k, kv.Value)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, p)
	}
	return out, resp.Header.Revision, nil
}

// WatchMachineSchedule sends the changes of a machine's schedule from
// revision rev until ctx ends or the watch fails (a last Batch with Err).
// It watches schedule/<machine>/ only: a change elsewhere never wakes the
// machine.
func (r *Registry) WatchMachineSchedule(ctx context.Context, machineID string, rev int64) <-chan Batch {
	out := make(chan Batch, watchBuffer)
	go func() {
		defer close(out)
		r.watch(ctx, rev, out, r.machineScheduleDir(machineID), clientv3.WithPrefix())
	}()
	return out
}

// PutStates writes unit states on the agent's lease, in as few
// transactions as etcd allows.
func (r *Registry) PutStates(ctx context.Context, lease clientv3.LeaseID, states []UnitState) error {
	ops := make([]clientv3.Op, 0, len(states))
	for _, s := range states {
		ops = append(ops, clientv3.OpPut(r.stateKey(s.Machine, s.Unit), mustJSON(s), clientv3.WithLease(lease)))
	}
	return r.commit(ctx, nil, ops)
}

// DeleteStates removes the states of units a machine no longer runs.
func (r *Registry) DeleteStates(ctx context.Context, machineID string, units []string) error {
	ops := make([]clientv3.Op, 0, len(units))
	for _, u := range units {
		ops = append(ops, clientv3.OpDelete(r.stateKey(machineID, u)))
	}
	return r.commit(ctx, nil, ops)
}
