package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"atoll.dev/atoll/internal/runtime/imagetest"
)

// The pod and image verbs as an operator types them, on the real binary
// (the pod's PID 1 is the binary itself), each pod with no network so that
// nothing is changed outside the test's root.
func TestPodVerbsEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: pods need namespaces, mounts and cgroups")
	}
	atoll := imagetest.Program(t, "atoll.dev/atoll/cmd/atoll")
	root := t.TempDir()
	layout := imagetest.WriteLayout(t, filepath.Join(t.TempDir(), "layout"), imagetest.TestApp(t), "test/app:1")
	run := func(args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(atoll, args...)
		cmd.Env = append(os.Environ(), "ATOLL_ROOT="+root)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("atoll %s: %v", strings.Join(args, " "), err)
		}
		return code, out.String(), errOut.String()
	}
	must := func(args ...string) string {
		t.Helper()
		code, out, stderr := run(args...)
		if code != 0 {
			t.Fatalf("atoll %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
		return out
	}

	// An unsigned image is refused, naming what is missing; then imported.
	if code, _, stderr := run("image", "import", layout); code == 0 || !strings.Contains(stderr, "no signature") {
		t.Errorf("import of an unsigned image: exit %d, stderr %q; want a refusal", code, stderr)
	}
	must("image", "import", "--insecure-options=image", layout, "--name", "test/app")
	if out := must("image", "ls"); !strings.Contains(out, "test/app") {
		t.Errorf("image ls: %q, want test/app", out)
	}

	// A pod runs and exits with its app's code; --uuid-file-save.
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	if code, out, _ := run("pod", "run", "--net=none", "--uuid-file-save", uuidFile, "test/app", "--", "exit", "3"); code != 3 {
		t.Errorf("pod run ... exit 3: exit %d (%q), want 3", code, out)
	}
	data, err := os.ReadFile(uuidFile)
	uuid := strings.TrimSpace(string(data))
	if err != nil || len(uuid) != 36 {
		t.Fatalf("--uuid-file-save wrote %q, %v", data, err)
	}
	if out := must("pod", "status", uuid); !strings.Contains(out, "state=exited\n") || !strings.Contains(out, "app-app=3\n") {
		t.Errorf("pod status of the exited pod: %q", out)
	}
	if out := must("pod", "cat-manifest", uuid[:8]); !json.Valid([]byte(out)) || !strings.Contains(out, uuid) {
		t.Errorf("pod cat-manifest: %q, want the manifest as JSON", out)
	}

	// A long-running pod, by name: list, enter, logs, stop, status --wait.
	cmd := exec.Command(atoll, "pod", "run", "--net=none", "--name", "sleeper", "test/app", "--", "signal-exit")
	cmd.Env = append(os.Environ(), "ATOLL_ROOT="+root)
	var podOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &podOut, &podOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(must("pod", "list", "--no-legend"), "running") {
		if time.Now().After(deadline) {
			t.Fatalf("the pod never ran; its output: %q", podOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The pod runs before its app has started: wait for the app's line.
	for {
		if _, out, _ := run("pod", "logs", "sleeper"); strings.Contains(out, "waiting for SIGTERM") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app never said it waits; pod output: %q", podOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := must("pod", "enter", "sleeper", "/bin/testapp", "hostname"); !strings.HasPrefix(out, "atoll-") {
		t.Errorf("pod enter sleeper hostname: %q, want the pod's hostname", out)
	}
	if code, _, stderr := run("image", "rm", "test/app"); code == 0 || !strings.Contains(stderr, "pod") {
		t.Errorf("image rm of an image in use: exit %d, stderr %q; want a refusal naming the pods", code, stderr)
	}
	if code, _, stderr := run("pod", "rm", "sleeper"); code == 0 {
		t.Errorf("pod rm of a running pod: exit %d, stderr %q; want a refusal", code, stderr)
	}
	must("pod", "stop", "sleeper")
	if out := must("pod", "status", "--wait", "sleeper"); !strings.Contains(out, "state=exited") {
		t.Errorf("pod status --wait: %q", out)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("pod run of the stopped pod: %v (output %q); want exit 0", err, podOut.String())
	}

	// gc removes the exited pods; then the image can go, and image gc
	// leaves nothing unpacked.
	must("pod", "gc", "--grace-period=0s")
	if out := must("pod", "list", "--no-legend"); strings.TrimSpace(out) != "" {
		t.Errorf("pod list after gc: %q, want none", out)
	}
	must("image", "rm", "test/app")
	must("image", "gc")
	for _, d := range []string{"layers", "rootfs"} {
		if entries, _ := os.ReadDir(filepath.Join(root, "var/lib/atoll/images", d)); len(entries) != 0 {
			t.Errorf("images/%s after image gc: %d entries, want none", d, len(entries))
		}
	}
}
