package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/client"
	"atoll.dev/atoll/internal/pki"
	"atoll.dev/atoll/internal/playground"
	"atoll.dev/atoll/internal/store"
)

// storeFlags say which cluster store a verb talks to. Without them it is the
// playground cluster named by --cluster, else the local daemon's cluster.
type storeFlags struct {
	endpoints         []string
	cacert, cert, key string
	dialTimeout       time.Duration
}

func (f *storeFlags) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringSliceVar(&f.endpoints, "endpoints", nil, "members' client URLs (default: the local daemon's, or --cluster's)")
	fl.StringVar(&f.cacert, "cacert", "", "CA certificate that signs the members' certificates")
	fl.StringVar(&f.cert, "cert", "", "client certificate")
	fl.StringVar(&f.key, "key", "", "client key")
	fl.DurationVar(&f.dialTimeout, "dial-timeout", 5*time.Second, "how long to wait for a connection")
}

// target resolves where the store is and how to authenticate to it.
func (f *storeFlags) target(ctx context.Context, g *globals) (store.ClientOptions, error) {
	opts := store.ClientOptions{DialTimeout: f.dialTimeout}
	switch {
	case len(f.endpoints) > 0:
		opts.Endpoints = f.endpoints
		if f.cert != "" || f.key != "" || f.cacert != "" {
			if f.cert == "" || f.key == "" || f.cacert == "" {
				return opts, usagef("--cacert, --cert and --key go together")
			}
			opts.TLS = &pki.Files{CA: f.cacert, Cert: f.cert, Key: f.key}
		}
	case g.cluster != "":
		c, err := playground.Load(playground.Options{}, g.cluster)
		if errors.Is(err, playground.ErrNotFound) {
			return opts, fmt.Errorf("--cluster %s: %w", g.cluster, err)
		}
		if err != nil {
			return opts, err
		}
		opts.Endpoints = c.Endpoints()
		opts.TLS = c.ClientTLS()
	default:
		m, err := client.Local{RunDir: g.runDir}.Machine(ctx)
		if err != nil {
			return opts, fmt.Errorf("find the store through the local daemon (or give --endpoints or --cluster): %w", err)
		}
		opts.Endpoints = m.Store.Endpoints
		if m.Store.TLSDir != "" {
			files := pki.MachineFiles(m.Store.TLSDir)
			opts.TLS = &files
		}
	}
	if len(opts.Endpoints) == 0 {
		return opts, fmt.Errorf("no store endpoints known yet")
	}
	return opts, nil
}

func (f *storeFlags) dial(ctx context.Context, g *globals) (*clientv3.Client, store.ClientOptions, error) {
	opts, err := f.target(ctx, g)
	if err != nil {
		return nil, opts, err
	}
	cli, err := store.Dial(opts)
	return cli, opts, err
}
