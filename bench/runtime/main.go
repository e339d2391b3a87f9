// Command runtime measures atoll's container runtime against its peers,
// side by side in one run, and prints a Markdown table of medians and their
// ratios:
//
//   - starting a container: `atoll pod run --rm IMAGE -- true` against
//     `podman run --rm IMAGE true` (Debian's podman with runc), with each
//     one's default network and with none, and against `runc run` on a
//     bundle unpacked beforehand (runc's default bundle has a network
//     namespace with only loopback);
//   - the first run of a 50 MB image of three gzip layers: `atoll pod run`
//     on a fresh root, given the image's OCI layout (import, unpack and run)
//     against `umoci unpack` of the same layout into a fresh directory.
//
// The containers all run the same image, the repository's static test
// program (package imagetest's testapp), asked to exit 0; the 50 MB image
// holds it too. Rounds interleave the contenders, each round starting with
// the next one, so that drift hits them all alike; one warm-up of each goes
// first.
//
// Run it as root, from the repository (it builds the test program):
//
//	sudo go run ./bench/runtime -atoll bin/atoll
//
// It leaves nothing behind but what atoll's default network keeps for
// every pod: its temporary directory, atoll root, podman image and runc
// containers are removed at the end, also on failure or interrupt.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"atoll.dev/atoll/bench/internal/report"
)

type options struct {
	atoll     string // the atoll binary, absolute
	rounds    int    // rounds of the container start runs
	bigRounds int    // rounds of the first run of the 50 MB image
	only      string // "", "small" or "big"
	tmpDir    string // where the work directory goes
}

func main() {
	var o options
	flag.StringVar(&o.atoll, "atoll", "bin/atoll", "the atoll binary (make build)")
	flag.IntVar(&o.rounds, "rounds", 30, "rounds of the container start runs; the median is reported")
	flag.IntVar(&o.bigRounds, "big-rounds", 5, "rounds of the first run of the 50 MB image; the median is reported")
	flag.StringVar(&o.only, "only", "", "run one part: small (container start) or big (first run of the 50 MB image)")
	flag.StringVar(&o.tmpDir, "tmp", "/var/tmp", "where the temporary directory goes: a disk, not tmpfs, as a machine's /var/lib")
	flag.Parse()
	if err := check(&o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/runtime:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/runtime:", err)
		os.Exit(1)
	}
}

// check refuses to start what could not finish: not root, a bad flag, a
// missing tool.
func check(o *options) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (atoll pod run, podman and runc need it): sudo go run ./bench/runtime -atoll bin/atoll")
	}
	switch o.only {
	case "", "small", "big":
	default:
		return fmt.Errorf("-only %q: want small or big", o.only)
	}
	if o.rounds < 1 || o.bigRounds < 1 {
		return errors.New("-rounds and -big-rounds must be at least 1")
	}
	abs, err := filepath.Abs(o.atoll)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("atoll binary %s: %w (build it with make build, or pass -atoll PATH)", o.atoll, err)
	}
	o.atoll = abs

	type tool struct{ name, pkg string }
	needed := []tool{{"go", "golang-go"}, {"umoci", "umoci"}}
	if o.only != "big" {
		needed = append(needed, tool{"runc", "runc"}, tool{"podman", "podman"}, tool{"skopeo", "skopeo"}, tool{"iptables", "iptables"})
	}
	var missing []string
	for _, t := range needed {
		if _, err := exec.LookPath(t.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", t.name, t.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tools: %s", strings.Join(missing, ", "))
	}
	return nil
}

// run makes the work directory and the test program, runs the parts asked
// for, and prints the table. Everything it made is removed on return.
func run(ctx context.Context, o options) (err error) {
	w, err := newWork(o.tmpDir)
	if err != nil {
		return err
	}
	defer w.close(&err)
	startLoad := report.LoadAverage()

	testapp := filepath.Join(w.dir, "testapp")
	fmt.Fprintln(os.Stderr, "building the test program")
	if err := buildTestApp(testapp); err != nil {
		return err
	}
	var rows []row
	if o.only == "" || o.only == "small" {
		r, err := smallBench(ctx, o, w, testapp)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	if o.only == "" || o.only == "big" {
		r, err := bigBench(ctx, o, w, testapp)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	printTable(os.Stdout, o, startLoad, report.LoadAverage(), rows)
	return nil
}
