// Package report holds what every benchmark under bench/ prints its
// results with: medians of rounds, thousands separators, and the machine's
// load average for the table's heading.
package report

import (
	"os"
	"slices"
	"strconv"
	"strings"
)

// Median is the median of xs (0 for none); xs is not changed.
func Median[T ~int64 | ~float64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MedianOf is the median of one figure over results.
func MedianOf[R any](results []R, figure func(R) float64) float64 {
	xs := make([]float64, len(results))
	for i, r := range results {
		xs[i] = figure(r)
	}
	return Median(xs)
}

// Thousands writes n with commas between groups of three digits.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	start := 0
	if n < 0 {
		start = 1
	}
	for i := len(s) - 3; i > start; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// LoadAverage is /proc/loadavg's three averages, as printed there.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(data))
	if len(fields) < 3 {
		return "unknown"
	}
	return strings.Join(fields[:3], " ")
}
