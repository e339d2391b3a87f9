package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"atoll.dev/atoll/internal/fleet/agent"
	"atoll.dev/atoll/internal/fleet/engine"
	"atoll.dev/atoll/internal/fleet/fleetapi"
	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/version"
)

// FleetStateFile is the fleet agent's state: its lease and the units it
// loaded.
func (p Paths) FleetStateFile() string { return filepath.Join(p.StateDir(), "fleet", "agent.json") }

// errStoreChanged ends a run of the fleet part when the store's client
// changed (the store part planned again), so it starts over on the new one.
var errStoreChanged = errors.New("the store client changed")

// storeClient is the store's current client, nil until the store serves.
func (p *storePart) currentClient() *clientv3.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.client
}

// fleetPart runs the machine's fleet agent and engine candidate on the
// store's client, as its config says.
type fleetPart struct {
	sys *System

	mu    sync.Mutex
	agent *agent.Agent
	lead  registry.Fence
}

func (p *fleetPart) Name() string { return "fleet" }

func enabled(b *bool) bool { return b == nil || *b }

// registry returns the registry on the store's current client.
func (s *System) fleetRegistry(context.Context) (*registry.Registry, error) {
	cli := s.store.currentClient()
	if cli == nil {
		return nil, errors.New("the cluster store is not reachable yet")
	}
	return registry.New(cli, s.config().Fleet.Prefix), nil
}

// fleetAPIURL is where other machines reach this one's fleet API, empty
// when it serves none on TCP.
func (s *System) fleetAPIURL() string {
	listen := s.config().Fleet.Listen
	if listen == "" {
		return ""
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	scheme := "http"
	if s.identity.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(s.identity.publicIP.String(), port)
}

func (p *fleetPart) Run(ctx context.Context) error {
	cfg := p.sys.config()
	var cli *clientv3.Client
	for cli == nil {
		if cli = p.sys.store.currentClient(); cli == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	reg := registry.New(cli, cfg.Fleet.Prefix)
	log := p.sys.log.With("part", "fleet")
	g, gctx := errgroup.WithContext(ctx)
	if enabled(cfg.Fleet.Agent) {
		a, err := agent.New(agent.Options{
			Registry:  reg,
			Manager:   p.sys.units.manager,
			Machine:   p.sys.fleetMachine(),
			TTL:       time.Duration(cfg.Fleet.TTL),
			Grace:     time.Duration(cfg.Fleet.Grace),
			StateFile: p.sys.paths.FleetStateFile(),
			Log:       log.With("fleet", "agent"),
		})
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.agent = a
		p.mu.Unlock()
		g.Go(func() error { return a.Run(gctx) })
	}
	if enabled(cfg.Fleet.Engine) {
		g.Go(func() error {
			return engine.Run(gctx, engine.Options{
				Registry:  reg,
				MachineID: p.sys.machineID,
				Log:       log.With("fleet", "engine"),
				OnLead: func(f registry.Fence) {
					p.mu.Lock()
					p.lead = f
					p.mu.Unlock()
				},
			})
		})
	}
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-time.After(time.Second):
				if p.sys.store.currentClient() != cli {
					return errStoreChanged
				}
			}
		}
	})
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// machineChanged tells the agent how the machine registers now.
func (p *fleetPart) machineChanged() {
	if p == nil {
		return
	}
	p.mu.Lock()
	a := p.agent
	p.mu.Unlock()
	if a != nil {
		a.SetMachine(p.sys.fleetMachine())
	}
}

// roles are the machine's fleet roles: fleet-agent while its agent runs,
// fleet-engine-leader while its engine leads.
func (p *fleetPart) roles() []string {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var roles []string
	if p.agent != nil {
		roles = append(roles, "fleet-agent")
	}
	if p.lead.Rev != 0 {
		roles = append(roles, "fleet-engine-leader")
	}
	return roles
}

// fleetMachine is how this machine registers with fleet.
func (s *System) fleetMachine() registry.Machine {
	cfg := s.config()
	return registry.Machine{
		ID:       s.machineID,
		Name:     cfg.Name,
		PublicIP: s.identity.publicIP.String(),
		Metadata: cfg.Metadata,
		APIURL:   s.fleetAPIURL(),
		Version:  version.Version,
	}
}

// fleetAPI is fleet's v1 API of this machine, served on the local socket
// and, when fleet.listen is set, on TCP.
func (s *System) fleetAPI() *fleetapi.Server {
	peer := http.DefaultClient
	if s.identity.tls != nil {
		if conf, err := s.identity.tls.ClientTLS(); err == nil {
			peer = &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
		}
	}
	return fleetapi.NewServer(fleetapi.Options{
		Registry:   s.fleetRegistry,
		Version:    version.Version,
		MachineID:  s.machineID,
		Journal:    s.units.journal,
		PeerClient: peer,
		Log:        s.log.With("part", "fleet-api"),
	})
}

// fleetListenPart serves fleet's API on TCP: with TLS and client
// certificates of the cluster's CA when the machine has a TLS identity.
type fleetListenPart struct {
	sys     *System
	handler http.Handler
}

func (p *fleetListenPart) Name() string { return "fleet-api" }

func (p *fleetListenPart) Run(ctx context.Context) error {
	addr := p.sys.config().Fleet.Listen
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fleet API on %s: %w", addr, err)
	}
	if files := p.sys.identity.tls; files != nil {
		conf, err := files.ServerTLS()
		if err != nil {
			l.Close()
			return fmt.Errorf("fleet API TLS: %w", err)
		}
		l = tls.NewListener(l, conf)
	}
	return serve(ctx, &http.Server{Handler: p.handler, ReadHeaderTimeout: 10 * time.Second}, l, "fleet API on "+addr)
}
