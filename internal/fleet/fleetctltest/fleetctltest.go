package fleetctltest

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the fleet release that Build compiles.
const Version = "v1.0.0"

// Package is the import path of the fleetctl main package.
const Package = "github.com/coreos/fleet/fleetctl"

// EnvBinary names an environment variable that, when set, points Build at a
// prebuilt fleetctl instead of compiling one (for machines without the
// module proxy that have the binary some other way).
const EnvBinary = "ATOLL_FLEETCTL"

// BuildTimeout bounds one run of "go build" (downloads included).
var BuildTimeout = 15 * time.Minute

// RunTimeout bounds one fleetctl invocation made by Run. fleetctl v1.0.0 puts
// no timeout on API requests, so a server that never answers would otherwise
// hang the test; when it expires the process is killed.
var RunTimeout = 60 * time.Second

// The module description that pins fleetctl's dependencies. They are stored
// as fleetctl.mod/fleetctl.sum rather than testdata/x/go.mod so that they can
// be embedded (go:embed cannot reach into a nested module) and so that the
// main module's tooling never sees them. Build writes them out as go.mod and
// go.sum in a scratch directory.
var (
	//go:embed testdata/fleetctl.mod
	goMod []byte
	//go:embed testdata/fleetctl.sum
	goSum []byte
)

// ldflags stamps the version the way fleet's ./build script does
// (-X version.Version=$(git describe)); without it fleetctl reports
// "0.0.0+wasnotbuiltproperly". -s -w drop the symbol table and DWARF.
var ldflags = "-s -w -X github.com/coreos/fleet/version.Version=" + Version

var (
	buildMu   sync.Mutex
	buildDone bool
	buildPath string // set on success
	buildSkip string // set when the build cannot run on this machine
	buildErr  string // set on any other failure
)

// Build returns the path of a fleetctl v1.0.0 binary compiled from the
// unmodified upstream source, building it on first use.
//
// The binary is cached per machine in
// $XDG_CACHE_HOME/atoll/fleetctl-v1.0.0-<key>/fleetctl (os.UserCacheDir),
// where <key> hashes the pinned go.mod/go.sum, the link flags and
// GOOS/GOARCH, so changing a pin rebuilds. Within one test process the result
// is memoized; across processes a finished binary is reused, and concurrent
// builders each build in a private temporary directory and rename the result
// into place, so readers never see a partial file.
//
// If $ATOLL_FLEETCTL is set, Build returns it without building.
//
// If the module proxy cannot be reached (or GOPROXY=off), or no go tool is
// found, the test is skipped with one line saying so. Any other failure fails
// the test.
func Build(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("fleetctltest: $%s: %v", EnvBinary, err)
		}
		return p
	}

	buildMu.Lock()
	defer buildMu.Unlock()
	if !buildDone {
		start := time.Now()
		var built bool
		buildPath, built, buildSkip, buildErr = build()
		buildDone = true
		if built {
			t.Logf("fleetctltest: built fleetctl %s in %v: %s", Version, time.Since(start).Round(time.Millisecond), buildPath)
		}
	}
	switch {
	case buildSkip != "":
		t.Skip(buildSkip)
	case buildErr != "":
		t.Fatal(buildErr)
	}
	return buildPath
}

// cacheKey identifies the build inputs.
func cacheKey() string {
	h := sha256.New()
	for _, s := range [][]byte{goMod, goSum, []byte(ldflags), []byte(runtime.GOOS + "/" + runtime.GOARCH)} {
		fmt.Fprintf(h, "%d\n", len(s))
		h.Write(s)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// CachePath reports where Build keeps (or will keep) the binary.
func CachePath() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = filepath.Join(os.TempDir(), "atoll-cache")
	}
	return filepath.Join(base, "atoll", "fleetctl-"+Version+"-"+cacheKey(), "fleetctl")
}

// build returns the binary's path and whether it had to be compiled, or a
// reason to skip, or a failure.
func build() (path string, built bool, skip, fail string) {
	final := CachePath()
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return final, false, "", ""
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", false, fmt.Sprintf("needs the go tool to build fleetctl %s: %v", Version, err), ""
	}

	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, "", fmt.Sprintf("fleetctltest: %v", err)
	}
	// Scratch module and output both live inside dir so the final rename
	// stays on one file system.
	work, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", false, "", fmt.Sprintf("fleetctltest: %v", err)
	}
	defer os.RemoveAll(work)
	if err := os.WriteFile(filepath.Join(work, "go.mod"), goMod, 0o644); err != nil {
		return "", false, "", fmt.Sprintf("fleetctltest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(work, "go.sum"), goSum, 0o644); err != nil {
		return "", false, "", fmt.Sprintf("fleetctltest: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	out := filepath.Join(work, "fleetctl")
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags", ldflags, "-o", out, Package)
	cmd.Dir = work
	cmd.Env = buildEnv()
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(output.String())
		if ctx.Err() != nil {
			msg = fmt.Sprintf("timed out after %v\n%s", BuildTimeout, msg)
		}
		if line, ok := proxyUnreachable(msg); ok {
			return "", false, fmt.Sprintf("needs the Go module proxy to build fleetctl %s: %s", Version, line), ""
		}
		return "", false, "", fmt.Sprintf("building fleetctl %s failed: %v\n%s", Version, err, msg)
	}
	if err := os.Rename(out, final); err != nil {
		return "", false, "", fmt.Sprintf("fleetctltest: %v", err)
	}
	return final, true, "", ""
}

// buildEnv is the caller's environment with the settings that would change
// what gets built removed or forced: the pinned go.sum is authoritative
// (-mod=readonly), no workspace, no cgo, host platform, no toolchain switch.
// GOPROXY, GOMODCACHE, GOCACHE and network settings are inherited.
func buildEnv() []string {
	drop := map[string]bool{
		"GOFLAGS": true, "GOWORK": true, "CGO_ENABLED": true, "GOOS": true,
		"GOARCH": true, "GOTOOLCHAIN": true, "GO111MODULE": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return append(env,
		"GOFLAGS=-mod=readonly",
		"GOWORK=off",
		"GO111MODULE=on",
		"CGO_ENABLED=0",
		"GOOS="+runtime.GOOS,
		"GOARCH="+runtime.GOARCH,
		"GOTOOLCHAIN=local",
	)
}

// proxyUnreachable reports whether go build's output shows that modules
// could not be fetched because the network or the proxy is unavailable, and
// returns the line that says so.
func proxyUnreachable(out string) (string, bool) {
	markers := []string{
		"GOPROXY=off",
		"dial tcp",
		"no such host",
		"connection refused",
		"network is unreachable",
		"no route to host",
		"i/o timeout",
		"TLS handshake timeout",
		"proxyconnect",
		"connection reset by peer",
		"timed out after",
	}
	for _, line := range strings.Split(out, "\n") {
		for _, m := range markers {
			if strings.Contains(line, m) {
				return strings.TrimSpace(line), true
			}
		}
	}
	return "", false
}

// Run runs fleetctl bin against endpoint, as
//
//	bin --endpoint=<endpoint> --request-timeout=<RunTimeout> args...
//
// with an isolated environment: HOME is a fresh temporary directory, PATH is
// kept, and nothing else is passed, so no FLEETCTL_* variable (fleetctl reads
// one for every global flag, e.g. FLEETCTL_DRIVER, FLEETCTL_TUNNEL),
// SSH_AUTH_SOCK or proxy setting leaks in. The working directory is the
// caller's. The process is killed after RunTimeout.
//
// err is nil when fleetctl exits 0, an *exec.ExitError for other exit codes,
// and some other error if it could not be run or timed out.
//
// --request-timeout only bounds requests of the etcd driver; with the API
// driver fleetctl sets no HTTP timeout at all, hence RunTimeout.
func Run(t testing.TB, bin string, endpoint string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()

	argv := []string{
		"--endpoint=" + endpoint,
		"--request-timeout=" + strconv.FormatFloat(RunTimeout.Seconds(), 'f', -1, 64),
	}
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	cmd.WaitDelay = 5 * time.Second
	var o, e bytes.Buffer
	cmd.Stdout = &o
	cmd.Stderr = &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("fleetctl %s: killed after %v: %w", strings.Join(args, " "), RunTimeout, errors.Join(err, ctx.Err()))
	}
	return o.String(), e.String(), err
}
