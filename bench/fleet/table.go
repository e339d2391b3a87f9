package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/version"

	"atoll.dev/atoll/bench/internal/report"
)

// measuredScenario is a scenario with a result per round of each
// contender.
type measuredScenario struct {
	scenario
	floor []floorResult
	atoll []atollResult
}

// ratioTarget is the target for atoll's time over the floor's.
const ratioTarget = 3.0

func printTable(w io.Writer, o options, startLoad, endLoad string, measured []measuredScenario) {
	var rounds []string
	for _, ms := range measured {
		rounds = append(rounds, fmt.Sprintf("%d of %s", ms.rounds, ms.scenario))
	}
	fmt.Fprintf(w, "atoll fleet (engine and agents, in-memory service managers) vs floor (plain etcd transactions); embedded etcd %s, one member, fsync on; %s, %d cores, load average %s at start, %s at end; lease TTL %s, %d submissions in flight, %d agents per etcd client; rounds: %s (median); %s\n\n",
		version.Version, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), startLoad, endLoad,
		o.ttl, o.concurrency, o.agentsPerClient, strings.Join(rounds, ", "), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintln(w, "| measurement | atoll | floor | atoll/floor | target | met | etcd requests/unit, atoll | etcd requests/unit, floor |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, ms := range measured {
		atoll := time.Duration(report.MedianOf(ms.atoll, func(r atollResult) float64 { return float64(r.elapsed) }))
		floor := time.Duration(report.MedianOf(ms.floor, func(r floorResult) float64 { return float64(r.elapsed) }))
		opsAtoll := report.MedianOf(ms.atoll, func(r atollResult) float64 { return r.ops.total() / float64(ms.units) })
		opsFloor := report.MedianOf(ms.floor, func(r floorResult) float64 { return r.ops.total() / float64(ms.units) })
		ratio := float64(atoll) / float64(floor)
		fmt.Fprintf(w, "| %s: from the first submission to every unit launched (floor: %s one-key transactions) | %s | %s | %.2f× | ≤ %.0f× | %s | %.2f | %.2f |\n",
			ms.scenario, report.Thousands(ms.units), seconds(atoll), seconds(floor), ratio, ratioTarget, met(ratio <= ratioTarget), opsAtoll, opsFloor)

		moved := int(report.MedianOf(ms.atoll, func(r atollResult) float64 { return float64(r.moved) }))
		fo := time.Duration(report.MedianOf(ms.atoll, func(r atollResult) float64 { return float64(r.failover) }))
		expiry := time.Duration(report.MedianOf(ms.atoll, func(r atollResult) float64 { return float64(r.expiry) }))
		target := o.ttl + time.Second
		fmt.Fprintf(w, "| %s: from a machine's death (%d units; its agent stopped just after renewing its lease) to its units launched elsewhere; the lease expired after %s | %s | - | - | ≤ %s (TTL + 1 s) | %s | - | - |\n",
			ms.scenario, moved, seconds(expiry), seconds(fo), seconds(target), met(fo <= target))
	}
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// seconds formats a duration for the table and the per-round lines.
func seconds(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
