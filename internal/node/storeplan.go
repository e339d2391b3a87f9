package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"atoll.dev/atoll/internal/fsutil"
	"atoll.dev/atoll/internal/node/config"
)

// How the store part starts, decided by planStore.
type planKind int

const (
	// planRestart: a data directory exists; etcd restarts from it and every
	// bootstrap setting is ignored.
	planRestart planKind = iota
	// planStatic: a new member of a new cluster from store.initial-cluster,
	// or a cluster of one when none is given.
	planStatic
	// planDiscovery: register with the discovery service, which says member
	// or client.
	planDiscovery
	// planJoin: become a learner of a running cluster, then a voter.
	planJoin
	// planClient: dial the members; run no etcd here.
	planClient
)

func (k planKind) String() string {
	return [...]string{"restart", "static", "discovery", "join", "client"}[k]
}

// storePlan is what the store part does on start.
type storePlan struct {
	kind planKind
	// endpoints are the members' client URLs, for planClient.
	endpoints []string
	// moveDataAside: a data directory is left from a member that was
	// removed from the cluster; keep it, but out of etcd's way.
	moveDataAside bool
}

// savedRole is a store role decided at run time, kept in the state
// directory because it outlives the config: a discovery service that said
// "client", or a member that left the cluster.
type savedRole struct {
	Role      string   `json:"role"`
	Endpoints []string `json:"endpoints"`
	Reason    string   `json:"reason"`
}

const (
	reasonDiscovery = "discovery"
	reasonLeft      = "left"
)

// planStore decides how the store part starts from the config, whether a
// data directory exists, and the saved role (nil when none).
func planStore(cfg config.Store, hasData bool, saved *savedRole) storePlan {
	left := saved != nil && saved.Reason == reasonLeft
	switch {
	case left:
		// A machine that left stays a client whatever its config says
		// (the store.join that first made it a member is likely still
		// there); removing the saved role lets it join again.
		return storePlan{kind: planClient, endpoints: saved.Endpoints, moveDataAside: hasData}
	case hasData:
		return storePlan{kind: planRestart}
	case saved != nil && saved.Role == config.RoleClient:
		return storePlan{kind: planClient, endpoints: saved.Endpoints}
	case cfg.Role == config.RoleClient && len(cfg.Endpoints) > 0:
		return storePlan{kind: planClient, endpoints: cfg.Endpoints}
	case len(cfg.Join) > 0:
		return storePlan{kind: planJoin}
	case cfg.Discovery != "":
		return storePlan{kind: planDiscovery}
	default:
		return storePlan{kind: planStatic}
	}
}

func loadSavedRole(path string) (*savedRole, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("saved store role: %w", err)
	}
	var r savedRole
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("saved store role %s: %w", path, err)
	}
	return &r, nil
}

func saveRole(path string, r savedRole) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o644)
}
