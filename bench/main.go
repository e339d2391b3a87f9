// Command bench measures atoll's foundation against its peer, a standalone
// etcd server (Debian's etcd-server), side by side in one run, and prints a
// Markdown table of the results and their ratios:
//
//   - cluster start: from `atoll cluster up` to every machine healthy, for 3
//     and 10 machines, against 3 etcd members (plus 7 etcd gRPC proxies for
//     10 machines) started at once on loopback until each answers a
//     linearizable read;
//   - idle memory: RSS (and PSS) of a member and of a client after the
//     10-machine cluster has been idle, against etcd members and proxies;
//   - put throughput: a one-member store with the same durability settings
//     (fsync on, snapshot count, quota, compaction), the same client
//     workload, rounds alternating between the two.
//
// Machines are noisy: absolute numbers drift, ratios hold. Run it as root
// (the playground needs it): go run ./bench -atoll bin/atoll
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

type options struct {
	atoll   string
	etcd    string
	rounds  int
	puts    int
	conc    int
	conns   int
	settle  time.Duration
	only    string
	workDir string
}

func main() {
	var o options
	flag.StringVar(&o.atoll, "atoll", "bin/atoll", "the atoll binary (a static build)")
	flag.StringVar(&o.etcd, "etcd", "/usr/bin/etcd", "the peer etcd server binary")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of each measurement; the median is reported")
	flag.IntVar(&o.puts, "puts", 100000, "puts per throughput round")
	flag.IntVar(&o.conc, "clients", 1000, "puts in flight")
	flag.IntVar(&o.conns, "conns", 100, "client connections they share")
	flag.DurationVar(&o.settle, "settle", 20*time.Second, "idle time before memory is read")
	flag.StringVar(&o.only, "only", "", "run one benchmark: up, memory or put")
	endpoint := flag.String("endpoint", "", "only measure put throughput against this running endpoint")
	flag.Parse()
	if *endpoint != "" {
		rate, err := putRate(o, *endpoint)
		if err != nil {
			fatal(err)
		}
		fmt.Printf("%.0f puts/s\n", rate)
		return
	}
	dir, err := os.MkdirTemp("", "atoll-bench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	o.workDir = dir

	var rows []row
	if o.only == "" || o.only == "up" || o.only == "memory" {
		r, err := clusterBench(o)
		if err != nil {
			fatal(err)
		}
		rows = append(rows, r...)
	}
	if o.only == "" || o.only == "put" {
		r, err := putBench(o)
		if err != nil {
			fatal(err)
		}
		rows = append(rows, r...)
	}
	printTable(os.Stdout, o, rows)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
