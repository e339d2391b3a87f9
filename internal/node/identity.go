package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"atoll.dev/atoll/internal/fsutil"
)

var machineIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// loadOrCreateMachineID returns the machine ID kept in path, creating it on
// first start: 32 lowercase hex characters and a newline, the format of
// /etc/machine-id. A file that exists but holds something else is an error,
// never silently replaced: other machines know this one by its ID.
func loadOrCreateMachineID(path string) (string, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(data))
		if !machineIDPattern.MatchString(id) {
			return "", fmt.Errorf("machine ID file %s: %q is not 32 lowercase hex characters", path, id)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("machine ID file: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("machine ID: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("machine ID file: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, []byte(id+"\n"), 0o444); err != nil {
		return "", fmt.Errorf("machine ID file: %w", err)
	}
	return id, nil
}

// interfaceAddrs is what detectPublicIP chooses from: each up, non-loopback
// interface's addresses.
type interfaceAddrs struct {
	name  string
	addrs []net.IP
}

// choosePublicIP picks the address other machines should use to reach this
// one: a global unicast IPv4 address of the default route's interface
// (flannel's choice too), else the first global unicast IPv4 address of
// any interface, else the first global unicast IPv6 address, else
// loopback.
func choosePublicIP(ifaces []interfaceAddrs, defaultRouteIface string) net.IP {
	for _, iface := range ifaces {
		if iface.name != defaultRouteIface {
			continue
		}
		for _, ip := range iface.addrs {
			if ip4 := ip.To4(); ip4 != nil && ip.IsGlobalUnicast() {
				return ip4
			}
		}
	}
	var v6 net.IP
	for _, iface := range ifaces {
		for _, ip := range iface.addrs {
			if !ip.IsGlobalUnicast() {
				continue
			}
			if ip4 := ip.To4(); ip4 != nil {
				return ip4
			}
			if v6 == nil {
				v6 = ip
			}
		}
	}
	if v6 != nil {
		return v6
	}
	return net.IPv4(127, 0, 0, 1).To4()
}

// defaultRouteInterface reads the interface of the IPv4 default route from
// the kernel's routing table in /proc/net/route format; "" when none.
func defaultRouteInterface(table string) string {
	for _, line := range strings.Split(table, "\n")[1:] {
		fields := strings.Fields(line)
		// Iface Destination Gateway Flags ... Mask ...
		if len(fields) >= 8 && fields[1] == "00000000" && fields[7] == "00000000" {
			return fields[0]
		}
	}
	return ""
}

func detectPublicIP() (net.IP, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("detect public IP: %w", err)
	}
	var candidates []interfaceAddrs
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		c := interfaceAddrs{name: iface.Name}
		for _, a := range addrs {
			if ipnet, ok := a.(*net.IPNet); ok {
				c.addrs = append(c.addrs, ipnet.IP)
			}
		}
		candidates = append(candidates, c)
	}
	routes, _ := os.ReadFile("/proc/net/route")
	return choosePublicIP(candidates, defaultRouteInterface(string(routes))), nil
}
