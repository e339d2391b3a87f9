package network

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// timings collects each iteration's Setup and Teardown times.
type timings struct{ setup, teardown []time.Duration }

func (t *timings) add(setup, teardown time.Duration) {
	t.setup = append(t.setup, setup)
	t.teardown = append(t.teardown, teardown)
}

// report sets ms/op (mean), its setup and teardown shares, and the median
// of Setup+Teardown, which a busy machine disturbs less than the mean.
func (t *timings) report(b *testing.B) {
	var s, d time.Duration
	sums := make([]time.Duration, len(t.setup))
	for i := range t.setup {
		s += t.setup[i]
		d += t.teardown[i]
		sums[i] = t.setup[i] + t.teardown[i]
	}
	slices.Sort(sums)
	n := float64(len(sums))
	b.ReportMetric(float64(s+d)/1e6/n, "ms/op")
	b.ReportMetric(float64(s)/1e6/n, "setup-ms/op")
	b.ReportMetric(float64(d)/1e6/n, "teardown-ms/op")
	b.ReportMetric(float64(sums[len(sums)/2])/1e6, "p50-ms/op")
	b.ReportMetric(0, "ns/op")
}

// bench runs Setup and Teardown b.N times for one pod at a time. With
// podExits, the namespace is deleted between the two (not timed), as when
// `atoll pod run --rm` tears down after the pod's last process: the kernel
// then deletes the veth pair itself.
func bench(b *testing.B, cfg Config, networks []string, ports []PortMapping, podExits bool) {
	ctx := context.Background()
	ns := newNS(b)
	var tm timings
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := newPodID(b)
		if podExits && i > 0 {
			ns = newNS(b)
		}
		b.StartTimer()
		t0 := time.Now()
		if _, err := Setup(ctx, cfg, id, ns, networks, ports); err != nil {
			b.Fatalf("Setup: %v", err)
		}
		t1 := time.Now()
		if podExits {
			b.StopTimer()
			deleteNS(ns)
			b.StartTimer()
			t1 = time.Now()
		}
		if err := Teardown(ctx, cfg, id, ns); err != nil {
			b.Fatalf("Teardown: %v", err)
		}
		tm.add(t1.Sub(t0), time.Since(t1))
	}
	b.StopTimer()
	tm.report(b)
}

// BenchmarkDefaultSetupTeardown is the built-in network on the start and
// exit path of a pod with no ports.
func BenchmarkDefaultSetupTeardown(b *testing.B) {
	requireRoot(b)
	bench(b, testConfig(b, 20), []string{"default"}, nil, true)
}

// Teardown while the pod's namespace lives (Setup's undo; a Teardown before
// the pod exits) deletes the veth itself: the kernel takes 15 ms or more.
func BenchmarkDefaultSetupTeardownLiveNamespace(b *testing.B) {
	requireRoot(b)
	bench(b, testConfig(b, 21), []string{"default"}, nil, false)
}

// With IPMasq, as on a machine: Setup also checks the masquerade rule (one
// iptables-save, while netlink works). No traffic leaves: the test bridge's
// egress is dropped.
func BenchmarkDefaultSetupTeardownIPMasq(b *testing.B) {
	requireRoot(b)
	cfg := testConfig(b, 25)
	cfg.Default.IPMasq = true
	keepIPForward(b)
	bench(b, cfg, []string{"default"}, nil, true)
}

// One published port adds the iptables execs.
func BenchmarkDefaultSetupTeardownPort(b *testing.B) {
	requireRoot(b)
	bench(b, testConfig(b, 22), []string{"default"}, []PortMapping{{ContainerPort: 80, HostPort: 18080, Protocol: "tcp"}}, true)
}

// BenchmarkCNIBridgeSetupTeardown is the same pod through libcni and the
// bridge and host-local plugins, for comparison.
func BenchmarkCNIBridgeSetupTeardown(b *testing.B) {
	requireRoot(b)
	bench(b, cniBenchConfig(b, 23), []string{"bench"}, nil, true)
}

func BenchmarkCNIBridgeSetupTeardownLiveNamespace(b *testing.B) {
	requireRoot(b)
	bench(b, cniBenchConfig(b, 24), []string{"bench"}, nil, false)
}

// cniBenchConfig defines network "bench": CNI's bridge with a gateway, as
// the built-in network has.
func cniBenchConfig(b *testing.B, n int) Config {
	cfg := testConfig(b, n)
	keepIPForward(b)
	bridge := fmt.Sprintf("atollcni%d", n)
	writeConf(b, cfg.ConfDir, "10-bench.conflist", bridgeConflist("bench", bridge, fmt.Sprintf("10.99.%d.0/24", n+100), filepath.Join(b.TempDir(), "ipam"), true, false))
	guardBridge(b, bridge)
	b.Cleanup(func() { deleteLink(b, bridge) })
	return cfg
}

// keepIPForward restores ip_forward when the test ends: CNI's bridge plugin
// turns it on for a gateway.
func keepIPForward(t testing.TB) {
	t.Helper()
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	orig, err := os.ReadFile(fwd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(fwd, orig, 0o644); err != nil {
			t.Errorf("restore ip_forward: %v", err)
		}
	})
}

func writeConf(t testing.TB, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// bridgeConflist is a CNI bridge + host-local network (ipMasq off), with
// portmap when withPortmap.
func bridgeConflist(name, bridge, subnet, dataDir string, isGateway, withPortmap bool) string {
	portmap := ""
	if withPortmap {
		portmap = `, {"type": "portmap", "capabilities": {"portMappings": true}}`
	}
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": %t,
      "ipMasq": false,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}
    }%s
  ]
}`, name, bridge, isGateway, subnet, dataDir, portmap)
}
