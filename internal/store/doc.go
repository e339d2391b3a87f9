// Package store runs atoll's cluster store: a real etcd v3 server embedded
// with go.etcd.io/etcd/server/v3/embed, never a home-made consensus.
//
// A machine is a store member (it runs an etcd server and votes) or a client
// (it only dials the members, as CoreOS's etcd proxies did, so a cluster grows
// past five machines without growing its quorum). This package holds the
// pieces the node daemon composes:
//
//   - StartMember starts an embedded member from MemberOptions and returns at
//     once; Ready and Err are channels, Close stops it (transferring
//     leadership first when it leads).
//   - Join adds a new member to a running cluster as a raft learner and
//     returns the initial-cluster string it must start with; Promote turns it
//     into a voter once it has caught up.
//   - Leave removes a member cleanly, moving leadership away first.
//   - Dial builds a client for members' endpoints, with TLS when given.
//   - Backup streams a consistent snapshot to a file atomically; Restore
//     turns a snapshot into the data directory of a new one-member cluster.
//
// Defaults chosen for a long life on small machines (see Defaults):
// periodic auto-compaction keeping one hour, a 2 GiB space quota, a
// snapshot every 10,000 entries (etcd 3.6's default), 100 ms heartbeat and
// 1 s election timeout.
//
// The package imports etcd, zap (etcd's logger) and internal/pki; nothing
// else from atoll, and never the node daemon or the CLI.
package store
