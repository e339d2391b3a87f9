package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/unit"
)

// templates are the unit templates the units are instances of, as
// fleetctl submits web@1.service from web@.service: every instance of a
// template has its file, and so its hash. Each serializes to about 130
// bytes.
var templates = []string{"web", "api", "worker", "cache", "queue", "proxy", "metrics", "logs"}

// unitFiles returns n units, the i-th an instance of template i mod 8.
func unitFiles(n int) ([]*unit.File, error) {
	files := make([]*unit.File, n)
	for i := range files {
		tmpl := templates[i%len(templates)]
		name := fmt.Sprintf("%s@%d.service", tmpl, i)
		text := fmt.Sprintf("[Unit]\nDescription=%s instance %%i\nAfter=network-online.target\n\n"+
			"[Service]\nExecStart=/usr/bin/%s --instance %%i --listen :80%02d\nRestart=always\n",
			tmpl, tmpl, i%len(templates))
		f, _, err := unit.Parse(name, strings.NewReader(text))
		if err != nil {
			return nil, err
		}
		files[i] = f
	}
	return files, nil
}

// floorResult is one floor round.
type floorResult struct {
	elapsed time.Duration
	ops     ops
}

// floorRun puts each unit's file under a key of its own, one transaction
// per unit, with as many in flight as the submissions: the least a
// registry must write to etcd to hold the units.
func floorRun(ctx context.Context, o options, sc scenario, files []*unit.File) (floorResult, error) {
	m, err := startMember(ctx, o.tmpDir)
	if err != nil {
		return floorResult{}, err
	}
	defer m.Close()
	cli, err := m.dial(ctx)
	if err != nil {
		return floorResult{}, err
	}
	defer cli.Close()
	keys := make([]string, len(files))
	values := make([]string, len(files))
	for i, f := range files {
		keys[i] = "/bench/floor/" + f.Name
		values[i] = string(f.Bytes())
	}
	before, err := m.counters(ctx)
	if err != nil {
		return floorResult{}, err
	}
	start := time.Now()
	err = parallel(ctx, o.concurrency, len(files), func(i int) error {
		_, err := cli.Txn(ctx).Then(clientv3.OpPut(keys[i], values[i])).Commit()
		return err
	})
	elapsed := time.Since(start)
	if err != nil {
		return floorResult{}, err
	}
	after, err := m.counters(ctx)
	if err != nil {
		return floorResult{}, err
	}
	return floorResult{elapsed: elapsed, ops: after.since(before)}, nil
}

// parallel calls fn(0) to fn(n-1) from `workers` goroutines and returns
// the first error.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errOnce.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}
