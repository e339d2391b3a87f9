package main

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/store"
)

// member is one embedded etcd member on loopback, in a data directory of
// its own that Close removes.
type member struct {
	*store.Member
	dir       string
	clientURL string
}

// startMember starts a one-member cluster with etcd's (and atoll's)
// normal settings, fsync on, and waits until it serves.
func startMember(ctx context.Context, tmpDir string) (*member, error) {
	dir, err := os.MkdirTemp(tmpDir, "atoll-bench-fleet-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	opts := store.MemberOptions{
		Name:       "bench",
		DataDir:    filepath.Join(dir, "member"),
		IP:         net.IPv4(127, 0, 0, 1).To4(),
		ClientPort: ports[0],
		PeerPort:   ports[1],
	}
	sm, err := store.StartMember(opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	m := &member{Member: sm, dir: dir}
	u := sm.Options().ClientURL()
	m.clientURL = u.String()
	select {
	case <-sm.Ready():
		return m, nil
	case err := <-sm.Err():
		m.Close()
		return nil, fmt.Errorf("member: %w", err)
	case <-time.After(30 * time.Second):
		m.Close()
		return nil, fmt.Errorf("member not ready after 30 s")
	case <-ctx.Done():
		m.Close()
		return nil, ctx.Err()
	}
}

// Close stops the member and removes its data.
func (m *member) Close() {
	m.Member.Close()
	os.RemoveAll(m.dir)
}

// dial returns a client over loopback TCP and gRPC, as a machine's
// daemon reaches its store (the member's in-process client would bypass
// gRPC, and with it the server's request counters).
func (m *member) dial(ctx context.Context) (*clientv3.Client, error) {
	cli, err := store.Dial(store.ClientOptions{Endpoints: []string{m.clientURL}})
	if err != nil {
		return nil, err
	}
	if err := store.Probe(ctx, cli); err != nil { // connect now, not in a timed window
		cli.Close()
		return nil, err
	}
	return cli, nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ops is what the server counted, or the difference of two countings.
//
// requests are client requests by gRPC method: a unary call (Range, Txn,
// Put, DeleteRange, LeaseGrant, ...) is one, and so is every message a
// client sends on a stream (a watch created or cancelled, a lease
// renewal). The gRPC server counts messages received on a stream, plus
// one failed receive when the stream ends, so a stream method's requests
// are its messages received less its streams ended.
//
// The rest is mvcc's view, for information: keys put and deleted
// (deletes include those of expired leases), multi-operation
// transactions, and lease renewals.
type ops struct {
	requests map[string]float64
	puts     float64
	deletes  float64
	txns     float64
	renewals float64
}

// rpcServices are the etcd services whose requests are counted: the key
// space, watches and leases (not cluster, auth or maintenance calls,
// which fleet does not make).
var rpcServices = map[string]bool{"etcdserverpb.KV": true, "etcdserverpb.Watch": true, "etcdserverpb.Lease": true}

// counters reads the member's Prometheus metrics over its client URL, as
// a scraper would.
func (m *member) counters(ctx context.Context) (ops, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.clientURL+"/metrics", nil)
	if err != nil {
		return ops{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ops{}, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ops{}, fmt.Errorf("metrics: %s", resp.Status)
	}
	type rpc struct{ service, method, typ string }
	handled, received := map[rpc]float64{}, map[rpc]float64{}
	o := ops{requests: map[string]float64{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, labels, value, ok := parseSample(sc.Text())
		if !ok {
			continue
		}
		key := rpc{labels["grpc_service"], labels["grpc_method"], labels["grpc_type"]}
		switch name {
		case "grpc_server_handled_total":
			handled[key] += value
		case "grpc_server_msg_received_total":
			received[key] += value
		case "etcd_mvcc_put_total":
			o.puts = value
		case "etcd_mvcc_delete_total":
			o.deletes = value
		case "etcd_mvcc_txn_total":
			o.txns = value
		case "etcd_debugging_lease_renewed_total":
			o.renewals = value
		}
	}
	if err := sc.Err(); err != nil {
		return ops{}, fmt.Errorf("metrics: %w", err)
	}
	if len(handled) == 0 {
		return ops{}, fmt.Errorf("metrics: no grpc_server_handled_total in %s/metrics", m.clientURL)
	}
	for key, n := range handled {
		if !rpcServices[key.service] {
			continue
		}
		if key.typ == "unary" {
			o.requests[key.method] += n
		} else {
			o.requests[key.method] += received[key] - n
		}
	}
	return o, nil
}

// parseSample reads one line of Prometheus' text format:
// name{label="value",...} value.
func parseSample(line string) (name string, labels map[string]string, value float64, ok bool) {
	if line == "" || line[0] == '#' {
		return "", nil, 0, false
	}
	head, val, found := strings.Cut(line, " ")
	if !found {
		return "", nil, 0, false
	}
	if i := strings.IndexByte(val, ' '); i >= 0 { // a timestamp follows
		val = val[:i]
	}
	v, err := strconv.ParseFloat(val, 64)
	if err != nil {
		return "", nil, 0, false
	}
	name, rest, hasLabels := strings.Cut(head, "{")
	if !hasLabels {
		return name, nil, v, true
	}
	labels = map[string]string{}
	for _, pair := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		k, quoted, ok := strings.Cut(pair, "=")
		if !ok {
			continue
		}
		labels[k] = strings.Trim(quoted, `"`)
	}
	return name, labels, v, true
}

// since is what was counted from before to o.
func (o ops) since(before ops) ops {
	d := ops{
		requests: map[string]float64{},
		puts:     o.puts - before.puts,
		deletes:  o.deletes - before.deletes,
		txns:     o.txns - before.txns,
		renewals: o.renewals - before.renewals,
	}
	for method, n := range o.requests {
		if n -= before.requests[method]; n != 0 {
			d.requests[method] = n
		}
	}
	return d
}

// total is the number of client requests.
func (o ops) total() float64 {
	var n float64
	for _, v := range o.requests {
		n += v
	}
	return n
}

// describe is one line for the per-round output: requests per unit, by
// method, and what mvcc saw.
func (o ops) describe(units int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%.0f requests (%.2f/unit:", o.total(), o.total()/float64(units))
	for _, method := range slices.Sorted(maps.Keys(o.requests)) {
		fmt.Fprintf(&b, " %s %.0f", method, o.requests[method])
	}
	fmt.Fprintf(&b, "); keys put %.0f (%.2f/unit), deleted %.0f, multi-op txns %.0f, lease renewals %.0f",
		o.puts, o.puts/float64(units), o.deletes, o.txns, o.renewals)
	return b.String()
}
