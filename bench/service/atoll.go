package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/service/builtin"
)

// benchCgroup is the benchmark's cgroup, in every hierarchy; atoll's units
// and the floor's processes go below it.
const benchCgroup = "/atoll-bench"

// unitFile is every unit's file: a process that lives until stopped.
const unitFile = "[Service]\nExecStart=/bin/sleep 3600\n"

// result is one run of a contender.
type result struct {
	start, stop time.Duration
	rssPerUnit  float64 // KiB of RSS growth per running unit
	// heapPerUnit and stackPerUnit split it, for information: the
	// growth of the Go heap in use and of goroutine stacks (KiB).
	heapPerUnit, stackPerUnit float64
	// goroutinesPerUnit is the growth of the goroutine count per
	// running unit: each holds a stack (and what it is blocked with).
	goroutinesPerUnit float64
}

// atollRun loads units bench-N.service into a fresh builtin manager, starts
// them all and stops them all, each by Start or Stop from workers
// goroutines, and returns the times and the growth of this process's RSS
// (the manager's) from before loading to all running. Start returns once
// the unit is active (for this Type=simple unit: its process is started).
//
// With memProfile set, a heap profile is written there once all units
// run.
func atollRun(ctx context.Context, o options, workers int, memProfile string) (res result, err error) {
	dir, err := os.MkdirTemp(o.tmpDir, "atoll-bench-service-")
	if err != nil {
		return result{}, err
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
	}()
	mgr, err := builtin.New(builtin.Options{
		UnitDir:      filepath.Join(dir, "units"),
		RunDir:       filepath.Join(dir, "run"),
		CgroupParent: benchCgroup + "/units",
	})
	if err != nil {
		return result{}, err
	}
	names := unitNames(o.units)
	stopped := false
	defer func() {
		if !stopped {
			// A failed or interrupted run: stop what runs, with a
			// context of its own.
			stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			forEach(stopCtx, names, o.concurrency, mgr.Stop)
			cancel()
		}
		mgr.Close()
	}()

	before, goroutines := measureMemory(), runtime.NumGoroutine()
	for _, name := range names {
		if err := mgr.Load(ctx, name, []byte(unitFile)); err != nil {
			return result{}, err
		}
	}
	began := time.Now()
	if err := forEach(ctx, names, workers, mgr.Start); err != nil {
		return result{}, err
	}
	res.start = time.Since(began)
	began = time.Now()
	if err := allActive(ctx, mgr, len(names)); err != nil {
		return result{}, err
	}
	// For information: List is what `atoll unit list` asks.
	fmt.Fprintf(os.Stderr, "List of %d running units took %s\n", len(names), ms(time.Since(began)))
	res.growth(before, measureMemory(), len(names))
	res.goroutinesPerUnit = float64(runtime.NumGoroutine()-goroutines) / float64(len(names))
	if memProfile != "" {
		if err := writeHeapProfile(memProfile); err != nil {
			return result{}, err
		}
	}

	began = time.Now()
	err = forEach(ctx, names, workers, mgr.Stop)
	res.stop = time.Since(began)
	if err != nil {
		return result{}, err
	}
	stopped = true
	for _, name := range names {
		if err := mgr.Unload(ctx, name); err != nil {
			return result{}, err
		}
	}
	return res, nil
}

func unitNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "bench-" + strconv.Itoa(i) + ".service"
	}
	return names
}

// forEach calls f for every name from workers goroutines, and returns the
// first error (the rest still run).
func forEach(ctx context.Context, names []string, workers int, f func(context.Context, string) error) error {
	next := make(chan string)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range next {
				if err := f(ctx, name); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		next <- name
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// allActive checks that every unit is active with a main process: what
// Start promised.
func allActive(ctx context.Context, mgr service.Manager, want int) error {
	states, err := mgr.List(ctx)
	if err != nil {
		return err
	}
	var bad []string
	active := 0
	for _, st := range states {
		if st.Active == service.Active && st.MainPID > 0 {
			active++
		} else if len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%s %s/%s", st.Name, st.Active, st.Sub))
		}
	}
	if active != want {
		return fmt.Errorf("%d of %d units active with a main process after Start (%s)", active, want, strings.Join(bad, ", "))
	}
	return nil
}

// memory is this process's memory at one moment, in KiB.
type memory struct {
	rss, heap, stack int64
}

// measureMemory reads this process's resident set after a collection
// that also returns freed memory to the system, so that it counts what
// is live, and the Go heap and stacks in use then.
func measureMemory() memory {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memory{heap: int64(ms.HeapInuse >> 10), stack: int64(ms.StackInuse >> 10)}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			m.rss, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return m
}

// growth sets the per-unit memory figures from before and after units
// were running.
func (r *result) growth(before, after memory, units int) {
	r.rssPerUnit = float64(after.rss-before.rss) / float64(units)
	r.heapPerUnit = float64(after.heap-before.heap) / float64(units)
	r.stackPerUnit = float64(after.stack-before.stack) / float64(units)
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
