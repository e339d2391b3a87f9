// Package playground makes a whole atoll cluster on one host, as the CoreOS
// Vagrant cluster did with VMs: N machines, each a network namespace with
// its own address on a private bridge, its own root and run directories and
// its own `atoll node` process, which outlives the command that started it.
//
// Layout, for a cluster NAME under the playground directory D
// (default /var/lib/atoll-playground):
//
//	D/NAME/cluster.json    what exists: subnet, bridge, machines, PIDs
//	D/NAME/ca/             the cluster CA (ca.crt, ca.key)
//	D/NAME/client/         an admin client identity for atoll kv and etcdctl
//	D/NAME/mN/root/        machine N's --root (etc/atoll/node.yaml, var/lib/atoll),
//	                       also its pods' and images' (var/lib/atoll/pods, images)
//	D/NAME/mN/run/         machine N's --run-dir (atoll.sock)
//	D/NAME/mN/node.log     machine N's daemon log
//
// Network: each cluster gets one /24 of 10.213.0.0/16 that no host
// interface uses, a bridge "atb<hash>" holding .1, and machine N at .10+N
// behind a veth pair ("atv<hash>m<N>" on the host, eth0 inside). The
// namespaces have no default route, so nothing in them reaches beyond the
// bridge. The bridge does not pass its frames to iptables, so a host
// firewall's FORWARD policy cannot cut machines off from each other.
// Namespaces are named atoll-NAME-mN, so Down finds what a crashed Up left
// even without cluster.json.
//
// Pods: Exec runs a command in a machine with ATOLL_ROOT and ATOLL_RUN_DIR
// set to the machine's directories, so `atoll cluster exec m1 -- atoll pod
// run ...` runs a pod on m1, with m1's images, its own default network
// (bridge, masquerading, published ports) inside m1's namespace, and its
// state under m1's root. Down stops such pods gracefully and removes them
// with their cgroups before it kills the machines. Exec and the daemons
// enter only the machine's network namespace (setns), not `ip netns exec`,
// which would mount a fresh sysfs over /sys and so hide the cgroup
// hierarchies that pods need.
//
// Failure drills: Stop (SIGTERM, or any signal such as SIGKILL), Start,
// Partition (the machine's host-side link goes down: it reaches no one and
// no one reaches it) and Heal.
//
// Everything here needs root. It uses iproute2's ip(8) for namespaces and
// links: the same commands an operator would type to look at or repair
// what it made.
package playground
