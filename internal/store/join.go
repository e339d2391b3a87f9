package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrLearnerNotReady means a learner has not caught up with the leader's log
// yet; promotion is retried later.
var ErrLearnerNotReady = errors.New("store: learner not caught up yet")

// Join adds a member named name with peerURL to the running cluster that cli
// reaches, as a raft learner, and returns the initial-cluster string the new
// member must start with (ClusterStateExisting). Join is idempotent: if a
// member with peerURL was already added (a previous attempt died before the
// new member started), it is reused rather than added twice.
func Join(ctx context.Context, cli *clientv3.Client, name string, peerURL url.URL) (initialCluster string, err error) {
	list, err := cli.MemberList(ctx)
	if err != nil {
		return "", fmt.Errorf("store: join %q: list members: %w", name, err)
	}
	members := list.Members
	if findByPeerURL(members, peerURL.String()) == nil {
		added, err := cli.MemberAddAsLearner(ctx, []string{peerURL.String()})
		if err != nil {
			return "", fmt.Errorf("store: join %q: add learner %s: %w", name, peerURL.String(), err)
		}
		members = added.Members
	}
	return initialClusterFor(members, name, peerURL.String()), nil
}

func findByPeerURL(members []*etcdserverpb.Member, peerURL string) *etcdserverpb.Member {
	for _, m := range members {
		if slices.Contains(m.PeerURLs, peerURL) {
			return m
		}
	}
	return nil
}

// initialClusterFor builds "name=url,..." from a member list in which the
// joining member, not started yet, has no name.
func initialClusterFor(members []*etcdserverpb.Member, name, peerURL string) string {
	var parts []string
	for _, m := range members {
		memberName := m.Name
		if slices.Contains(m.PeerURLs, peerURL) {
			memberName = name
		}
		if memberName == "" {
			continue // another member added but never started; etcd skips it too
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, memberName+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// Promote turns learner id into a voting member, retrying every interval
// while the learner is still catching up, until it succeeds or ctx ends.
// Promoting a member that already votes succeeds.
func Promote(ctx context.Context, cli *clientv3.Client, id uint64, interval time.Duration) error {
	for {
		_, err := cli.MemberPromote(ctx, id)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, rpctypes.ErrMemberNotLearner):
			return nil
		case errors.Is(err, rpctypes.ErrMemberLearnerNotReady):
			err = ErrLearnerNotReady
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: promote member %x: %w (last: %w)", id, ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
