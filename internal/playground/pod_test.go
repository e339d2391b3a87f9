package playground

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"atoll.dev/atoll/internal/runtime/imagetest"
)

// podStatus is what the test reads of `atoll pod status --output json`.
type podStatus struct {
	UUID     string `json:"uuid"`
	State    string `json:"state"`
	PID      int    `json:"pid"`
	Networks []struct {
		IP string `json:"ip"`
	} `json:"networks"`
}

// A pod run on a machine as the demo runs it (`atoll cluster exec m1 --
// atoll pod run ...`, in the background) keeps its state under the
// machine's root, answers on its own address from inside the machine and
// on the port it publishes at the machine's address; Down stops it with
// SIGTERM and leaves no process, cgroup, veth or iptables rule of it.
func TestPodOnMachineAnswersAndDownRemovesIt(t *testing.T) {
	c, opts := upCluster(t, UpOptions{Machines: 1})
	m := c.Machines[0]
	dir := t.TempDir()
	layout := imagetest.WriteLayout(t, filepath.Join(dir, "image"), imagetest.TestApp(t), "testapp:1")
	if out, err := atollIn(t, c, m.Name, "image", "import", "--insecure-options=image", layout, "--name", "testapp:1"); err != nil {
		t.Fatalf("image import on %s: %v\n%s", m.Name, err, out)
	}

	// The real binary runs the pod: its stage1 is the binary re-executed.
	logPath := filepath.Join(dir, "pod.log")
	podLog, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer podLog.Close()
	exited := make(chan error, 1)
	go func() {
		exited <- c.Exec(context.Background(), m.Name, []string{atollBinary, "pod", "run",
			"--name", "web", "--insecure-options=image", "--port", "80:8080",
			"testapp:1", "--", "http", ":80"}, nil, podLog, podLog)
	}()
	var st podStatus
	eventually(t, "pod web running with an address", func(ctx context.Context) error {
		select {
		case err := <-exited:
			logData, _ := os.ReadFile(logPath)
			t.Fatalf("atoll pod run exited before the pod answered: %v\n%s", err, logData)
		default:
		}
		out, err := atollIn(t, c, m.Name, "pod", "status", "--output", "json", "web")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		st = podStatus{}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return err
		}
		if st.State != "running" || len(st.Networks) == 0 || st.PID == 0 {
			return fmt.Errorf("pod is %s with networks %v", st.State, st.Networks)
		}
		return nil
	})
	if found, _ := filepath.Glob(filepath.Join(m.Root, "var", "lib", "atoll", "pods", "*", st.UUID)); len(found) == 0 {
		t.Errorf("pod %s not kept under %s's root %s", st.UUID, m.Name, m.Root)
	}

	// From inside the machine: the pod's own address, and the published
	// port at the machine's address; from the host, through the bridge,
	// the published port as another machine would reach it.
	get := imagetest.Program(t, imagetest.TestAppPkg)
	want := "hello from atoll-" + st.UUID
	for _, url := range []string{"http://" + st.Networks[0].IP + "/", "http://" + m.IP + ":8080/"} {
		eventually(t, "GET "+url+" on "+m.Name, func(ctx context.Context) error {
			var out bytes.Buffer
			outFile, err := os.CreateTemp(dir, "get")
			if err != nil {
				return err
			}
			defer outFile.Close()
			err = c.Exec(ctx, m.Name, []string{get, "get", url}, nil, outFile, outFile)
			data, _ := os.ReadFile(outFile.Name())
			out.Write(data)
			if err != nil {
				return fmt.Errorf("%w: %s", err, out.String())
			}
			if !strings.Contains(out.String(), want) {
				return fmt.Errorf("got %q, want %q", out.String(), want)
			}
			return nil
		})
	}
	hc := &http.Client{Timeout: 3 * time.Second}
	url := "http://" + m.IP + ":8080/"
	eventually(t, "GET "+url+" from the host", func(ctx context.Context) error {
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), want) {
			return fmt.Errorf("got %q, want %q", body, want)
		}
		return nil
	})

	// What must be gone after Down: the pod's processes (its cgroup lists
	// them), its cgroups, and in the machine's namespace, held open here
	// so it outlives Down, its veth and iptables rules.
	cgroups := podCgroups(st.UUID)
	if len(cgroups) == 0 {
		t.Fatalf("pod %s has no cgroup under /sys/fs/cgroup", st.UUID)
	}
	pids := []int{st.PID}
	for _, cg := range cgroups {
		pids = append(pids, cgroupPIDs(cg)...)
	}
	machineNS, err := os.Open(netnsPath(m.NetNS))
	if err != nil {
		t.Fatal(err)
	}
	defer machineNS.Close()

	start := time.Now()
	if err := Down(opts, c.Name); err != nil {
		t.Fatalf("down: %v", err)
	}
	t.Logf("down with a pod took %v", time.Since(start).Round(time.Millisecond))
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("atoll pod run after down: %v, want exit status 0 (the app stops on SIGTERM)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("atoll pod run still runs 10s after down")
	}
	if logData, _ := os.ReadFile(logPath); !bytes.Contains(logData, []byte("terminated")) {
		t.Errorf("pod log %q: want the app's \"terminated\" (it got SIGTERM)", logData)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pod process %d still runs after down", pid)
		}
	}
	if left := podCgroups(st.UUID); len(left) > 0 {
		t.Errorf("pod cgroups left after down: %v", left)
	}
	veth := "veth" + strings.ReplaceAll(st.UUID, "-", "")[:11]
	if linkExists(veth) {
		t.Errorf("veth %s of the pod is in the host's namespace after down", veth)
	}
	nsPath := "/proc/self/fd/" + strconv.Itoa(int(machineNS.Fd()))
	links := inNamespace(t, nsPath, "ip", "-o", "link", "show")
	if strings.Contains(links, veth) || strings.Contains(links, st.UUID) {
		t.Errorf("the pod's veth %s is left in %s:\n%s", veth, m.NetNS, links)
	}
	if rules := inNamespace(t, nsPath, "iptables-save"); strings.Contains(rules, st.UUID) {
		t.Errorf("iptables rules of pod %s are left in %s:\n%s", st.UUID, m.NetNS, rules)
	}
}

// podCgroups are the pod's cgroup directories in every hierarchy (cgroup
// v1) or in the unified one (v2).
func podCgroups(uuid string) []string {
	v1, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "atoll", uuid))
	v2, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "atoll", uuid))
	return append(v1, v2...)
}

func cgroupPIDs(dir string) []int {
	data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	var pids []int
	for _, field := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(field); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// inNamespace runs a command in the network namespace at nsPath and
// returns its output.
func inNamespace(t *testing.T, nsPath string, argv ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := startIn(nsPath, cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s", strings.Join(argv, " "), nsPath, err, out.String())
	}
	return out.String()
}
