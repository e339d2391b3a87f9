package network

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These need no root: allocation and reservation are files.

func TestAllocate(t *testing.T) {
	ctx := context.Background()
	e, err := newEnv(Config{StateDir: t.TempDir(), Default: DefaultNetwork{Subnet: "10.99.0.8/29"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.paths.mkdirs(); err != nil {
		t.Fatal(err)
	}
	// Network .8, gateway .9, broadcast .15: pods get .10 to .14, first
	// free first.
	var got []string
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		ip, err := e.allocate(ctx, id)
		if err != nil {
			t.Fatalf("allocate %s: %v", id, err)
		}
		liveRecord(t, e, id, ip.String())
		got = append(got, ip.String())
	}
	if want := "10.99.0.10 10.99.0.11 10.99.0.12 10.99.0.13 10.99.0.14"; strings.Join(got, " ") != want {
		t.Errorf("addresses %v, want %s", got, want)
	}
	if ip, err := e.allocate(ctx, "f"); !errors.Is(err, ErrNoAddress) {
		t.Errorf("allocate in a subnet full of live pods = %v, %v; want ErrNoAddress", ip, err)
	}
	if err := release(e.paths.addrDir(), "10.99.0.11", "not-b"); err != nil {
		t.Fatal(err)
	}
	if err := release(e.paths.addrDir(), "10.99.0.11", "b"); err != nil {
		t.Fatal(err)
	}
	if ip, err := e.allocate(ctx, "f"); err != nil || ip.String() != "10.99.0.11" {
		t.Errorf("allocate after b's release = %v, %v; want 10.99.0.11", ip, err)
	}
	liveRecord(t, e, "f", "10.99.0.11")

	// Full again: the address of a pod whose namespace is gone is reclaimed
	// (the pod torn down as gc would).
	dead := &record{PodID: "d", NetNS: "/nonexistent/ns/net", Networks: []netRecord{{Name: "default", IfName: "eth0", Kind: kindBuiltin, HostVeth: hostVethName("d"), Addr: "10.99.0.13"}}}
	if err := e.paths.writeRecord(dead); err != nil {
		t.Fatal(err)
	}
	ip, err := e.allocate(ctx, "g")
	if err != nil || ip.String() != "10.99.0.13" {
		t.Fatalf("allocate with dead pod d = %v, %v; want d's 10.99.0.13", ip, err)
	}
	if _, err := os.Stat(e.paths.recordPath("d")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead pod d's record: %v, want it torn down", err)
	}
	liveRecord(t, e, "g", "10.99.0.13")
	// An address whose holder has no record is an orphan, reclaimed too.
	if err := e.paths.removeRecord("e"); err != nil {
		t.Fatal(err)
	}
	if ip, err := e.allocate(ctx, "h"); err != nil || ip.String() != "10.99.0.14" {
		t.Errorf("allocate with orphan of e = %v, %v; want 10.99.0.14", ip, err)
	}
}

// liveRecord records pod id as alive (this process's namespace) holding
// addr.
func liveRecord(t *testing.T, e *env, id, addr string) *record {
	t.Helper()
	ns := "/proc/self/ns/net"
	nsid, err := nsIdentity(ns)
	if err != nil {
		t.Fatal(err)
	}
	rec := &record{PodID: id, NetNS: ns, NSDev: nsid.dev, NSIno: nsid.ino, Networks: []netRecord{{Name: "default", IfName: "eth0", Kind: kindBuiltin, Addr: addr}}}
	if err := e.paths.createRecord(rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestReservePorts(t *testing.T) {
	ctx := context.Background()
	e, err := newEnv(Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.paths.mkdirs(); err != nil {
		t.Fatal(err)
	}
	liveRecord(t, e, "live", "")
	web := []PortMapping{{ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}}
	if err := e.reservePorts(ctx, "live", web); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	err = e.reservePorts(ctx, "other", web)
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "host port 8080/tcp is published by pod live") {
		t.Errorf("reserve a live pod's port: %v, want ErrPortInUse naming the pod", err)
	}
	// UDP 8080 is another port.
	if err := e.reservePorts(ctx, "other", []PortMapping{{ContainerPort: 80, HostPort: 8080, Protocol: "udp"}}); err != nil {
		t.Errorf("reserve 8080/udp: %v", err)
	}
	// An empty reservation (its writer died before writing) is left alone
	// for a while.
	if err := os.WriteFile(filepath.Join(e.paths.portDir(), "tcp-9090"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.reservePorts(ctx, "other", []PortMapping{{ContainerPort: 80, HostPort: 9090, Protocol: "tcp"}}); !errors.Is(err, ErrPortInUse) {
		t.Errorf("reserve a port being reserved: %v, want ErrPortInUse", err)
	}
	if err := e.releasePorts("live", web); err != nil {
		t.Fatal(err)
	}
	if err := e.reservePorts(ctx, "other", web); err != nil {
		t.Errorf("reserve after release: %v", err)
	}
}

func TestHostVethName(t *testing.T) {
	for _, c := range []struct{ id, want string }{
		{"6f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b", "veth6f1d2c3b4a5"},
		{"6F1D2C3B-4A59-4E6F-8A7B-9C0D1E2F3A4B", "veth6f1d2c3b4a5"},
	} {
		if got := hostVethName(c.id); got != c.want {
			t.Errorf("hostVethName(%q) = %q, want %q", c.id, got, c.want)
		}
	}
	if got := hostVethName("pod-1"); len(got) != 15 || !strings.HasPrefix(got, "veth") || got == hostVethName("pod-2") {
		t.Errorf("hostVethName(pod-1) = %q, want veth and 11 hex digits of a hash, unlike pod-2's", got)
	}
}

func TestCheckPodID(t *testing.T) {
	for _, ok := range []string{"6f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b", "a", "pod_1.x"} {
		if err := checkPodID(ok); err != nil {
			t.Errorf("checkPodID(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "../x", "a/b", "a b", `a"b`, strings.Repeat("a", 129)} {
		if err := checkPodID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkPodID(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}
