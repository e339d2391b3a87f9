// Command atoll is the one binary of the atoll cluster OS: the per-machine
// daemon (atoll node), its clients, and the playground (atoll cluster).
package main

import (
	"os"

	"atoll.dev/atoll/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr))
}
