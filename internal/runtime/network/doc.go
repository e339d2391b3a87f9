// Package network attaches pods to networks, after rkt's model: `atoll pod
// run --net=default|host|none|NAME[,NAME2] --port ...`. Setup attaches a
// pod's network namespace to each named network in order (eth0, eth1, ...)
// and publishes its ports on the first; Teardown undoes it from what is on
// disk, so that it works after kill -9 and from `atoll pod gc`; Attachments
// reads what was set up. "host" and "none" are the caller's: none gets
// LoopbackUp, host nothing.
//
// There are two kinds of network:
//
//   - "default", built in: a private bridge (atoll0, 172.16.28.0/24, the
//     gateway is the first address, on the bridge) and a veth pair per pod.
//     With IPMasq: one masquerade rule for what leaves the subnet, two
//     FORWARD rules that let the subnet's traffic through a DROP policy
//     (docker's), and ip_forward. Host ports: DNAT rules in the nat chain
//     ATOLL-HOSTPORTS, as CNI's portmap does, localhost included
//     (route_localnet on the bridge, with the SNAT this needs, and an INPUT
//     rule that keeps pods off the host's 127.0.0.0/8 all the same).
//   - CNI networks: the configs in Config.ConfDir (*.conf, *.conflist,
//     *.json, lexical order, by "name"), run through libcni with its cache
//     under StateDir. A CNI config named "default" replaces the built-in
//     network. Ports go to the first network's portmap plugin (through the
//     portMappings capability).
//
// # Why the default network is built in
//
// It is on the start path of every pod, and `atoll pod run --rm` must stay
// within about twice `runc run`. Exec'ing CNI's bridge and host-local
// plugins costs tens of milliseconds per pod; the same work through netlink
// in this process costs a few. BenchmarkDefaultSetupTeardown against
// BenchmarkCNIBridgeSetupTeardown, on the 2-core development machine (busy:
// load 6 to 9), median of Setup+Teardown with the namespace gone before
// Teardown as when a pod exits, StateDir on tmpfs: 2 ms built in (3.4 ms
// with IPMasq) against 25 ms through CNI; means 2.7 ms against 26 ms.
//
// Two costs are the kernel's, and Teardown avoids them where it can:
//
//   - Deleting a veth takes 15 ms or more (an RCU barrier). When the pod's
//     namespace is gone the kernel deletes the pair with it, so Teardown
//     only sets the host side down if it is still there; it deletes the
//     veth itself only while the namespace lives (Setup's undo).
//   - Deleting iptables rules takes 10 to 20 ms (an nftables commit), so a
//     pod with published ports pays that at Teardown; adding them, and the
//     check of the shared rules (one iptables-save, made at most every 10
//     s), run while netlink does the rest of Setup.
//
// # State on disk
//
// There is no daemon to hold allocations: the state is files in
// Config.StateDir (a tmpfs on a machine: it dies with the host, like the
// pods), and every operation is safe while many `atoll pod run` processes
// run at once.
//
//	pods/<pod>.json          the pod's record: written before anything is
//	                         changed, updated as Setup goes; all Teardown
//	                         needs
//	pods/<pod>.lock          flock held by the pod's Setup and Teardown
//	default/<address>        an address of the built-in network, holding the
//	                         ID of the pod it is allocated to (O_EXCL: the
//	                         first free address wins, no lock)
//	ports/<proto>-<port>     a published host port, holding the pod's ID
//	locks/iptables           serializes adding the shared iptables rules
//	locks/rules-<hash>       when the shared rules were last checked
//	locks/orphans            serializes removing reservations whose holder
//	                         has no record
//	cni/                     libcni's cache (results/<net>-<pod>-<ifname>)
//
// An address or host port held by a pod whose namespace is gone is
// reclaimed by the next Setup that needs it, which tears that pod down as gc
// would. Teardown never removes the bridge, the masquerade and forward
// rules, the ATOLL-HOSTPORTS chain and its jumps, or route_localnet: other
// pods may use them, and they cost nothing idle.
//
// This package imports nothing from atoll: it is a leaf that the pod code
// (stage0) and gc call.
package network
