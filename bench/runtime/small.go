package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"atoll.dev/atoll/internal/runtime/imagetest"

	"atoll.dev/atoll/bench/internal/report"
)

// smallRef names the one-layer image of the test program everywhere.
const smallRef = "test/app:latest"

// podmanUlimits are needed by Debian's podman on the project's machine:
// its default of 1,048,576 open files is above the machine's hard limit,
// and runc fails to set it ("error setting rlimit type 7").
var podmanUlimits = []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

// contender is one way of starting the container, timed once per round.
type contender struct {
	name string
	argv func(round int) []string
	took []time.Duration
}

// smallBench times starting a container of the test program, `testapp
// true`, atoll against podman and runc, and returns the table's rows.
func smallBench(ctx context.Context, o options, w *work, testapp string) ([]row, error) {
	layoutDir := filepath.Join(w.dir, "small-image")
	img, err := imagetest.ProgramImage(testapp, v1.Config{})
	if err != nil {
		return nil, err
	}
	if err := imagetest.SaveLayout(layoutDir, img, smallRef); err != nil {
		return nil, err
	}

	atollRoot := filepath.Join(w.dir, "atoll-root")
	w.undo(func() error { return atollGC(o, atollRoot) })
	if _, err := command(o.atoll, "image", "import", "--root", atollRoot, "--insecure-options=image", layoutDir, "--name", smallRef); err != nil {
		return nil, err
	}

	podmanImage := fmt.Sprintf("localhost/atoll-bench-runtime/testapp:%d", os.Getpid())
	w.undo(func() error { return removePodmanImage(podmanImage) })
	if _, err := command("skopeo", "copy", "-q", "oci:"+layoutDir+":"+smallRef, "containers-storage:"+podmanImage); err != nil {
		return nil, err
	}

	bundle := filepath.Join(w.dir, "runc-bundle")
	runcPrefix := fmt.Sprintf("atoll-bench-runtime-%d-", os.Getpid())
	w.undo(func() error { return deleteRuncContainers(runcPrefix) })
	if err := readyBundle(layoutDir+":"+smallRef, bundle); err != nil {
		return nil, err
	}

	atollRun := func(flags ...string) func(int) []string {
		return func(int) []string {
			return append(append([]string{o.atoll, "pod", "run", "--root", atollRoot, "--rm"}, flags...), smallRef, "--", "true")
		}
	}
	podmanRun := func(flags ...string) func(int) []string {
		return func(int) []string {
			argv := append([]string{"podman", "run", "--rm"}, podmanUlimits...)
			return append(append(argv, flags...), podmanImage, "true")
		}
	}
	atollDefault := &contender{name: "atoll", argv: atollRun()}
	atollNone := &contender{name: "atoll --net=none", argv: atollRun("--net=none")}
	podmanDefault := &contender{name: "podman", argv: podmanRun()}
	podmanNone := &contender{name: "podman --network=none", argv: podmanRun("--network=none")}
	runc := &contender{name: "runc", argv: func(round int) []string {
		return []string{"runc", "run", "--bundle", bundle, runcPrefix + strconv.Itoa(round)}
	}}
	contenders := []*contender{atollDefault, podmanDefault, atollNone, podmanNone, runc}

	fmt.Fprintln(os.Stderr, "container start: one warm-up of each, then", o.rounds, "rounds")
	for _, c := range contenders {
		if _, err := w.timed(c.argv(0)...); err != nil {
			return nil, fmt.Errorf("warm-up of %s: %w", c.name, err)
		}
	}
	for round := 1; round <= o.rounds; round++ {
		// Each round starts with the next contender, so that none always
		// runs right after the same other one.
		for i := range contenders {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("interrupted in round %d: %w", round, err)
			}
			c := contenders[(round+i)%len(contenders)]
			took, err := w.timed(c.argv(round)...)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round, c.name, err)
			}
			c.took = append(c.took, took)
		}
		var line []string
		for _, c := range contenders {
			line = append(line, fmt.Sprintf("%s %s", c.name, ms(c.took[round-1])))
		}
		fmt.Fprintf(os.Stderr, "round %d: %s\n", round, strings.Join(line, ", "))
	}

	// The targets are the issue's, on its command: `atoll pod run --rm
	// IMAGE`, which is the default network, against podman's default and
	// against runc on a ready bundle (which has loopback only, so the
	// comparison is stricter on atoll). The rows without a network are
	// for information.
	ready := "`runc run` on a ready bundle (loopback only)"
	return []row{
		{what: "`pod run --rm`, default network; peer `podman run --rm`, its default network",
			atoll: report.Median(atollDefault.took), peer: report.Median(podmanDefault.took), target: 0.25},
		{what: "`pod run --rm`, default network; peer " + ready,
			atoll: report.Median(atollDefault.took), peer: report.Median(runc.took), target: 2},
		{what: "`pod run --rm --net=none`; peer `podman run --rm --network=none`, for information",
			atoll: report.Median(atollNone.took), peer: report.Median(podmanNone.took)},
		{what: "`pod run --rm --net=none`; peer " + ready + ", for information",
			atoll: report.Median(atollNone.took), peer: report.Median(runc.took)},
	}, nil
}

// readyBundle unpacks image (LAYOUT:TAG) into a runc bundle whose process
// runs `testapp true` with no terminal.
func readyBundle(image, bundle string) error {
	if _, err := command("umoci", "unpack", "--image", image, bundle); err != nil {
		return err
	}
	configPath := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	// Edited as a map, so that what umoci wrote stays as it is.
	var config map[string]any
	if err := json.Unmarshal(data, &config); err != nil {
		return fmt.Errorf("%s: %w", configPath, err)
	}
	process, ok := config["process"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s: no process object", configPath)
	}
	process["args"] = []string{"/bin/testapp", "true"}
	process["terminal"] = false
	if data, err = json.MarshalIndent(config, "", "\t"); err != nil {
		return err
	}
	return os.WriteFile(configPath, data, 0o644)
}

// atollGC removes whatever pods a failed run left in root, and tears down
// their networks, before root itself is removed.
func atollGC(o options, root string) error {
	if _, err := os.Stat(root); err != nil {
		return nil
	}
	_, err := command(o.atoll, "pod", "gc", "--root", root, "--grace-period", "0", "--expire-prepared", "0")
	return err
}

// removePodmanImage removes the containers of image a failed run left,
// then the image.
func removePodmanImage(image string) error {
	if _, err := command("podman", "image", "exists", image); err != nil {
		return nil // never made
	}
	out, err := command("podman", "ps", "--all", "--quiet", "--filter", "ancestor="+image)
	if err != nil {
		return err
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		if _, err := command(append([]string{"podman", "rm", "--force"}, ids...)...); err != nil {
			return err
		}
	}
	_, err = command("podman", "rmi", image)
	return err
}

// deleteRuncContainers deletes the runc containers whose IDs start with
// prefix: those of runs that failed.
func deleteRuncContainers(prefix string) error {
	out, err := command("runc", "list", "--quiet")
	if err != nil {
		return err
	}
	for _, id := range strings.Fields(out) {
		if strings.HasPrefix(id, prefix) {
			if _, err := command("runc", "delete", "--force", id); err != nil {
				return err
			}
		}
	}
	return nil
}
