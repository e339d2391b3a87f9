package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"atoll.dev/atoll/internal/pki"
)

// ClientOptions says how to reach a cluster's members.
type ClientOptions struct {
	Endpoints []string
	// TLS, when set, is the client identity presented to the members and the
	// CA that verifies them.
	TLS         *pki.Files
	DialTimeout time.Duration
}

// Dial returns a client of the members at opts.Endpoints. It does not block
// until a member answers: the first request does.
func Dial(opts ClientOptions) (*clientv3.Client, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("store: no endpoints to dial")
	}
	cfg := clientv3.Config{
		Endpoints:            opts.Endpoints,
		DialTimeout:          opts.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(),
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if opts.TLS != nil {
		tlsCfg, err := opts.TLS.ClientTLS()
		if err != nil {
			return nil, fmt.Errorf("store: client TLS: %w", err)
		}
		cfg.TLS = tlsCfg
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("store: dial %v: %w", opts.Endpoints, err)
	}
	return cli, nil
}

// Probe checks that the cluster can serve a linearizable read through cli,
// which needs a leader and a quorum: the same check etcd's own health endpoint makes.
func Probe(ctx context.Context, cli *clientv3.Client) error {
	_, err := cli.Get(ctx, "health")
	if err != nil {
		return fmt.Errorf("store: linearizable read: %w", err)
	}
	return nil
}

// Alarms lists the cluster's raised alarms as "NOSPACE on <member id>".
func Alarms(ctx context.Context, cli *clientv3.Client) ([]string, error) {
	resp, err := cli.AlarmList(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: list alarms: %w", err)
	}
	var alarms []string
	for _, a := range resp.Alarms {
		alarms = append(alarms, fmt.Sprintf("%s on %x", a.Alarm, a.MemberID))
	}
	return alarms, nil
}
