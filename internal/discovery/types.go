package discovery

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Server answers map to them by status (404, 409, 400) and
// client errors wrap them; check with errors.Is.
var (
	// ErrNotFound: the token, or the machine under it, is not registered.
	ErrNotFound = errors.New("discovery: not found")
	// ErrConflict: the registration contradicts one already made.
	ErrConflict = errors.New("discovery: conflict")
	// ErrInvalid: a size, machine ID, name, URL or body is malformed.
	ErrInvalid = errors.New("discovery: invalid request")
)

// Roles a registration is assigned.
const (
	RoleMember = "member" // runs an etcd member of the initial cluster
	RoleClient = "client" // uses the members as an etcd client
)

// Limits of the protocol.
const (
	minSize            = 1
	maxSize            = 9
	defaultSize        = 3
	maxBodyBytes       = 64 << 10
	maxRegistrations   = 1000
	maxURLsPerList     = 16
	maxURLLen          = 512
	maxNameLen         = 63
	machineIDLen       = 32
	tokenBytes         = 16
	defaultPollTimeout = 30 * time.Second
	maxPollTimeout     = 60 * time.Second
)

// Registration is what a machine tells the service about itself.
type Registration struct {
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// Entry is one registration and the machine ID it was made under.
type Entry struct {
	MachineID string `json:"machineID"`
	Registration
}

// Assignment is the service's answer to a registration.
type Assignment struct {
	Role string `json:"role"` // RoleMember or RoleClient
	Size int    `json:"size"` // the cluster size the token was created for
}

// State is everything registered under a token. Members and Clients are in
// registration order.
type State struct {
	Size    int     `json:"size"`
	Members []Entry `json:"members"`
	Clients []Entry `json:"clients"`
}

// Full reports whether all Size members have registered.
func (s State) Full() bool {
	return s.Size > 0 && len(s.Members) >= s.Size
}

// InitialCluster returns the members in etcd's initial-cluster format,
// "m1=https://a:2380,m2=https://b:2380", in registration order, with one
// name=URL pair for every peer URL of each member.
func (s State) InitialCluster() string {
	var b strings.Builder
	for _, m := range s.Members {
		for _, peerURL := range m.PeerURLs {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(m.Name)
			b.WriteByte('=')
			b.WriteString(peerURL)
		}
	}
	return b.String()
}

// MemberClientURLs returns the client URLs of every member in registration
// order: the endpoints a machine with RoleClient connects to.
func (s State) MemberClientURLs() []string {
	var urls []string
	for _, m := range s.Members {
		urls = append(urls, m.ClientURLs...)
	}
	return urls
}

// isLowerHex reports whether s is exactly n lowercase hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func validMachineID(machineID string) bool { return isLowerHex(machineID, machineIDLen) }

func validToken(token string) bool { return isLowerHex(token, 2*tokenBytes) }

// checkMachineID returns an error naming machineID if it is not 32
// lowercase hex digits.
func checkMachineID(machineID string) error {
	if !validMachineID(machineID) {
		return fmt.Errorf("invalid machine ID %q: want 32 lowercase hex digits, as in /etc/machine-id", truncate(machineID))
	}
	return nil
}

// checkName returns an error naming name if it does not match
// [A-Za-z0-9][A-Za-z0-9_.-]{0,62}.
func checkName(name string) error {
	ok := len(name) >= 1 && len(name) <= maxNameLen
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '-')
	}
	if !ok {
		return fmt.Errorf("invalid name %q: want 1 to 63 of [A-Za-z0-9_.-], starting with a letter or digit", truncate(name))
	}
	return nil
}

// checkURLs validates every URL of one list of a registration; field is the
// list's JSON name, used in the error.
func checkURLs(field string, urls []string) error {
	if len(urls) > maxURLsPerList {
		return fmt.Errorf("invalid %s: %d URLs, want at most %d", field, len(urls), maxURLsPerList)
	}
	for i, raw := range urls {
		if err := checkEndpointURL(raw); err != nil {
			return fmt.Errorf("invalid %s[%d] %q: %w", field, i, truncate(raw), err)
		}
	}
	return nil
}

// checkEndpointURL accepts exactly http(s)://host:port, the form etcd takes
// for peer and client URLs. The host is an IP address or a DNS name, so the
// URL cannot break the comma- and equals-separated initial-cluster string.
func checkEndpointURL(raw string) error {
	if len(raw) > maxURLLen {
		return fmt.Errorf("longer than %d bytes", maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.Unwrap(err) // url.Error repeats the URL
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("want scheme http or https")
	}
	if raw != u.Scheme+"://"+u.Host {
		return errors.New("want scheme://host:port with nothing else")
	}
	host, port, err := splitHostPort(u.Host)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
		return fmt.Errorf("invalid port %q", port)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !validHostName(host) {
		return fmt.Errorf("invalid host %q", host)
	}
	return nil
}

// splitHostPort splits host:port and requires both parts; an IPv6 host is in
// brackets.
func splitHostPort(hostport string) (host, port string, err error) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || i == len(hostport)-1 {
		return "", "", errors.New("want a port")
	}
	host, port = hostport[:i], hostport[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
		if _, err := netip.ParseAddr(host); err != nil {
			return "", "", fmt.Errorf("invalid IPv6 host %q", host)
		}
	} else if strings.Contains(host, ":") {
		return "", "", errors.New("an IPv6 host must be in brackets")
	}
	if host == "" {
		return "", "", errors.New("want a host")
	}
	return host, port, nil
}

// validHostName accepts DNS names: labels of letters, digits, '-' and '_'
// separated by dots.
func validHostName(host string) bool {
	if len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// checkRegistration validates the form of reg. Whether it needs a peer URL
// depends on the role it would get, which only the server knows.
func checkRegistration(reg Registration) error {
	if err := checkName(reg.Name); err != nil {
		return err
	}
	if err := checkURLs("peerURLs", reg.PeerURLs); err != nil {
		return err
	}
	return checkURLs("clientURLs", reg.ClientURLs)
}

// normalize makes empty URL lists non-nil so they encode as [].
func (r Registration) normalize() Registration {
	if r.PeerURLs == nil {
		r.PeerURLs = []string{}
	}
	if r.ClientURLs == nil {
		r.ClientURLs = []string{}
	}
	return r
}

// sameRegistration reports whether a and b have the same name and URLs, in
// the same order; nil and empty lists are equal.
func sameRegistration(a, b Registration) bool {
	return a.Name == b.Name && slices.Equal(a.PeerURLs, b.PeerURLs) && slices.Equal(a.ClientURLs, b.ClientURLs)
}

// truncate shortens s for an error message, so a huge input does not become
// a huge error.
func truncate(s string) string {
	const limit = 100
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
