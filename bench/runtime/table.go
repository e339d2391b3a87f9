package main

import (
	"fmt"
	"io"
	"math"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// row is one line of the results table: atoll's median against its peer's.
type row struct {
	what        string
	atoll, peer time.Duration
	target      float64 // the most atoll/peer may be; 0: none, for information
}

// ms formats a duration for the table and the per-round lines.
func ms(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func printTable(w io.Writer, o options, startLoad, endLoad string, rows []row) {
	var rounds []string
	if o.only != "big" {
		rounds = append(rounds, fmt.Sprintf("%d rounds", o.rounds))
	}
	if o.only != "small" {
		rounds = append(rounds, fmt.Sprintf("%d of the first run", o.bigRounds))
	}
	fmt.Fprintf(w, "atoll %s vs %s; %s, %d cores, load average %s at start, %s at end; %s (median), %s\n\n",
		version(o.atoll, "version"), strings.Join(peerVersions(o), ", "),
		runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), startLoad, endLoad,
		strings.Join(rounds, ", "), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintln(w, "| measurement | atoll | peer | atoll/peer | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		ratio := float64(r.atoll) / float64(r.peer)
		target, met := "-", "-"
		if r.target > 0 {
			target = "≤ " + factor(r.target)
			met = "yes"
			if ratio > r.target {
				met = "**no**"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.2f× | %s | %s |\n", r.what, ms(r.atoll), ms(r.peer), ratio, target, met)
	}
}

// factor prints a target ratio as the issue states it: 0.25×, 2.0×.
func factor(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.1f×", f)
	}
	return strconv.FormatFloat(f, 'f', -1, 64) + "×"
}

func peerVersions(o options) []string {
	var vs []string
	if o.only != "big" {
		vs = append(vs, version("podman", "--version"), version("runc", "--version"))
	}
	return append(vs, version("umoci", "--version"))
}

// version is the first line a tool prints when asked for its version.
func version(tool string, args ...string) string {
	out, err := exec.Command(tool, args...).Output()
	if err != nil {
		return tool + " (version unknown)"
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return first
}
