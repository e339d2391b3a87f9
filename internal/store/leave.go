package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// Leave removes m from its cluster. When m leads, it first hands leadership
// to another voting member, so the others keep a leader throughout and no
// write waits for an election. It returns the client URLs of the members
// that remain; m's etcd server stops itself once its removal is applied.
// etcd refuses the removal when it would leave the cluster without a quorum
// of started members; Leave waits for that to change until ctx ends.
func (m *Member) Leave(ctx context.Context) (remaining []string, err error) {
	cli := m.client
	id := m.ID()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: leave %x: list members: %w", id, err)
	}
	var transferee uint64
	for _, member := range list.Members {
		if member.ID == id {
			continue
		}
		remaining = append(remaining, member.ClientURLs...)
		if transferee == 0 && !member.IsLearner && len(member.ClientURLs) > 0 {
			transferee = member.ID
		}
	}
	if len(remaining) == 0 {
		return nil, fmt.Errorf("store: leave %x: it is the last member; back the store up and stop it instead", id)
	}
	if m.Leader() == id && transferee != 0 {
		// The in-process client reaches this very server, the leader, which
		// is where MoveLeader must be sent.
		if _, err := cli.MoveLeader(ctx, transferee); err != nil {
			return nil, fmt.Errorf("store: leave %x: move leadership to %x: %w", id, transferee, err)
		}
	}
	// Ask a member that stays: the leaving one stops as soon as its removal
	// applies, possibly before it has answered.
	others, err := Dial(ClientOptions{Endpoints: remaining, TLS: m.opts.TLS})
	if err != nil {
		return nil, fmt.Errorf("store: leave %x: %w", id, err)
	}
	defer others.Close()
	for {
		_, err := others.MemberRemove(ctx, id)
		if err == nil || errors.Is(err, rpctypes.ErrMemberNotFound) {
			return remaining, nil
		}
		// etcd refuses to remove a voter until the members that stay have
		// been connected to each other for a few seconds (its strict
		// reconfiguration check); wait that out.
		if !errors.Is(err, rpctypes.ErrUnhealthy) {
			return nil, fmt.Errorf("store: leave %x: remove: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("store: leave %x: remove: %w (the cluster stayed unhealthy: %w)", id, ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
