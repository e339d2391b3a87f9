package store

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"

	"atoll.dev/atoll/internal/pki"
)

// Defaults for a member's long-running behaviour.
const (
	DefaultClientPort              = 2379
	DefaultPeerPort                = 2380
	DefaultSnapshotCount           = 10000
	DefaultQuotaBackendBytes       = 2 << 30
	DefaultAutoCompactionRetention = time.Hour
	DefaultHeartbeatInterval       = 100 * time.Millisecond
	DefaultElectionTimeout         = time.Second
	DefaultClusterToken            = "atoll"
)

// Cluster states a member starts in.
const (
	// ClusterStateNew bootstraps a new cluster from InitialCluster.
	ClusterStateNew = embed.ClusterStateFlagNew
	// ClusterStateExisting joins a cluster that already runs.
	ClusterStateExisting = embed.ClusterStateFlagExisting
)

// MemberOptions says how to run one embedded member.
type MemberOptions struct {
	Name    string
	DataDir string
	// IP is the address advertised to peers and clients. The member also
	// listens on 127.0.0.1 for local clients unless IP is a loopback address.
	IP         net.IP
	ClientPort int
	PeerPort   int
	// TLS, when set, turns on TLS with client-certificate authentication for
	// both client and peer traffic. The same machine identity serves both.
	TLS *pki.Files

	InitialCluster      string
	InitialClusterToken string
	ClusterState        string

	SnapshotCount           uint64
	QuotaBackendBytes       int64
	AutoCompactionRetention time.Duration
	HeartbeatInterval       time.Duration
	ElectionTimeout         time.Duration

	// Logger receives the member's log, etcd's own warnings and errors
	// included (default: discarded).
	Logger *slog.Logger
}

func (o *MemberOptions) setDefaults() {
	if o.ClientPort == 0 {
		o.ClientPort = DefaultClientPort
	}
	if o.PeerPort == 0 {
		o.PeerPort = DefaultPeerPort
	}
	if o.SnapshotCount == 0 {
		o.SnapshotCount = DefaultSnapshotCount
	}
	if o.QuotaBackendBytes == 0 {
		o.QuotaBackendBytes = DefaultQuotaBackendBytes
	}
	if o.AutoCompactionRetention == 0 {
		o.AutoCompactionRetention = DefaultAutoCompactionRetention
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.ElectionTimeout == 0 {
		o.ElectionTimeout = DefaultElectionTimeout
	}
	if o.InitialClusterToken == "" {
		o.InitialClusterToken = DefaultClusterToken
	}
	if o.ClusterState == "" {
		o.ClusterState = ClusterStateNew
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o MemberOptions) scheme() string {
	if o.TLS != nil {
		return "https"
	}
	return "http"
}

// PeerURL is the URL this member advertises to its peers.
func (o MemberOptions) PeerURL() url.URL {
	o.setDefaults()
	return url.URL{Scheme: o.scheme(), Host: net.JoinHostPort(o.IP.String(), strconv.Itoa(o.PeerPort))}
}

// ClientURL is the URL this member advertises to clients.
func (o MemberOptions) ClientURL() url.URL {
	o.setDefaults()
	return url.URL{Scheme: o.scheme(), Host: net.JoinHostPort(o.IP.String(), strconv.Itoa(o.ClientPort))}
}

// HasData reports whether dataDir already holds a member's state, in which
// case etcd restarts from it and ignores every bootstrap setting.
func HasData(dataDir string) bool {
	entries, err := os.ReadDir(filepath.Join(dataDir, "member", "wal"))
	return err == nil && len(entries) > 0
}

// Member is a running embedded etcd member.
type Member struct {
	etcd   *embed.Etcd
	opts   MemberOptions
	client *clientv3.Client

	closeOnce sync.Once
}

// StartMember starts an embedded member and returns as soon as its
// listeners are up; it does not wait for the cluster to form. Wait on Ready
// for that, and on Err for a fatal error after start. If start-up fails,
// everything it opened is closed again.
func StartMember(opts MemberOptions) (*Member, error) {
	opts.setDefaults()
	if opts.Name == "" {
		return nil, errors.New("store: member needs a name")
	}
	if opts.IP == nil {
		return nil, fmt.Errorf("store: member %q needs an IP address", opts.Name)
	}
	cfg, err := embedConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("store: member %q: %w", opts.Name, err)
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("store: member %q: %w", opts.Name, err)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("store: start member %q in %s: %w", opts.Name, opts.DataDir, err)
	}
	m := &Member{etcd: e, opts: opts}
	m.client = v3client.New(e.Server)
	return m, nil
}

func embedConfig(opts MemberOptions) (*embed.Config, error) {
	cfg := embed.NewConfig()
	cfg.Name = opts.Name
	cfg.Dir = opts.DataDir
	peerURL := opts.PeerURL()
	clientURL := opts.ClientURL()
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	if !opts.IP.IsLoopback() {
		local := url.URL{Scheme: opts.scheme(), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.ClientPort))}
		cfg.ListenClientUrls = append(cfg.ListenClientUrls, local)
	}
	if opts.TLS != nil {
		info := transport.TLSInfo{
			CertFile:       opts.TLS.Cert,
			KeyFile:        opts.TLS.Key,
			TrustedCAFile:  opts.TLS.CA,
			ClientCertAuth: true,
		}
		cfg.ClientTLSInfo = info
		cfg.PeerTLSInfo = info
	}
	cfg.InitialCluster = opts.InitialCluster
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = opts.Name + "=" + peerURL.String()
	}
	cfg.InitialClusterToken = opts.InitialClusterToken
	cfg.ClusterState = opts.ClusterState
	cfg.SnapshotCount = opts.SnapshotCount
	cfg.QuotaBackendBytes = opts.QuotaBackendBytes
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = opts.AutoCompactionRetention.String()
	cfg.TickMs = uint(opts.HeartbeatInterval / time.Millisecond)
	cfg.ElectionMs = uint(opts.ElectionTimeout / time.Millisecond)
	// Small machines: keep few old snapshots and WAL files around.
	cfg.MaxSnapFiles = 3
	cfg.MaxWalFiles = 3
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapToSlog(opts.Logger.With("component", "etcd").Handler(), zap.WarnLevel))
	cfg.Metrics = "basic"
	return cfg, cfg.Validate()
}

// Ready is closed once the member has joined its cluster and can serve.
func (m *Member) Ready() <-chan struct{} { return m.etcd.Server.ReadyNotify() }

// Err reports a fatal error of the running member.
func (m *Member) Err() <-chan error { return m.etcd.Err() }

// Stopped is closed when the etcd server has stopped, for any reason
// (Close, a fatal error, or removal from the cluster).
func (m *Member) Stopped() <-chan struct{} { return m.etcd.Server.StopNotify() }

// Client is an in-process client of this member: no network, no TLS.
func (m *Member) Client() *clientv3.Client { return m.client }

// Options returns the options the member runs with, defaults applied.
func (m *Member) Options() MemberOptions { return m.opts }

// ID is the member's raft ID.
func (m *Member) ID() uint64 { return uint64(m.etcd.Server.MemberID()) }

// IsLearner reports whether the member is a non-voting learner. A member
// removed from the cluster is none (etcd's own IsLearner panics then).
func (m *Member) IsLearner() bool {
	self := m.etcd.Server.Cluster().Member(m.etcd.Server.MemberID())
	return self != nil && self.IsLearner
}

// Leader is the raft ID of the leader this member knows, or 0.
func (m *Member) Leader() uint64 { return uint64(m.etcd.Server.Leader()) }

// OtherClientURLs are the client URLs of every other member this member
// knows of, from its own view of the membership.
func (m *Member) OtherClientURLs() []string {
	var urls []string
	for _, member := range m.etcd.Server.Cluster().Members() {
		if uint64(member.ID) != m.ID() {
			urls = append(urls, member.ClientURLs...)
		}
	}
	return urls
}

// Close stops the member. A leader hands leadership to another voter first
// so the cluster does not wait an election timeout. Close is idempotent.
func (m *Member) Close() {
	m.closeOnce.Do(func() {
		m.client.Close()
		m.etcd.Close()
	})
}
