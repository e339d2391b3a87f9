// Command fleet measures atoll's fleet (its engine and its agents) against
// a floor measured in the same run, on a real embedded etcd member, and
// prints a Markdown table of medians and their ratios:
//
//   - atoll: M agents in this process, each with an in-memory service
//     manager (service/memory) and its own lease, sharing a few etcd
//     clients, and one engine. N template instances are submitted with
//     desired state launched, 64 at a time; the time runs from the first
//     submission until every unit is reported launched (its state under
//     agent-states/ says reached launched, active) on some machine;
//   - floor: N plain etcd transactions, each putting one key with the
//     unit's file as its value, 64 at a time: one round trip per unit;
//   - etcd operations per unit in the same windows, counted by the
//     server (its gRPC metrics): every request a client sent;
//   - failover: after everything is launched and the engine has caught
//     up (it has placed a probe unit submitted then), the agent of the
//     busiest machine stops just after renewing its lease (so the lease
//     lives its full TTL), and the time runs until each of its units is
//     reported launched on another machine; the target is the TTL plus a
//     second.
//
// Scenarios: 100 machines × 1,000 units and 1,000 machines × 10,000
// units. Every contender of every round gets a fresh member in a fresh
// data directory (fsync on, as etcd runs by default); rounds alternate the
// order of the contenders.
//
// Run it from the repository; it needs no root:
//
//	go run ./bench/fleet
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"atoll.dev/atoll/bench/internal/report"
)

type options struct {
	rounds          int           // rounds of the small scenario; the median is reported
	bigRounds       int           // rounds of the big scenario
	only            string        // "", "small" or "big"
	ttl             time.Duration // the agents' lease TTL
	concurrency     int           // submissions (and floor transactions) in flight
	agentsPerClient int           // agents sharing one etcd client
	settle          time.Duration // idle time between registration and the timer
	timeout         time.Duration // how long one contender's round may take
	tmpDir          string        // where the members' data directories go
	cpuProfile      string        // where the whole run's CPU profile goes, if anywhere
	memProfile      string        // where the heap profile with all units launched goes
}

// scenario is one size of cluster and workload.
type scenario struct {
	key      string // the -only name
	machines int
	units    int
	rounds   int
}

func (s scenario) String() string {
	return fmt.Sprintf("%s machines × %s units", report.Thousands(s.machines), report.Thousands(s.units))
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of 100 machines × 1,000 units; the median is reported")
	flag.IntVar(&o.bigRounds, "big-rounds", 1, "rounds of 1,000 machines × 10,000 units")
	flag.StringVar(&o.only, "only", "", "run one scenario: small (100 × 1,000) or big (1,000 × 10,000)")
	flag.DurationVar(&o.ttl, "ttl", 5*time.Second, "the agents' lease TTL (whole seconds)")
	flag.IntVar(&o.concurrency, "concurrency", 64, "submissions (and floor transactions) in flight")
	flag.IntVar(&o.agentsPerClient, "agents-per-client", 100, "agents sharing one etcd client (one gRPC connection)")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "idle time between all machines registered and the timer")
	flag.DurationVar(&o.timeout, "timeout", time.Hour, "how long one contender's round may take")
	flag.StringVar(&o.tmpDir, "tmp", "/var/tmp", "where the members' data directories go (on disk: fsync is measured)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to this file once all units of the last scenario's first atoll round are launched")
	flag.Parse()
	scenarios, err := check(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/fleet:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, scenarios); err != nil {
		fmt.Fprintln(os.Stderr, "bench/fleet:", err)
		os.Exit(1)
	}
}

// check refuses options that could not finish, and picks the scenarios.
func check(o options) ([]scenario, error) {
	if o.rounds < 1 || o.bigRounds < 1 || o.concurrency < 1 || o.agentsPerClient < 1 {
		return nil, errors.New("-rounds, -big-rounds, -concurrency and -agents-per-client must be at least 1")
	}
	if o.ttl < 2*time.Second || o.ttl%time.Second != 0 {
		return nil, errors.New("-ttl must be whole seconds, at least 2 (etcd's minimum lease TTL here is 1.5 s)")
	}
	small := scenario{key: "small", machines: 100, units: 1000, rounds: o.rounds}
	big := scenario{key: "big", machines: 1000, units: 10000, rounds: o.bigRounds}
	switch o.only {
	case "":
		return []scenario{small, big}, nil
	case small.key:
		return []scenario{small}, nil
	case big.key:
		return []scenario{big}, nil
	}
	return nil, fmt.Errorf("-only %q: want small or big", o.only)
}

// run runs every scenario's rounds and prints the table.
func run(ctx context.Context, o options, scenarios []scenario) error {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	startLoad := report.LoadAverage()
	began := time.Now()
	var measured []measuredScenario
	for si, sc := range scenarios {
		files, err := unitFiles(sc.units)
		if err != nil {
			return err
		}
		ms := measuredScenario{scenario: sc}
		for round := 1; round <= sc.rounds; round++ {
			contenders := []struct {
				name string
				run  func(context.Context) error
			}{
				{"floor", func(ctx context.Context) error {
					res, err := floorRun(ctx, o, sc, files)
					if err == nil {
						ms.floor = append(ms.floor, res)
						fmt.Fprintf(os.Stderr, "%s, round %d, floor: %s, %s\n", sc, round, seconds(res.elapsed), res.ops.describe(sc.units))
					}
					return err
				}},
				{"atoll", func(ctx context.Context) error {
					heapProfile := ""
					if round == 1 && si == len(scenarios)-1 {
						heapProfile = o.memProfile
					}
					res, err := atollRun(ctx, o, sc, files, heapProfile)
					if err == nil {
						ms.atoll = append(ms.atoll, res)
						fmt.Fprintf(os.Stderr, "%s, round %d, atoll: %s\n", sc, round, res.describe())
					}
					return err
				}},
			}
			for i := range contenders {
				c := contenders[(round-1+i)%len(contenders)]
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("interrupted: %w", err)
				}
				rctx, cancel := context.WithTimeout(ctx, o.timeout)
				err := c.run(rctx)
				cancel()
				if err != nil {
					return fmt.Errorf("%s, round %d, %s: %w", sc, round, c.name, err)
				}
				runtime.GC() // each contender starts from a clean heap
			}
		}
		measured = append(measured, ms)
	}
	printTable(os.Stdout, o, startLoad, report.LoadAverage(), measured)
	fmt.Fprintf(os.Stderr, "run time %s\n", seconds(time.Since(began)))
	return nil
}
