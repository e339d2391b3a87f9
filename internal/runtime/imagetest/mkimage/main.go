// Command mkimage writes a one-layer OCI image layout holding one static Go
// program of this repository, for the demo script and manual tests:
//
//	go run ./internal/runtime/imagetest/mkimage -o DIR -name NAME [-entrypoint 'PATH ARGS'] PKG [CMD...]
//
// It builds PKG (CGO_ENABLED=0, -trimpath) and writes the image to DIR: the
// binary at /bin/<last element of PKG>, /etc/passwd and /etc/group with
// root and "app" (uid/gid 1000), an empty /tmp (1777), Entrypoint the
// binary (or -entrypoint, split on spaces) and Cmd the arguments after PKG.
// The layout's index names the image NAME (org.opencontainers.image.ref.name).
// It is the command-line face of package imagetest, for tests only.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"atoll.dev/atoll/internal/runtime/imagetest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func main() {
	out := flag.String("o", "", "the OCI layout `DIR` to write (created; an index.json there is replaced)")
	name := flag.String("name", "", "the image `NAME` recorded in the layout's index (org.opencontainers.image.ref.name)")
	entrypoint := flag.String("entrypoint", "", "the image's entrypoint, split on spaces (default: /bin/<program>)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkimage -o DIR -name NAME [-entrypoint 'PATH ARGS'] PKG [CMD...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || *name == "" || flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *name, strings.Fields(*entrypoint), flag.Arg(0), flag.Args()[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(out, name string, entrypoint []string, pkg string, cmd []string) error {
	tmp, err := os.MkdirTemp("", "mkimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, imagetest.ProgramName(pkg))
	if err := imagetest.Build(pkg, bin); err != nil {
		return err
	}
	img, err := imagetest.ProgramImage(bin, v1.Config{Entrypoint: entrypoint, Cmd: cmd})
	if err != nil {
		return err
	}
	if err := imagetest.SaveLayout(out, img, name); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (%s) to %s\n", name, digest, out)
	return nil
}
