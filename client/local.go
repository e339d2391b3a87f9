// Package client holds the Go clients of atoll's APIs; the CLI reaches a
// daemon only through them. Local talks to the daemon on this machine over
// its unix socket.
//
// It imports api and the standard library only.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"atoll.dev/atoll/api"
)

// ErrNoDaemon means no daemon answers on the socket.
var ErrNoDaemon = errors.New("client: no atoll daemon is running")

// Local is a client of the daemon whose run directory is RunDir. Its zero
// value uses $ATOLL_RUN_DIR, or /run/atoll.
type Local struct {
	RunDir string
}

// Socket is the path of the daemon's socket.
func (c Local) Socket() string {
	dir := c.RunDir
	if dir == "" {
		dir = os.Getenv(api.RunDirEnv)
	}
	if dir == "" {
		dir = api.DefaultRunDir
	}
	return filepath.Join(dir, api.SocketName)
}

func (c Local) httpClient() *http.Client {
	socket := c.Socket()
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// Health asks for the daemon's health. A daemon that answers unhealthy is
// not an error: the returned Health says so.
func (c Local) Health(ctx context.Context) (api.Health, error) {
	var h api.Health
	err := c.do(ctx, http.MethodGet, "/v1/health", &h, http.StatusServiceUnavailable)
	return h, err
}

// Machine asks who the machine is.
func (c Local) Machine(ctx context.Context) (api.Machine, error) {
	var m api.Machine
	err := c.do(ctx, http.MethodGet, "/v1/machine", &m)
	return m, err
}

// Leave asks the daemon to remove its store member from the cluster and
// carry on as a client.
func (c Local) Leave(ctx context.Context) (api.Left, error) {
	var l api.Left
	err := c.do(ctx, http.MethodPost, "/v1/store/leave", &l)
	return l, err
}

func (c Local) do(ctx context.Context, method, path string, out any, alsoOK ...int) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://atoll"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return fmt.Errorf("%w at %s: %w", ErrNoDaemon, c.Socket(), err)
		}
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	ok := resp.StatusCode/100 == 2
	for _, code := range alsoOK {
		ok = ok || resp.StatusCode == code
	}
	if !ok {
		var e api.Error
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("client: %s %s: %s (HTTP %d)", method, path, e.Error, resp.StatusCode)
		}
		return fmt.Errorf("client: %s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("client: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}
