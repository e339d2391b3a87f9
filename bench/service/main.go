// Command service measures atoll's builtin service manager against a floor
// measured in the same run, and prints a Markdown table of medians and
// their ratios:
//
//   - atoll: a builtin.Manager in this very process (so this process is
//     the "daemon" whose RSS is measured), with 1,000 unit files
//     bench-N.service loaded (`ExecStart=/bin/sleep 3600`), all started,
//     then all stopped, one Start or Stop after another; and again from
//     16 goroutines, for information;
//   - floor: a minimal loop doing what the manager must do per unit and no
//     more: make the unit's cgroup in every hierarchy with
//     opencontainers/cgroups, start /bin/sleep 3600 in it the way the
//     manager does (a locked thread joins the v1 cgroups, forks with
//     CLONE_INTO_CGROUP into the v2 one, goes back), then for each
//     process SIGTERM, reap, and remove the cgroup.
//
// Rounds alternate the contenders, each round starting with the next one.
//
// Run it as root, from the repository:
//
//	sudo go run ./bench/service
//
// It leaves nothing behind, also on failure or interrupt: units are
// stopped, processes killed and reaped, the cgroups under /atoll-bench and
// the temporary directories removed; at the end it checks that no child
// process and no cgroup is left.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"atoll.dev/atoll/bench/internal/report"
)

type options struct {
	units       int    // units (processes) per run
	rounds      int    // rounds; the median is reported
	concurrency int    // goroutines of the concurrent atoll run
	tmpDir      string // where the unit and run directories go
	cpuProfile  string // where the whole run's CPU profile goes, if anywhere
	memProfile  string // where the heap profile with all units running goes
}

func main() {
	var o options
	flag.IntVar(&o.units, "units", 1000, "units started and stopped per run")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; the median is reported")
	flag.IntVar(&o.concurrency, "concurrency", 16, "goroutines calling Start and Stop in the concurrent atoll run")
	flag.StringVar(&o.tmpDir, "tmp", "/var/tmp", "where the temporary unit and run directories go")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to this file once all units of the first atoll run are running")
	flag.Parse()
	if err := check(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/service:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/service:", err)
		os.Exit(1)
	}
}

// check refuses to start what could not finish.
func check(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (it makes cgroups): sudo go run ./bench/service")
	}
	if o.units < 1 || o.rounds < 1 || o.concurrency < 1 {
		return errors.New("-units, -rounds and -concurrency must be at least 1")
	}
	return nil
}

// run raises the open-file limit, runs the rounds and prints the table.
// Whatever a round leaves (on failure or ^C) is swept on return, and the
// sweep is checked.
func run(ctx context.Context, o options) (err error) {
	nofile, err := raiseNoFile(o.units)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sweep(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean-up: %w", cerr))
		}
	}()
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
	sequential := &contender{name: "atoll"}
	concurrent := &contender{name: fmt.Sprintf("atoll, %d goroutines", o.concurrency)}
	floor := &contender{name: "floor"}
	runs := []struct {
		c   *contender
		run func(context.Context) (result, error)
	}{
		{sequential, func(ctx context.Context) (result, error) {
			res, err := atollRun(ctx, o, 1, o.memProfile)
			o.memProfile = "" // the first run's only
			return res, err
		}},
		{concurrent, func(ctx context.Context) (result, error) { return atollRun(ctx, o, o.concurrency, "") }},
		{floor, func(ctx context.Context) (result, error) { return floorRun(ctx, o) }},
	}
	fmt.Fprintf(os.Stderr, "%d units, %d rounds, open files limit %d\n", o.units, o.rounds, nofile)
	for round := 1; round <= o.rounds; round++ {
		for i := range runs {
			r := runs[(round-1+i)%len(runs)]
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("interrupted in round %d: %w", round, err)
			}
			res, err := r.run(ctx)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round, r.c.name, err)
			}
			if err := sweep(); err != nil {
				return fmt.Errorf("round %d, %s left: %w", round, r.c.name, err)
			}
			r.c.results = append(r.c.results, res)
			fmt.Fprintf(os.Stderr, "round %d, %-22s start %s, stop %s, RSS %+.1f KiB/unit (heap %+.1f, stacks %+.1f), %+.1f goroutines/unit\n",
				round, r.c.name+":", ms(res.start), ms(res.stop), res.rssPerUnit, res.heapPerUnit, res.stackPerUnit, res.goroutinesPerUnit)
		}
	}
	printTable(os.Stdout, o, startLoad, report.LoadAverage(), nofile, sequential, concurrent, floor)
	return nil
}

// raiseNoFile sets the soft open-files limit to the hard one (Go already
// does at start-up; done again so that the figure is known) and checks it
// is enough: the manager holds about three descriptors per running unit
// (its ends of the two output FIFOs and a pidfd), and a start briefly
// opens a few more.
func raiseNoFile(units int) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("raise the open files limit to %d: %w", lim.Max, err)
	}
	if need := uint64(4*units + 256); lim.Cur < need {
		return 0, fmt.Errorf("open files limit %d: %d units need about %d (raise the hard limit, ulimit -Hn)", lim.Cur, units, need)
	}
	return lim.Cur, nil
}
