package main

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"atoll.dev/atoll/bench/internal/report"
)

// contender is one way of running the units, with a result per round.
type contender struct {
	name    string
	results []result
}

func (c *contender) start() time.Duration {
	return time.Duration(report.MedianOf(c.results, func(r result) float64 { return float64(r.start) }))
}

func (c *contender) stop() time.Duration {
	return time.Duration(report.MedianOf(c.results, func(r result) float64 { return float64(r.stop) }))
}

func (c *contender) startStop() time.Duration {
	return time.Duration(report.MedianOf(c.results, func(r result) float64 { return float64(r.start + r.stop) }))
}

func (c *contender) rss() float64 {
	return report.MedianOf(c.results, func(r result) float64 { return r.rssPerUnit })
}

// ms formats a duration for the table and the per-round lines.
func ms(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func printTable(w io.Writer, o options, startLoad, endLoad string, nofile uint64, seq, conc, floor *contender) {
	n := report.Thousands(o.units)
	fmt.Fprintf(w, "atoll builtin service manager vs floor; %s, %d cores, load average %s at start, %s at end; %d rounds (median), open files limit %d, %s\n\n",
		runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), startLoad, endLoad, o.rounds, nofile, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintln(w, "| measurement | atoll | floor | atoll/floor | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	timeRow := func(what string, atoll, floor time.Duration, target float64) {
		ratio := float64(atoll) / float64(floor)
		fmt.Fprintf(w, "| %s | %s | %s | %.2f× | %s | %s |\n", what, ms(atoll), ms(floor), ratio, targetText(target), met(ratio, target))
	}
	timeRow(fmt.Sprintf("start %s units (`Start` one after another; floor: cgroup, fork, exec)", n), seq.start(), floor.start(), 3)
	timeRow(fmt.Sprintf("stop %s units (`Stop` one after another; floor: SIGTERM, wait4, remove cgroup)", n), seq.stop(), floor.stop(), 3)
	timeRow(fmt.Sprintf("start+stop %s units", n), seq.startStop(), floor.startStop(), 3)
	timeRow(fmt.Sprintf("start %s units, `Start` from %d goroutines, for information", n, o.concurrency), conc.start(), floor.start(), 0)
	timeRow(fmt.Sprintf("stop %s units, `Stop` from %d goroutines, for information", n, o.concurrency), conc.stop(), floor.stop(), 0)
	// The manager runs in this process: its RSS is the daemon's.
	rss, floorRSS := seq.rss(), floor.rss()
	verdict := "yes"
	if rss > 20 {
		verdict = "**no**"
	}
	fmt.Fprintf(w, "| RSS growth per running unit (the manager's process; floor: the loop's) | %.1f KiB | %.1f KiB | %.2f× | ≤ 20 KiB | %s |\n",
		rss, floorRSS, rss/floorRSS, verdict)
}

func targetText(target float64) string {
	if target == 0 {
		return "-"
	}
	return fmt.Sprintf("≤ %.1f×", target)
}

func met(ratio, target float64) string {
	switch {
	case target == 0:
		return "-"
	case ratio > target:
		return "**no**"
	}
	return "yes"
}
