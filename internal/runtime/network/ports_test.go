package network

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestParsePort(t *testing.T) {
	for _, c := range []struct {
		in   string
		want PortMapping
	}{
		{"80:8080", PortMapping{ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}},
		{"80/tcp:8080", PortMapping{ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}},
		{"80/udp:5353", PortMapping{ContainerPort: 80, HostPort: 5353, Protocol: "udp"}},
		{"80-tcp:8080", PortMapping{ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}},
		{"53-udp:5353", PortMapping{ContainerPort: 53, HostPort: 5353, Protocol: "udp"}},
		{"53/UDP:53", PortMapping{ContainerPort: 53, HostPort: 53, Protocol: "udp"}},
		{"1:65535", PortMapping{ContainerPort: 1, HostPort: 65535, Protocol: "tcp"}},
		{"80:127.0.0.1:8080", PortMapping{ContainerPort: 80, HostPort: 8080, Protocol: "tcp", HostIP: "127.0.0.1"}},
		{"53/udp:10.0.0.1:53", PortMapping{ContainerPort: 53, HostPort: 53, Protocol: "udp", HostIP: "10.0.0.1"}},
	} {
		got, err := ParsePort(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParsePort(%q) = %+v, %v; want %+v, nil", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, says string }{
		{"8080", "no host port"},
		{"", "no host port"},
		{":8080", "container port is missing"},
		{"80:", "host port is missing"},
		{"0:8080", "container port \"0\""},
		{"80:65536", "host port \"65536\""},
		{"-1:80", "container port \"-1\""},
		{"+80:80", "container port \"+80\""},
		{"http:8080", "container port \"http\""},
		{"80/sctp:8080", "protocol \"sctp\""},
		{"80/:8080", "protocol \"\""},
		{"80:localhost:8080", "host IP \"localhost\""},
		{"80:::1:8080", "host IP \"::1\""},
		{"80:[::1]:8080", "host IP \"[::1]\""},
		{"80:1.2.3.4:", "host port is missing"},
		{"80:8080:", "host IP \"8080\""},
	} {
		got, err := ParsePort(c.in)
		if err == nil {
			t.Errorf("ParsePort(%q) = %+v, nil; want an error", c.in, got)
			continue
		}
		if !errors.Is(err, ErrBadPort) || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "want CONTAINERPORT[/tcp|/udp]:[HOSTIP:]HOSTPORT") {
			t.Errorf("ParsePort(%q) error %q; want ErrBadPort saying %q and the expected form", c.in, err, c.says)
		}
	}
}

func TestPortMappingString(t *testing.T) {
	for _, c := range []struct {
		in   PortMapping
		want string
	}{
		{PortMapping{ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}, "80:8080"},
		{PortMapping{ContainerPort: 80, HostPort: 8080}, "80:8080"},
		{PortMapping{ContainerPort: 53, HostPort: 5353, Protocol: "udp", HostIP: "127.0.0.1"}, "53/udp:127.0.0.1:5353"},
	} {
		if got := c.in.String(); got != c.want {
			t.Errorf("%+v.String() = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNormalizePorts(t *testing.T) {
	got, err := normalizePorts([]PortMapping{{ContainerPort: 80, HostPort: 8080, Protocol: "TCP"}, {ContainerPort: 53, HostPort: 8080, Protocol: "udp"}})
	if err != nil || got[0].Protocol != "tcp" {
		t.Errorf("normalizePorts = %+v, %v; want tcp and udp on 8080 accepted", got, err)
	}
	for _, bad := range [][]PortMapping{
		{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 81, HostPort: 8080}},
		{{ContainerPort: 0, HostPort: 8080}},
		{{ContainerPort: 80, HostPort: 8080, Protocol: "sctp"}},
		{{ContainerPort: 80, HostPort: 8080, HostIP: "::1"}},
	} {
		if _, err := normalizePorts(bad); !errors.Is(err, ErrBadPort) {
			t.Errorf("normalizePorts(%+v) error %v, want ErrBadPort", bad, err)
		}
	}
}

// FuzzParsePort: whatever ParsePort accepts is a valid mapping that
// String gives back in a form ParsePort reads the same; whatever it refuses
// is ErrBadPort. Seeds are here and in testdata/fuzz/FuzzParsePort.
func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"80:8080", "80/udp:5353", "8080", "80:127.0.0.1:8080", "53/UDP:10.0.0.1:53", "80::8080", ":", "0:0", "65535:65535", "80/tcp:[::1]:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParsePort(s)
		if err != nil {
			if !errors.Is(err, ErrBadPort) {
				t.Fatalf("ParsePort(%q) error %v, want ErrBadPort", s, err)
			}
			return
		}
		if m.ContainerPort == 0 || m.HostPort == 0 || (m.Protocol != "tcp" && m.Protocol != "udp") {
			t.Fatalf("ParsePort(%q) = %+v: want ports from 1 and tcp or udp", s, m)
		}
		if m.HostIP != "" {
			if ip := net.ParseIP(m.HostIP); ip == nil || ip.To4() == nil || ip.String() != m.HostIP {
				t.Fatalf("ParsePort(%q) host IP %q, want a canonical IPv4 address", s, m.HostIP)
			}
		}
		again, err := ParsePort(m.String())
		if err != nil || again != m {
			t.Fatalf("ParsePort(%q) = %+v; ParsePort(%q) = %+v, %v; want the same", s, m, m.String(), again, err)
		}
	})
}
