package node

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMachineIDIsCreatedOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "var", "lib", "atoll", "machine-id")
	first, err := loadOrCreateMachineID(path)
	if err != nil {
		t.Fatal(err)
	}
	if !machineIDPattern.MatchString(first) {
		t.Fatalf("machine ID %q is not 32 lowercase hex characters", first)
	}
	second, err := loadOrCreateMachineID(path)
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("second load = %q, want the ID created first, %q", second, first)
	}
	data, _ := os.ReadFile(path)
	if string(data) != first+"\n" {
		t.Errorf("file holds %q, want %q", data, first+"\n")
	}
}

func TestMachineIDRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "machine-id")
	os.WriteFile(path, []byte("not-an-id\n"), 0o644)
	_, err := loadOrCreateMachineID(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want an error naming %s", err, path)
	}
	data, _ := os.ReadFile(path)
	if string(data) != "not-an-id\n" {
		t.Errorf("file was changed to %q; a bad ID must be left for the operator", data)
	}
}

func TestChoosePublicIP(t *testing.T) {
	docker := interfaceAddrs{"docker0", []net.IP{net.ParseIP("172.17.0.1")}}
	eth0 := interfaceAddrs{"eth0", []net.IP{net.ParseIP("fe80::1"), net.ParseIP("2001:db8::5"), net.ParseIP("10.213.1.11")}}
	tests := []struct {
		name         string
		ifaces       []interfaceAddrs
		defaultRoute string
		want         string
	}{
		{"nothing", nil, "", "127.0.0.1"},
		{"v4 wins over link-local and v6", []interfaceAddrs{eth0}, "", "10.213.1.11"},
		{"default route's interface wins over an earlier one", []interfaceAddrs{docker, eth0}, "eth0", "10.213.1.11"},
		{"no default route: first interface with v4", []interfaceAddrs{docker, eth0}, "", "172.17.0.1"},
		{"default route's interface has no v4", []interfaceAddrs{{"wg0", []net.IP{net.ParseIP("2001:db8::9")}}, eth0}, "wg0", "10.213.1.11"},
		{"v6 only", []interfaceAddrs{{"eth0", []net.IP{net.ParseIP("2001:db8::5")}}}, "eth0", "2001:db8::5"},
	}
	for _, tt := range tests {
		if got := choosePublicIP(tt.ifaces, tt.defaultRoute); got.String() != tt.want {
			t.Errorf("%s: choosePublicIP = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestDefaultRouteInterface(t *testing.T) {
	table := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
docker0	0011AC00	00000000	0001	0	0	0	0000FFFF	0	0	0
eth0	00000000	0102A8C0	0003	0	0	100	00000000	0	0	0
eth0	0002A8C0	00000000	0001	0	0	100	00FFFFFF	0	0	0
`
	if got := defaultRouteInterface(table); got != "eth0" {
		t.Errorf("defaultRouteInterface = %q, want eth0", got)
	}
	if got := defaultRouteInterface("Iface\tDestination\n"); got != "" {
		t.Errorf("defaultRouteInterface of a table with no default route = %q, want empty", got)
	}
}
