package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/client"
	"atoll.dev/atoll/internal/store"

	"atoll.dev/atoll/bench/internal/report"
)

// putBench measures put throughput through a one-member store, atoll's
// and etcd's, in alternating rounds on fresh data directories.
func putBench(o options) ([]row, error) {
	var atollRates, etcdRates []float64
	for round := 1; round <= o.rounds; round++ {
		rate, err := atollPuts(o, round)
		if err != nil {
			return nil, err
		}
		atollRates = append(atollRates, rate)
		rate, err = etcdPuts(o, round)
		if err != nil {
			return nil, err
		}
		etcdRates = append(etcdRates, rate)
		fmt.Fprintf(os.Stderr, "put round %d: atoll %.0f/s, etcd %.0f/s\n", round, atollRates[round-1], rate)
	}
	a, e := report.Median(atollRates), report.Median(etcdRates)
	return []row{{
		what:  fmt.Sprintf("put throughput, one member, fsync on, %d puts (8 B keys, 256 B values), %d in flight on %d connections", o.puts, o.conc, o.conns),
		atoll: a, peer: e, unit: "puts/s", target: "≥ 0.9× etcd", met: a >= 0.9*e,
	}}, nil
}

// freshServer gives a round its own data directory and a client and a
// peer port.
func freshServer(o options, prefix string) (dir string, ports []int, err error) {
	dir, err = os.MkdirTemp(o.workDir, prefix)
	if err != nil {
		return "", nil, err
	}
	ports, err = freePorts(2)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, ports, nil
}

func atollPuts(o options, round int) (float64, error) {
	dir, ports, err := freshServer(o, "atoll-put-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	runDir := filepath.Join(dir, "run")
	p, err := start(filepath.Join(dir, "node.log"), o.atoll, "node", "--root", filepath.Join(dir, "root"), "--run-dir", runDir,
		"--name", "b"+strconv.Itoa(round), "--public-ip", "127.0.0.1",
		"--client-port", strconv.Itoa(ports[0]), "--peer-port", strconv.Itoa(ports[1]), "--log-level", "warn")
	if err != nil {
		return 0, err
	}
	defer p.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		h, err := client.Local{RunDir: runDir}.Health(ctx)
		if err == nil && h.Healthy {
			break
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("atoll node not healthy (log %s): %w", filepath.Join(dir, "node.log"), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return putRate(o, fmt.Sprintf("http://127.0.0.1:%d", ports[0]))
}

func etcdPuts(o options, round int) (float64, error) {
	dir, ports, err := freshServer(o, "etcd-put-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	name := "b" + strconv.Itoa(round)
	args := append([]string{
		"--name", name, "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", name + "=" + peerURL,
	}, durabilityFlags()...)
	p, err := start(filepath.Join(dir, "etcd.log"), o.etcd, args...)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := waitServing(ctx, clientURL, nil); err != nil {
		return 0, fmt.Errorf("etcd not serving (log %s): %w", filepath.Join(dir, "etcd.log"), err)
	}
	return putRate(o, clientURL)
}

// putRate runs the workload against endpoint: a warm-up, then o.puts
// puts of 256-byte values under 8-byte keys, o.conc in flight spread over
// o.conns client connections (etcd's benchmark put, as its performance
// guide runs it).
func putRate(o options, endpoint string) (float64, error) {
	clients := make([]*clientv3.Client, o.conns)
	for i := range clients {
		cli, err := store.Dial(store.ClientOptions{Endpoints: []string{endpoint}})
		if err != nil {
			return 0, err
		}
		defer cli.Close()
		clients[i] = cli
	}
	value := strings.Repeat("v", 256)
	run := func(n int, base int64) error {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, o.conc)
		for worker := range o.conc {
			cli := clients[worker%len(clients)]
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(n) {
						return
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					_, err := cli.Put(ctx, fmt.Sprintf("%08d", base+i), value)
					cancel()
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	if err := run(o.conc, 90000000); err != nil {
		return 0, err
	}
	began := time.Now()
	if err := run(o.puts, 0); err != nil {
		return 0, err
	}
	return float64(o.puts) / time.Since(began).Seconds(), nil
}
