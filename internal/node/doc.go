// Package node is atoll's per-machine daemon, `atoll node`.
//
// Start builds one System from the node config and starts its parts, each
// a supervised goroutine (a failing part is restarted with backoff and
// reported in health; it never takes the daemon down):
//
//	store  the embedded etcd member, or a client of the members
//	api    the local HTTP+JSON API on <run-dir>/atoll.sock (mode 0600)
//
// Every path derives from Paths (--root and --run-dir). The machine ID is
// created once and kept in <root>/var/lib/atoll/machine-id. Config layers
// merge in one direction: defaults < node.yaml < command-line overrides.
// Reload (SIGHUP) reads node.yaml again and applies what can change while
// running (metadata, log level); other changes are logged as needing a
// restart. Close stops the parts in the reverse of their start order.
//
// node imports the parts it wires (store, discovery, pki, node/config) and
// the api types; nothing imports node but the CLI.
package node
