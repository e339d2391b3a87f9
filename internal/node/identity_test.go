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
	tests := []struct {
		name   string
		ifaces []interfaceAddrs
		want   string
	}{
		{"nothing", nil, "127.0.0.1"},
		{"v4 wins over link-local and v6", []interfaceAddrs{
			{"eth0", []net.IP{net.ParseIP("fe80::1"), net.ParseIP("2001:db8::5"), net.ParseIP("10.213.1.11")}},
		}, "10.213.1.11"},
		{"first interface with v4", []interfaceAddrs{
			{"eth0", []net.IP{net.ParseIP("fe80::1")}},
			{"eth1", []net.IP{net.ParseIP("192.0.2.7")}},
		}, "192.0.2.7"},
		{"v6 only", []interfaceAddrs{{"eth0", []net.IP{net.ParseIP("2001:db8::5")}}}, "2001:db8::5"},
	}
	for _, tt := range tests {
		if got := choosePublicIP(tt.ifaces); got.String() != tt.want {
			t.Errorf("%s: choosePublicIP = %s, want %s", tt.name, got, tt.want)
		}
	}
}
