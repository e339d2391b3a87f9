package main

import (
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// row is one line of the results table.
type row struct {
	what   string
	atoll  float64
	peer   float64 // 0: no peer figure
	unit   string
	target string
	met    bool
}

func printTable(w io.Writer, o options, rows []row) {
	etcdVersion, _ := exec.Command(o.etcd, "--version").Output()
	fmt.Fprintf(w, "atoll vs %s, %s, %d cores, %d rounds (median), %s\n\n",
		strings.SplitN(strings.TrimSpace(string(etcdVersion)), "\n", 2)[0], runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), o.rounds, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintln(w, "| measurement | atoll | etcd | atoll/etcd | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		peer, ratio := "-", "-"
		if r.peer > 0 {
			peer = format(r.peer, r.unit)
			ratio = fmt.Sprintf("%.2f×", r.atoll/r.peer)
		}
		met := "yes"
		if !r.met {
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.what, format(r.atoll, r.unit), peer, ratio, r.target, met)
	}
}

func format(v float64, unit string) string {
	switch unit {
	case "s":
		return fmt.Sprintf("%.2f s", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "puts/s":
		return fmt.Sprintf("%.0f puts/s", v)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}
