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
	return c.send(ctx, method, path, nil, out, alsoOK...)
}

// send makes a request with body (nil for none) and decodes the JSON
// answer into out.
func (c Local) send(ctx context.Context, method, path string, body io.Reader, out any, alsoOK ...int) error {
	resp, err := c.open(ctx, method, path, body, alsoOK...)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("client: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// open makes a request and returns the answer, whose body the caller
// reads and closes; an answer other than 2xx or alsoOK is an error with
// the daemon's message.
func (c Local) open(ctx context.Context, method, path string, body io.Reader, alsoOK ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://atoll"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return nil, fmt.Errorf("%w at %s: %w", ErrNoDaemon, c.Socket(), err)
		}
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	ok := resp.StatusCode/100 == 2
	for _, code := range alsoOK {
		ok = ok || resp.StatusCode == code
	}
	if !ok {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("client: %s %s: %s (HTTP %d)", method, path, e.Error, resp.StatusCode)
		}
		return nil, fmt.Errorf("client: %s %s: HTTP %d", method, path, resp.StatusCode)
	}
	return resp, nil
}
