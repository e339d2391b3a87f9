package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// cniConfs are the network configurations of ConfDir by name.
type cniConfs struct {
	byName  map[string]*libcni.NetworkConfigList
	names   []string // in file order
	skipped []string // "file: why"
}

// loadCNIConfs reads ConfDir's *.conf, *.conflist and *.json in lexical
// order; the first file that defines a name wins. A file that does not
// parse is skipped (and named when a network is not found).
func loadCNIConfs(dir string) (*cniConfs, error) {
	c := &cniConfs{byName: map[string]*libcni.NetworkConfigList{}}
	if dir == "" {
		return c, nil
	}
	files, err := libcni.ConfFiles(dir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return nil, fmt.Errorf("cni configs in %s: %w", dir, err)
	}
	sort.Strings(files)
	for _, f := range files {
		list, err := loadCNIFile(f)
		if err != nil {
			c.skipped = append(c.skipped, fmt.Sprintf("%s: %v", filepath.Base(f), err))
			continue
		}
		if _, dup := c.byName[list.Name]; dup {
			continue
		}
		c.byName[list.Name] = list
		c.names = append(c.names, list.Name)
	}
	return c, nil
}

// loadCNIFile reads a config list, or a single plugin's config as a list of
// one (what libcni's deprecated ConfListFromConf does).
func loadCNIFile(path string) (*libcni.NetworkConfigList, error) {
	if filepath.Ext(path) == ".conflist" {
		return libcni.ConfListFromFile(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if _, ok := raw["plugins"]; ok {
		return libcni.ConfListFromFile(path)
	}
	conf, err := libcni.NetworkPluginConfFromBytes(b)
	if err != nil {
		return nil, err
	}
	if conf.Network.Name == "" {
		return nil, errors.New("no name")
	}
	list, err := json.Marshal(map[string]any{
		"name":       conf.Network.Name,
		"cniVersion": conf.Network.CNIVersion,
		"plugins":    []any{raw},
	})
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromBytes(list)
}

// describe lists the networks there are, for an unknown name's error.
func (c *cniConfs) describe(dir string) string {
	names := append([]string{DefaultNetworkName}, c.names...)
	if c.byName[DefaultNetworkName] != nil {
		names = names[1:]
	}
	s := "available: " + strings.Join(names, ", ")
	if dir != "" {
		s += " (CNI configs in " + dir + ")"
	}
	if len(c.skipped) > 0 {
		s += "; skipped " + strings.Join(c.skipped, "; ")
	}
	return s
}

// hasPortMappings reports whether a plugin of the list takes the
// portMappings capability (CNI's portmap).
func hasPortMappings(list *libcni.NetworkConfigList) bool {
	for _, p := range list.Plugins {
		if p.Network != nil && p.Network.Capabilities["portMappings"] {
			return true
		}
	}
	return false
}

// cniPortMapping is an entry of the portMappings capability argument.
type cniPortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func capabilityArgs(ports []PortMapping) map[string]any {
	if len(ports) == 0 {
		return nil
	}
	pm := make([]cniPortMapping, len(ports))
	for i, m := range ports {
		pm[i] = cniPortMapping{HostPort: int(m.HostPort), ContainerPort: int(m.ContainerPort), Protocol: m.Protocol, HostIP: m.HostIP}
	}
	return map[string]any{"portMappings": pm}
}

func (e *env) cni() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir(e.cfg.PluginDirs, e.paths.cniCache(), nil)
}

// setupCNI runs ADD for the network's plugin list.
func (e *env) setupCNI(ctx context.Context, rec *record, n *netRecord, ports []PortMapping) (Attachment, error) {
	list, err := libcni.ConfListFromBytes(n.Conf)
	if err != nil {
		return Attachment{}, fmt.Errorf("config: %w", err)
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    rec.PodID,
		NetNS:          rec.NetNS,
		IfName:         n.IfName,
		CapabilityArgs: capabilityArgs(ports),
	}
	res, err := e.cni().AddNetworkList(ctx, list, rt)
	if err != nil {
		return Attachment{}, err
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return Attachment{}, fmt.Errorf("result: %w", err)
	}
	return attachmentFromResult(n.Name, n.IfName, r), nil
}

// attachmentFromResult picks the pod interface's address (IPv4 first) out
// of a CNI result.
func attachmentFromResult(name, ifName string, r *types100.Result) Attachment {
	att := Attachment{Network: name, IfName: ifName}
	if len(r.DNS.Nameservers) > 0 {
		att.DNS = append([]string(nil), r.DNS.Nameservers...)
	}
	ours := func(ipc *types100.IPConfig) bool {
		if ipc.Interface == nil || *ipc.Interface < 0 || *ipc.Interface >= len(r.Interfaces) {
			return true // unattributed: take it
		}
		intf := r.Interfaces[*ipc.Interface]
		return intf.Sandbox != "" && intf.Name == ifName
	}
	var pick *types100.IPConfig
	for _, ipc := range r.IPs {
		if ipc == nil || !ours(ipc) {
			continue
		}
		if pick == nil || (pick.Address.IP.To4() == nil && ipc.Address.IP.To4() != nil) {
			pick = ipc
		}
	}
	if pick != nil {
		ip := pick.Address.IP
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		att.IP = net4(ip, pick.Address.Mask)
		if gw := pick.Gateway; gw != nil {
			if v4 := gw.To4(); v4 != nil {
				gw = v4
			}
			att.Gateway = gw
		}
	}
	return att
}

// teardownCNI runs DEL for the network with the config libcni cached at ADD
// (the config as recorded when ADD failed before caching), and an empty
// NetNS when nsPath is "" (the namespace is gone).
func (e *env) teardownCNI(ctx context.Context, podID, nsPath string, n *netRecord, ports []PortMapping) error {
	c := e.cni()
	rt := &libcni.RuntimeConf{ContainerID: podID, NetNS: nsPath, IfName: n.IfName, CapabilityArgs: capabilityArgs(ports)}
	var list *libcni.NetworkConfigList
	cached, crt, err := c.GetNetworkListCachedConfig(&libcni.NetworkConfigList{Name: n.Name}, rt)
	if err == nil && cached != nil {
		if l, err := libcni.ConfListFromBytes(cached); err == nil {
			list, rt = l, crt
		}
	}
	if list == nil {
		if list, err = libcni.ConfListFromBytes(n.Conf); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return c.DelNetworkList(ctx, list, rt)
}

// delCachedCNI runs DEL for whatever libcni's cache holds for the pod, when
// there is no record to go by.
func (e *env) delCachedCNI(ctx context.Context, podID string) []error {
	c := e.cni()
	atts, err := c.GetCachedAttachments(podID)
	if err != nil {
		return []error{fmt.Errorf("pod %s: cni cache: %w", podID, err)}
	}
	var errs []error
	for _, a := range atts {
		list, err := libcni.ConfListFromBytes(a.Config)
		if err == nil {
			rt := &libcni.RuntimeConf{ContainerID: podID, IfName: a.IfName, Args: a.CniArgs, CapabilityArgs: a.CapabilityArgs}
			err = c.DelNetworkList(ctx, list, rt)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("network %q: pod %s: %w", a.Network, podID, err))
		}
	}
	return errs
}

// net4 makes an IPNet whose mask matches the address's length.
func net4(ip net.IP, mask net.IPMask) net.IPNet {
	if len(ip) == net.IPv4len && len(mask) == net.IPv6len {
		mask = mask[12:]
	}
	return net.IPNet{IP: ip, Mask: mask}
}
