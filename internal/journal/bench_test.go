package journal

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// BenchmarkCapture measures lines per second from a pipe to disk: b.N
// lines of about 100 bytes through Capture, until the last is written.
// The queue is large enough that nothing drops; dropped/op would show it.
func BenchmarkCapture(b *testing.B) {
	j, _ := openTest(b, Options{QueueBytes: 256 << 20})
	var text bytes.Buffer
	pad := strings.Repeat("x", 80)
	for i := range b.N {
		fmt.Fprintf(&text, "%08d GET /index.html 200 %s\n", i, pad)
	}
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetBytes(int64(text.Len() / b.N))
	b.ResetTimer()
	start := time.Now()
	captured := make(chan error, 1)
	go func() { captured <- j.Capture("bench.service", Source{Stream: StreamStdout}, r) }()
	if _, err := w.Write(text.Bytes()); err != nil {
		b.Fatal(err)
	}
	w.Close()
	if err := <-captured; err != nil {
		b.Fatal(err)
	}
	waitWritten(b, j, "bench.service")
	elapsed := time.Since(start)
	b.StopTimer()
	st, _ := j.Stats("bench.service")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(st.Dropped)/float64(b.N), "dropped/op")
}

// BenchmarkReadLastLines measures -n 10 on a unit that keeps 4 files of
// 1 MiB: it reads the end of the current file only.
func BenchmarkReadLastLines(b *testing.B) {
	j, _ := openTest(b, Options{QueueBytes: 64 << 20})
	pad := strings.Repeat("x", 80)
	for i := range 40000 { // about 7 MiB: rotated, 4 files kept
		if err := j.Append("bench.service", Entry{Line: fmt.Sprintf("%08d %s", i, pad)}); err != nil {
			b.Fatal(err)
		}
	}
	waitWritten(b, j, "bench.service")
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		n := 0
		if err := j.Read(ctx, "bench.service", ReadOptions{Lines: 10}, func(Entry) error { n++; return nil }); err != nil || n != 10 {
			b.Fatalf("read %d entries, %v; want 10", n, err)
		}
	}
}
