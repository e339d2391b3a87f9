// Package storetest starts real embedded etcd members on loopback for
// tests: free ports, temporary data directories, and clean-up registered
// with the test. It imports store and the standard library only.
package storetest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"atoll.dev/atoll/internal/store"
)

// FreePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var listeners []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range listeners {
		l.Close()
	}
	return ports
}

// MemberSpec is one member of a loopback test cluster.
type MemberSpec struct {
	Options store.MemberOptions
}

// ClusterOptions returns options for n members of a new cluster on
// 127.0.0.1, each with its own ports and data directory, and fast raft
// timings so tests do not wait long for elections.
func ClusterOptions(t testing.TB, n int) []store.MemberOptions {
	t.Helper()
	ports := FreePorts(t, 2*n)
	var opts []store.MemberOptions
	var initial []string
	for i := range n {
		o := store.MemberOptions{
			Name:              fmt.Sprintf("m%d", i+1),
			DataDir:           t.TempDir(),
			IP:                net.IPv4(127, 0, 0, 1).To4(),
			ClientPort:        ports[2*i],
			PeerPort:          ports[2*i+1],
			HeartbeatInterval: 50 * time.Millisecond,
			ElectionTimeout:   500 * time.Millisecond,
		}
		u := o.PeerURL()
		initial = append(initial, o.Name+"="+u.String())
		opts = append(opts, o)
	}
	for i := range opts {
		opts[i].InitialCluster = strings.Join(initial, ",")
	}
	return opts
}

// Start starts a member and stops it when the test ends.
func Start(t testing.TB, opts store.MemberOptions) *store.Member {
	t.Helper()
	m, err := store.StartMember(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// WaitReady waits until every member has joined its cluster.
func WaitReady(t testing.TB, members ...*store.Member) {
	t.Helper()
	for _, m := range members {
		select {
		case <-m.Ready():
		case err := <-m.Err():
			t.Fatalf("member %s failed: %v", m.Options().Name, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("member %s not ready after 30s", m.Options().Name)
		}
	}
}
