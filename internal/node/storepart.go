package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/internal/discovery"
	"atoll.dev/atoll/internal/node/config"
	"atoll.dev/atoll/internal/store"
)

// errRoleChanged ends one run of the store part so that the next run plans
// again (after the member left the cluster).
var errRoleChanged = errors.New("store role changed")

// storePart runs the machine's side of the cluster store: an embedded
// member, or a client of the members.
type storePart struct {
	sys *System

	mu     sync.Mutex
	member *store.Member
	client *clientv3.Client // the member's in-process client, or a dialed one
	role   string
	eps    []string
	// leaving is open while leave runs; the member stops itself as soon
	// as its removal applies, and the part waits for leave to finish
	// before planning again.
	leaving chan struct{}
}

func newStorePart(sys *System) *storePart {
	return &storePart{sys: sys}
}

func (p *storePart) Name() string { return "store" }

func (p *storePart) Run(ctx context.Context) error {
	for {
		err := p.runOnce(ctx)
		if errors.Is(err, errRoleChanged) && ctx.Err() == nil {
			continue
		}
		return err
	}
}

func (p *storePart) log() *slog.Logger { return p.sys.log.With("part", "store") }

func (p *storePart) memberOptions(cfg config.Config, state string, initialCluster string) store.MemberOptions {
	opts := memberOptions(p.sys.paths, cfg, p.sys.identity)
	opts.ClusterState = state
	opts.InitialCluster = initialCluster
	opts.Logger = p.log()
	return opts
}

// memberOptions derives how this machine runs its store member.
func memberOptions(paths Paths, cfg config.Config, id identity) store.MemberOptions {
	return store.MemberOptions{
		Name:                    memberName(cfg),
		DataDir:                 paths.StoreDir(),
		IP:                      id.publicIP,
		ClientPort:              cfg.Store.ClientPort,
		PeerPort:                cfg.Store.PeerPort,
		TLS:                     id.tls,
		InitialCluster:          cfg.Store.InitialCluster,
		InitialClusterToken:     cfg.Store.InitialClusterToken,
		SnapshotCount:           cfg.Store.SnapshotCount,
		QuotaBackendBytes:       int64(cfg.Store.QuotaBackendBytes),
		AutoCompactionRetention: time.Duration(cfg.Store.AutoCompactionRetention),
		HeartbeatInterval:       time.Duration(cfg.Store.HeartbeatInterval),
		ElectionTimeout:         time.Duration(cfg.Store.ElectionTimeout),
	}
}

// MemberOptionsFor says how the daemon would run this machine's store
// member with cfg, for tools that work on the member's data while the
// daemon is stopped (store restore).
func MemberOptionsFor(paths Paths, cfg config.Config) (store.MemberOptions, error) {
	id, err := resolveIdentity(paths, cfg)
	if err != nil {
		return store.MemberOptions{}, err
	}
	if cfg.Name == "" {
		cfg.Name = id.name
	}
	return memberOptions(paths, cfg, id), nil
}

func memberName(cfg config.Config) string {
	if cfg.Store.Name != "" {
		return cfg.Store.Name
	}
	return cfg.Name
}

func (p *storePart) runOnce(ctx context.Context) error {
	cfg := p.sys.config()
	paths := p.sys.paths
	saved, err := loadSavedRole(paths.StoreRoleFile())
	if err != nil {
		return err
	}
	plan := planStore(cfg.Store, store.HasData(paths.StoreDir()), saved)
	p.log().Info("store plan", "plan", plan.kind.String())
	if plan.moveDataAside {
		aside := fmt.Sprintf("%s.left-%s", paths.StoreDir(), time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(paths.StoreDir(), aside); err != nil {
			return fmt.Errorf("move the data of a removed member aside: %w", err)
		}
		p.log().Info("moved the data of the removed member aside", "to", aside)
	}
	switch plan.kind {
	case planClient:
		return p.runClient(ctx, plan.endpoints)
	case planRestart, planStatic:
		// On a restart etcd ignores the cluster settings and reads its data.
		return p.runMember(ctx, p.memberOptions(cfg, store.ClusterStateNew, cfg.Store.InitialCluster))
	case planDiscovery:
		return p.runDiscovery(ctx, cfg)
	case planJoin:
		return p.runJoin(ctx, cfg)
	}
	return fmt.Errorf("unknown store plan %v", plan.kind)
}

func (p *storePart) runDiscovery(ctx context.Context, cfg config.Config) error {
	opts := p.memberOptions(cfg, store.ClusterStateNew, "")
	peerURL, clientURL := opts.PeerURL(), opts.ClientURL()
	var dc discovery.Client
	assigned, err := dc.Register(ctx, cfg.Store.Discovery, p.sys.machineID, discovery.Registration{
		Name:       opts.Name,
		PeerURLs:   []string{peerURL.String()},
		ClientURLs: []string{clientURL.String()},
	})
	if err != nil {
		return fmt.Errorf("discovery %s: %w", cfg.Store.Discovery, err)
	}
	p.log().Info("discovery assigned a role", "role", assigned.Role, "size", assigned.Size)
	p.setStatus(nil, nil, assigned.Role, nil)
	state, err := dc.Wait(ctx, cfg.Store.Discovery)
	if err != nil {
		return fmt.Errorf("discovery %s: wait for %d members: %w", cfg.Store.Discovery, assigned.Size, err)
	}
	if assigned.Role == discovery.RoleClient {
		eps := state.MemberClientURLs()
		if err := saveRole(p.sys.paths.StoreRoleFile(), savedRole{Role: config.RoleClient, Endpoints: eps, Reason: reasonDiscovery}); err != nil {
			return err
		}
		return p.runClient(ctx, eps)
	}
	opts.InitialCluster = state.InitialCluster()
	return p.runMember(ctx, opts)
}

func (p *storePart) runJoin(ctx context.Context, cfg config.Config) error {
	joinCli, err := store.Dial(store.ClientOptions{Endpoints: cfg.Store.Join, TLS: p.sys.identity.tls})
	if err != nil {
		return err
	}
	opts := p.memberOptions(cfg, store.ClusterStateExisting, "")
	initial, err := store.Join(ctx, joinCli, opts.Name, opts.PeerURL())
	joinCli.Close()
	if err != nil {
		return err
	}
	opts.InitialCluster = initial
	p.log().Info("added to the cluster as a learner", "initial-cluster", initial)
	return p.runMember(ctx, opts)
}

// runMember runs an embedded member until ctx ends or the member fails. A
// member that is a learner once ready (just joined, or restarted before
// its promotion) is promoted as soon as it has caught up.
func (p *storePart) runMember(ctx context.Context, opts store.MemberOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends a promotion still in progress
	tuneGCForMember()
	m, err := store.StartMember(opts)
	if err != nil {
		return err
	}
	clientURL := opts.ClientURL()
	p.setStatus(m, m.Client(), api.RoleMember, []string{clientURL.String()})
	defer func() {
		p.setStatus(nil, nil, api.RoleMember, nil)
		m.Close()
	}()
	ready := m.Ready()
	promoted := make(chan error, 1)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-m.Err():
			return p.memberEnded(m, fmt.Errorf("etcd: %w", err))
		case <-m.Stopped():
			return p.memberEnded(m, errors.New("etcd server stopped"))
		case <-ready:
			ready = nil
			p.log().Info("store member ready", "id", strconv.FormatUint(m.ID(), 16), "learner", m.IsLearner())
			p.sys.startupDone()
			if m.IsLearner() {
				go func() { promoted <- p.promote(ctx, m) }()
			}
		case err := <-promoted:
			if err != nil {
				return err
			}
			p.log().Info("promoted from learner to voting member")
		}
	}
}

// memberEnded decides what a member's unexpected end means: the end of a
// leave, a removal this daemon did not make (etcdctl member remove, or a
// crash in the middle of a leave), after which the machine carries on as a
// client as after a leave, or a failure (cause), after which the
// supervisor starts the member again.
func (p *storePart) memberEnded(m *store.Member, cause error) error {
	if leaving := p.leavingSignal(); leaving != nil {
		<-leaving
		return errRoleChanged
	}
	remaining, removed := p.removedFromCluster(m)
	if !removed {
		return cause
	}
	p.log().Warn("this member was removed from the cluster; carrying on as a client", "members", remaining)
	if err := saveRole(p.sys.paths.StoreRoleFile(), savedRole{Role: config.RoleClient, Endpoints: remaining, Reason: reasonLeft}); err != nil {
		return err
	}
	return errRoleChanged
}

// removedFromCluster asks the other members whether m is still one of
// them. It answers removed only when they answer and m is not listed.
func (p *storePart) removedFromCluster(m *store.Member) (remaining []string, removed bool) {
	others := m.OtherClientURLs()
	if len(others) == 0 {
		return nil, false
	}
	cli, err := store.Dial(store.ClientOptions{Endpoints: others, TLS: p.sys.identity.tls})
	if err != nil {
		return nil, false
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return nil, false
	}
	for _, member := range list.Members {
		if member.ID == m.ID() {
			return nil, false
		}
		remaining = append(remaining, member.ClientURLs...)
	}
	return remaining, len(remaining) > 0
}

// promote asks the other members to make learner m a voter (a learner
// serves no such request itself), retrying until it has caught up.
func (p *storePart) promote(ctx context.Context, m *store.Member) error {
	others := m.OtherClientURLs()
	if len(others) == 0 {
		return errors.New("learner knows no other member to ask for its promotion")
	}
	cli, err := store.Dial(store.ClientOptions{Endpoints: others, TLS: p.sys.identity.tls})
	if err != nil {
		return err
	}
	defer cli.Close()
	return store.Promote(ctx, cli, m.ID(), time.Second)
}

// memberGCPercent lets a member's heap grow to three times its live data
// between collections instead of twice: under a heavy write load that buys
// about 5% more puts per second on two cores for about a third more peak
// heap. A client has no such load and keeps Go's default, and so does
// any daemon whose operator set GOGC.
const memberGCPercent = 200

func tuneGCForMember() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(memberGCPercent)
	}
}

func (p *storePart) runClient(ctx context.Context, endpoints []string) error {
	if len(endpoints) == 0 {
		return errors.New("store client has no endpoints")
	}
	cli, err := store.Dial(store.ClientOptions{Endpoints: endpoints, TLS: p.sys.identity.tls})
	if err != nil {
		return err
	}
	p.setStatus(nil, cli, api.RoleClient, endpoints)
	p.sys.startupDone()
	defer func() {
		p.setStatus(nil, nil, api.RoleClient, endpoints)
		cli.Close()
	}()
	<-ctx.Done()
	return nil
}

func (p *storePart) setStatus(m *store.Member, cli *clientv3.Client, role string, eps []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.member, p.client, p.role, p.eps = m, cli, role, eps
}

func (p *storePart) leavingSignal() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leaving
}

// status reports the store as this machine sees it, probing the cluster
// with a linearizable read bounded by ctx.
func (p *storePart) status(ctx context.Context) api.StoreStatus {
	p.mu.Lock()
	m, cli, role, eps := p.member, p.client, p.role, p.eps
	p.mu.Unlock()
	st := api.StoreStatus{Role: role, Endpoints: eps}
	if p.sys.identity.tls != nil {
		st.TLSDir = p.sys.identity.tlsDir
	}
	if m != nil {
		opts := m.Options()
		clientURL, peerURL := opts.ClientURL(), opts.PeerURL()
		st.ClientURL, st.PeerURL = clientURL.String(), peerURL.String()
		st.MemberID = strconv.FormatUint(m.ID(), 16)
		if leader := m.Leader(); leader != 0 {
			st.LeaderID = strconv.FormatUint(leader, 16)
			st.IsLeader = leader == m.ID()
		}
		if m.IsLearner() {
			st.Role = api.RoleLearner
			st.Healthy = st.LeaderID != ""
			if !st.Healthy {
				st.Error = "learner sees no leader"
			}
			return st
		}
	}
	if cli == nil {
		st.Error = "store is not running yet"
		return st
	}
	if err := store.Probe(ctx, cli); err != nil {
		st.Error = err.Error()
		return st
	}
	alarms, err := store.Alarms(ctx, cli)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Alarms = alarms
	if len(alarms) > 0 {
		st.Error = "alarm raised: " + strings.Join(alarms, ", ")
		return st
	}
	st.Healthy = true
	return st
}

// leave removes this machine's member from the cluster; the part then
// starts again as a client of the remaining members.
func (p *storePart) leave(ctx context.Context) (api.Left, error) {
	p.mu.Lock()
	m := p.member
	if m == nil || p.leaving != nil {
		p.mu.Unlock()
		return api.Left{}, errors.New("this machine runs no store member")
	}
	if m.IsLearner() {
		p.mu.Unlock()
		return api.Left{}, errors.New("this member is still a learner; wait for its promotion")
	}
	leaving := make(chan struct{})
	p.leaving = leaving
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.leaving = nil
		p.mu.Unlock()
		close(leaving)
	}()

	id := strconv.FormatUint(m.ID(), 16)
	remaining, err := m.Leave(ctx)
	if err != nil {
		return api.Left{}, err
	}
	if err := saveRole(p.sys.paths.StoreRoleFile(), savedRole{Role: config.RoleClient, Endpoints: remaining, Reason: reasonLeft}); err != nil {
		return api.Left{}, err
	}
	m.Close()
	p.log().Info("left the cluster", "member", id, "remaining", remaining)
	return api.Left{MemberID: id, Endpoints: remaining}, nil
}
