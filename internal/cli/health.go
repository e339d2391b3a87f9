package cli

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"atoll.dev/atoll/internal/store"
)

type mvccKV = mvccpb.KeyValue

type endpointHealth struct {
	Endpoint string `json:"endpoint"`
	Healthy  bool   `json:"healthy"`
	Took     string `json:"took"`
	Error    string `json:"error,omitempty"`
}

// checkEndpoints probes every endpoint on its own, in parallel.
func checkEndpoints(ctx context.Context, opts store.ClientOptions) []endpointHealth {
	results := make([]endpointHealth, len(opts.Endpoints))
	var wg sync.WaitGroup
	for i, ep := range opts.Endpoints {
		wg.Go(func() {
			r := endpointHealth{Endpoint: ep}
			one := opts
			one.Endpoints = []string{ep}
			start := time.Now()
			cli, err := store.Dial(one)
			if err == nil {
				probeCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
				err = store.Probe(probeCtx, cli)
				cancel()
				cli.Close()
			}
			r.Took = time.Since(start).Round(time.Millisecond).String()
			r.Healthy = err == nil
			if err != nil {
				r.Error = err.Error()
			}
			results[i] = r
		})
	}
	wg.Wait()
	return results
}
