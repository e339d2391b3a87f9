// Package discovery is the cluster-bootstrap discovery service, server and
// client, in the spirit of discovery.etcd.io: it lets the first machines of a
// new atoll cluster find each other before any etcd exists.
//
// An operator asks the service for a token for a cluster of size N and boots
// every machine with the token URL. Each machine registers under its machine
// ID. The first N registrations, in arrival order, become etcd members; they
// wait until all N have registered and then start etcd with the initial
// cluster built from the registrations ([State.InitialCluster]). Machines that
// register later are told to run as clients of those members; CoreOS's
// discovery made them fail. Registration is create-only and idempotent per
// machine ID, so a machine that restarts and registers again gets the answer it
// got the first time.
//
// # Protocol
//
// All bodies are JSON unless said otherwise; every error is
// {"error":"..."} with a message that names the offending input.
//
//	GET|POST /new?size=N        201, text/plain: the token URL and "\n".
//	                            size defaults to 3 and must be 1..9.
//	PUT /<token>/<machineID>    body {"name","peerURLs","clientURLs"};
//	                            201 {"role":"member"|"client","size":N} when new,
//	                            200 with the original answer when the same
//	                            machine registers again with the same body.
//	GET /<token>[?wait=true&timeout=30s]
//	                            200 {"size","members":[...],"clients":[...]};
//	                            with wait=true it long-polls until the member
//	                            list is full or the timeout (default 30s,
//	                            at most 60s) passes, then answers either way.
//	DELETE /<token>/<machineID> 204, or 404 when not registered.
//
// The token URL is the configured public URL, or the scheme and Host of the
// request that created it, followed by "/<token>" (16 random bytes in hex).
// A machine ID is 32 lowercase hex digits, as in /etc/machine-id; a name is
// [A-Za-z0-9][A-Za-z0-9_.-]{0,62}; a URL is http(s)://host:port with nothing
// after the port, and each list holds at most 16. A registration that would
// become a member needs at least one peer URL.
//
// Statuses: 400 for an invalid input (size, machine ID, body, name, URL,
// wait, timeout, Host, or a body over 64 KiB); 404 for an unknown token,
// machine or path; 405 for a method a path does not take; 409 when a machine
// ID comes back with a different name or URLs, when a name or a member's peer
// URL is already registered by another machine, or when a token already holds
// 1000 registrations; 500 only when the state cannot be written to disk, in
// which case nothing changed. When a member is deleted, its place goes to the
// next new registration; machines already registered keep their roles.
//
// # State
//
// Tokens live in memory and each is persisted as <DataDir>/<token>.json,
// written atomically through fsutil.WriteFileAtomic before the request is
// answered, and all of them are loaded by [NewServer], so a restarted service
// keeps every token and registration. A token file that cannot be read or
// does not hold a valid token is an error naming the file.
//
// A long poll ends when its request's context is done; to end them at once
// at shutdown, cancel the http.Server's BaseContext.
//
// # Why it is written here
//
// The public discovery.etcd.io is deprecated and no longer maintained, and
// the v2 discovery protocol it speaks was removed from etcd in 3.7. etcd's v3
// discovery needs an etcd cluster that is already running, which the first
// cluster of a site does not have. What is needed is small (a few hundred
// lines), so atoll carries its own: it runs from the same binary, keeps its
// state in plain files, and answers late machines with a role instead of an
// error.
//
// # Imports
//
// This package imports only the standard library and internal/fsutil. It must
// not import etcd, the node daemon, or any other atoll package: it runs
// before any of them has anything to offer, and the client is linked into
// every machine.
package discovery
