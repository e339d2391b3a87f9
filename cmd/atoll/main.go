// Command atoll is the one binary of the atoll cluster OS: the per-machine
// daemon (atoll node), its clients, the container runtime (atoll pod, atoll
// image) and the playground (atoll cluster). Started under another name
// through a symlink (rkt), it behaves as that tool.
package main

import (
	"os"

	"atoll.dev/atoll/internal/cli"
	"atoll.dev/atoll/internal/runtime/stage1"
)

func main() {
	// A pod's PID 1 is this binary too; it must not go through the CLI.
	if len(os.Args) > 1 && os.Args[1] == stage1.Command {
		os.Exit(stage1.Main(os.Args[2:]))
	}
	// Started as rkt (a symlink), it is `atoll rkt`.
	os.Exit(cli.Main(cli.MultiCall(os.Args), os.Stdout, os.Stderr))
}
