package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"
)

// PortMapping publishes a pod's port on the host.
type PortMapping struct {
	ContainerPort uint16 `json:"containerPort"`
	HostPort      uint16 `json:"hostPort"`
	Protocol      string `json:"protocol"`         // "tcp" or "udp"
	HostIP        string `json:"hostIP,omitempty"` // "" = all
}

// portForm is what ParsePort accepts, for error messages.
const portForm = "want CONTAINERPORT[/tcp|/udp]:[HOSTIP:]HOSTPORT, e.g. 80:8080 or 53/udp:5353 (or the port's name as docker2aci gave it, 80-tcp:8080)"

// ParsePort reads a --port value: CONTAINERPORT[/PROTOCOL]:[HOSTIP:]HOSTPORT,
// the pod's port first, as in rkt. "80:8080" publishes the pod's TCP port 80
// on the host's port 8080, "53/udp:5353" UDP port 53 on 5353 (and so does
// "53-udp:5353", the port's name in images that docker2aci converted),
// "80:127.0.0.1:8080" on one host IPv4 address only. The error for anything
// else wraps ErrBadPort and says the expected form.
func ParsePort(s string) (PortMapping, error) {
	bad := func(why string) (PortMapping, error) {
		return PortMapping{}, fmt.Errorf("%w %q: %s; %s", ErrBadPort, s, why, portForm)
	}
	pod, host, ok := strings.Cut(s, ":")
	if !ok {
		return bad("no host port")
	}
	var m PortMapping
	port, proto, hasProto := strings.Cut(pod, "/")
	if !hasProto {
		// rkt names a port; an OCI image has numbers only, which
		// docker2aci named PORT-PROTOCOL ("80-tcp"): that name is accepted.
		if n, p, ok := strings.Cut(pod, "-"); ok && (strings.EqualFold(p, "tcp") || strings.EqualFold(p, "udp")) {
			port, proto, hasProto = n, p, true
		}
	}
	m.Protocol = "tcp"
	if hasProto {
		m.Protocol = strings.ToLower(proto)
		if m.Protocol != "tcp" && m.Protocol != "udp" {
			return bad(fmt.Sprintf("protocol %q is not tcp or udp", proto))
		}
	}
	var err error
	if m.ContainerPort, err = parsePortNumber(port); err != nil {
		return bad("container port " + err.Error())
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		ip := net.ParseIP(host[:i])
		if ip == nil || ip.To4() == nil || strings.Contains(host[:i], ":") {
			return bad(fmt.Sprintf("host IP %q is not an IPv4 address", host[:i]))
		}
		m.HostIP = ip.To4().String()
		host = host[i+1:]
	}
	if m.HostPort, err = parsePortNumber(host); err != nil {
		return bad("host port " + err.Error())
	}
	return m, nil
}

func parsePortNumber(s string) (uint16, error) {
	if s == "" {
		return 0, errors.New("is missing")
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// String gives the mapping in the form ParsePort reads.
func (m PortMapping) String() string {
	proto := m.Protocol
	if proto == "" {
		proto = "tcp"
	}
	s := strconv.Itoa(int(m.ContainerPort))
	if proto != "tcp" {
		s += "/" + proto
	}
	s += ":"
	if m.HostIP != "" {
		s += m.HostIP + ":"
	}
	return s + strconv.Itoa(int(m.HostPort))
}

// key names the host port's reservation under ports/. A host port is
// reserved whatever the host IP, so two pods never share one.
func (m PortMapping) key() string {
	return m.Protocol + "-" + strconv.Itoa(int(m.HostPort))
}

// normalizePorts checks mappings built by hand as ParsePort would and
// fills in the protocol.
func normalizePorts(ports []PortMapping) ([]PortMapping, error) {
	if len(ports) == 0 {
		return nil, nil
	}
	out := make([]PortMapping, len(ports))
	seen := map[string]bool{}
	for i, m := range ports {
		m.Protocol = strings.ToLower(m.Protocol)
		if m.Protocol == "" {
			m.Protocol = "tcp"
		}
		if m.Protocol != "tcp" && m.Protocol != "udp" {
			return nil, fmt.Errorf("%w %s: protocol %q is not tcp or udp", ErrBadPort, m, m.Protocol)
		}
		if m.ContainerPort == 0 || m.HostPort == 0 {
			return nil, fmt.Errorf("%w %s: port 0", ErrBadPort, m)
		}
		if m.HostIP != "" {
			ip := net.ParseIP(m.HostIP)
			if ip == nil || ip.To4() == nil {
				return nil, fmt.Errorf("%w %s: host IP %q is not an IPv4 address", ErrBadPort, m, m.HostIP)
			}
			m.HostIP = ip.To4().String()
		}
		if seen[m.key()] {
			return nil, fmt.Errorf("%w %s: host port %d/%s published twice", ErrBadPort, m, m.HostPort, m.Protocol)
		}
		seen[m.key()] = true
		out[i] = m
	}
	return out, nil
}

// reservePorts takes the pod's host ports. A port held by a pod whose
// namespace is gone is reclaimed (that pod is torn down, as gc would).
func (e *env) reservePorts(ctx context.Context, podID string, ports []PortMapping) error {
	dir := e.paths.portDir()
	for _, m := range ports {
		for attempt := 0; ; attempt++ {
			err := reserve(dir, m.key(), podID)
			if err == nil {
				break
			}
			if !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("reserve host port %d/%s: %w", m.HostPort, m.Protocol, err)
			}
			freed, holder, err := e.reclaim(ctx, dir, m.key(), podID)
			if err != nil {
				return fmt.Errorf("reserve host port %d/%s: %w", m.HostPort, m.Protocol, err)
			}
			if !freed || attempt == 3 {
				return fmt.Errorf("%w: host port %d/%s is published by pod %s", ErrPortInUse, m.HostPort, m.Protocol, holder)
			}
		}
	}
	return nil
}

func (e *env) releasePorts(podID string, ports []PortMapping) error {
	var errs []error
	for _, m := range ports {
		if err := release(e.paths.portDir(), m.key(), podID); err != nil {
			errs = append(errs, fmt.Errorf("release host port %d/%s: %w", m.HostPort, m.Protocol, err))
		}
	}
	return errors.Join(errs...)
}
