// Package api holds the wire types of atoll's local daemon API: the JSON that
// `atoll node` serves on its unix socket (<run-dir>/atoll.sock) and that the
// client package and the CLI read. Field names are part of the contract with
// scripts that call the socket with curl; change them only additively.
//
// It imports only the standard library.
package api

import "time"

// SocketName is the daemon's socket inside its run directory.
const SocketName = "atoll.sock"

// DefaultRunDir is the run directory when neither --run-dir nor
// ATOLL_RUN_DIR says otherwise.
const DefaultRunDir = "/run/atoll"

// RunDirEnv names the environment variable that points commands at a
// daemon's run directory.
const RunDirEnv = "ATOLL_RUN_DIR"

// RootEnv names the environment variable that gives `atoll pod` and
// `atoll image` the machine's root (their --root): its state in
// ROOT/var/lib/atoll, its config in ROOT/etc/atoll.
const RootEnv = "ATOLL_ROOT"

// Part states.
const (
	PartStarting   = "starting"
	PartRunning    = "running"
	PartRestarting = "restarting"
	PartStopped    = "stopped"
)

// Store roles.
const (
	RoleMember  = "member"
	RoleLearner = "learner"
	RoleClient  = "client"
)

// Health is GET /v1/health: 200 when every part runs and the store answers
// a linearizable read, 503 otherwise, with the same body.
type Health struct {
	Healthy bool         `json:"healthy"`
	Parts   []PartStatus `json:"parts"`
	Store   StoreStatus  `json:"store"`
}

// PartStatus is one supervised part of the daemon.
type PartStatus struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"lastError,omitempty"`
	Since     time.Time `json:"since"`
}

// StoreStatus is what the machine knows of the cluster store.
type StoreStatus struct {
	Role      string   `json:"role"`
	Healthy   bool     `json:"healthy"`
	MemberID  string   `json:"memberID,omitempty"`
	LeaderID  string   `json:"leaderID,omitempty"`
	IsLeader  bool     `json:"isLeader,omitempty"`
	ClientURL string   `json:"clientURL,omitempty"`
	PeerURL   string   `json:"peerURL,omitempty"`
	Endpoints []string `json:"endpoints,omitempty"`
	// TLSDir holds ca.crt, node.crt and node.key when the store uses TLS.
	TLSDir string `json:"tlsDir,omitempty"`
	// Alarms are the cluster's raised alarms, e.g. "NOSPACE on 8e9e05c52164694d"
	// when a member's database reached its quota: writes fail until an
	// operator compacts, defragments and disarms.
	Alarms []string `json:"alarms,omitempty"`
	Error  string   `json:"error,omitempty"`
}

// Machine is GET /v1/machine.
type Machine struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	PublicIP string            `json:"publicIP"`
	Metadata map[string]string `json:"metadata"`
	Version  string            `json:"version"`
	Roles    []string          `json:"roles"`
	Store    StoreStatus       `json:"store"`
}

// Left is the answer to POST /v1/store/leave.
type Left struct {
	MemberID  string   `json:"memberID"`
	Endpoints []string `json:"endpoints"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}
