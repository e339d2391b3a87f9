package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"atoll.dev/atoll/api"
)

// apiPart serves the local API on the daemon's unix socket.
type apiPart struct {
	sys      *System
	listener net.Listener
}

// listenAPI opens the socket before any part starts, so that a second
// daemon on the same run directory is refused at once instead of taking
// the first one's socket away.
func listenAPI(sys *System) (*apiPart, error) {
	path := sys.paths.Socket()
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return nil, fmt.Errorf("another atoll node already serves %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("local API: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("local API: %w", err)
	}
	return &apiPart{sys: sys, listener: l}, nil
}

func (p *apiPart) Name() string { return "api" }

func (p *apiPart) Run(ctx context.Context) error {
	srv := &http.Server{Handler: p.handler(), ReadHeaderTimeout: 10 * time.Second}
	l := p.listener
	if l == nil {
		// A restart after a failure: listen again.
		var err error
		fresh, err := listenAPI(p.sys)
		if err != nil {
			return err
		}
		l = fresh.listener
	}
	p.listener = nil
	defer os.Remove(p.sys.paths.Socket())
	return serve(ctx, srv, l, "local API")
}

// serve serves l until ctx ends, then shuts srv down, giving requests in
// flight 5 seconds. A server that fails is an error naming what it is.
func serve(ctx context.Context, srv *http.Server, l net.Listener, what string) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
		return nil
	case err := <-errc:
		return fmt.Errorf("%s: %w", what, err)
	}
}

func (p *apiPart) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		h := p.sys.Health(ctx)
		status := http.StatusOK
		if !h.Healthy {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, h)
	})
	mux.HandleFunc("GET /v1/machine", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		writeJSON(w, http.StatusOK, p.sys.Machine(ctx))
	})
	mux.HandleFunc("POST /v1/store/leave", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		left, err := p.sys.store.leave(ctx)
		if err != nil {
			writeJSON(w, http.StatusConflict, api.Error{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, left)
	})
	p.unitRoutes(mux)
	fleet := p.sys.fleetAPI()
	mux.Handle("/fleet/", fleet)
	mux.Handle("/v1-alpha/", fleet)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
